package flex

import (
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/config"
	"github.com/flexgate/flexgate/internal/ascii"
)

// rules reads a list of Flex rules (a route's, or a policy binding's): each
// a mapping of path, host and methods (regular expressions) and headers
// (names to regular expressions), all of which must match; the rules of a
// list combine with OR. Every expression is checked here, with Go's RE2, so
// that one the gateway cannot run is an error at its line, not a surprise.
// what names the list in messages ("route rules").
func rules(d *config.Decoder, n *yaml.Node, what string) []config.MatchRule {
	var out []config.MatchRule
	d.List(n, what, func(e *yaml.Node) {
		r := config.MatchRule{Pos: d.Pos(e)}
		m := d.Mark()
		if config.IsNull(e) {
			// `- ` alone matches every request, as `{}` does.
			out = append(out, r)
			return
		}
		if !d.Mapping(e, "rule", map[string]func(k, v *yaml.Node){
			"path":    func(_, v *yaml.Node) { r.Path = pattern(d, v, "rule path") },
			"host":    func(_, v *yaml.Node) { r.Host = pattern(d, v, "rule host") },
			"methods": func(_, v *yaml.Node) { r.Methods = methods(d, v) },
			"headers": func(_, v *yaml.Node) { r.Headers = headerRules(d, v) },
		}) || d.Failed(m) {
			return
		}
		out = append(out, r)
	})
	return out
}

// pattern reads a regular expression that must match a whole value.
func pattern(d *config.Decoder, n *yaml.Node, what string) string {
	s, ok := d.RequiredStr(n, what)
	if !ok {
		return ""
	}
	if _, err := regexp.Compile("^(?:" + s + ")$"); err != nil {
		d.Errorf(n, "%s %q is not a regular expression flexgate can run: %v (flexgate uses Go's RE2 syntax: no lookaround, no backreferences)",
			what, s, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		return ""
	}
	return s
}

// methods reads a rule's methods: a regular expression ("GET|POST"), as
// Flex documents it, or a list of method names.
func methods(d *config.Decoder, n *yaml.Node) string {
	if n.Kind != yaml.SequenceNode {
		return pattern(d, n, "rule methods")
	}
	var alts []string
	d.List(n, "rule methods", func(e *yaml.Node) {
		if s, ok := d.RequiredStr(e, "rule methods entry"); ok {
			if !ascii.IsToken(s) {
				d.Errorf(e, "rule methods entry %q is not a method name; write names such as GET, or one regular expression (methods: GET|POST)", s)
				return
			}
			alts = append(alts, regexp.QuoteMeta(strings.ToUpper(s)))
		}
	})
	if len(n.Content) == 0 {
		d.Errorf(n, "rule methods is empty: list the methods the rule matches, or remove methods to match every method")
	}
	return strings.Join(alts, "|")
}

// headerRules reads a rule's headers: names to regular expressions. A value
// written as a YAML boolean or number (`x-test: true`, as Flex's own
// example does) is the text written.
func headerRules(d *config.Decoder, n *yaml.Node) []config.HeaderMatch {
	if n.Kind != yaml.MappingNode {
		d.Errorf(n, "rule headers must be a mapping of header names to regular expressions, not %s", config.Describe(n))
		return nil
	}
	var out []config.HeaderMatch
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolveAlias(n.Content[i+1])
		if !ascii.IsToken(k.Value) {
			d.Errorf(k, "rule header %q is not a header name: use letters, digits and -", k.Value)
			continue
		}
		if v.Kind != yaml.ScalarNode || config.IsNull(v) {
			d.Errorf(v, "rule header %s must be a regular expression its value must match, not %s", k.Value, config.Describe(v))
			continue
		}
		m := d.Mark()
		if p := pattern(d, v, "rule header "+k.Value); !d.Failed(m) {
			out = append(out, config.HeaderMatch{Name: k.Value, Value: p, Regex: true})
		}
	}
	return out
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}
