package config

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

const envPrefix = "$env."

// LookupEnv reads an environment variable for `$env.NAME`. It is
// os.LookupEnv; `flexgate validate --without-secrets` replaces it, before
// loading, with one that reads an unset variable as placeholder text.
var LookupEnv = os.LookupEnv

// substituteEnv replaces every `$env.NAME` inside the scalar values under n
// with the variable's value. It works on the parsed tree, not the text, so
// a value holding quotes, colons or newlines cannot change the structure of
// the document. Mapping keys are left alone, and so is every other `$…`
// expression: policies compile those themselves. So are a route's policies:
// their parameters are decoded by the chain, which knows which of them are
// expressions (where a variable's value must stay literal text) and leaves
// `$env.NAME` in the node for the admin /config view to show instead of
// the secret.
func (d *decoder) substituteEnv(n *yaml.Node) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			d.substituteEnv(c)
		}
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			if n.Content[i-1].Value == "policies" {
				continue
			}
			d.substituteEnv(n.Content[i])
		}
	case yaml.ScalarNode:
		if strings.Contains(n.Value, envPrefix) {
			d.substituteScalar(n)
		}
	}
}

func (d *decoder) substituteScalar(n *yaml.Node) {
	if err := ExpandEnv(n); err != nil {
		d.errorf(n, "%s", err.Error())
	}
}

// ExpandEnv replaces every `$env.NAME` in the scalar node n with the
// variable's value, in place. An unset variable is an error that names it
// (never an empty string); a set but empty one is accepted. A plain value
// that is wholly one variable holding a number or a boolean is retyped, so
// that `limit: $env.LIMIT` decodes into an integer.
func ExpandEnv(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || !strings.Contains(n.Value, envPrefix) {
		return nil
	}
	in := n.Value
	var b strings.Builder
	whole := false
	for {
		i := strings.Index(in, envPrefix)
		if i < 0 {
			b.WriteString(in)
			break
		}
		b.WriteString(in[:i])
		rest := in[i+len(envPrefix):]
		name := rest[:envNameLen(rest)]
		if name == "" {
			return fmt.Errorf("%s must be followed by a variable name ([A-Za-z_][A-Za-z0-9_]*) in %q", envPrefix, n.Value)
		}
		val, ok := LookupEnv(name)
		if !ok {
			return fmt.Errorf("environment variable %s is not set; set it in the gateway's environment (%s%s is used here)", name, envPrefix, name)
		}
		whole = i == 0 && len(rest) == len(name) && b.Len() == 0
		b.WriteString(val)
		in = rest[len(name):]
	}
	n.Value = b.String()
	// A plain `port: $env.PORT` should read as the number the variable
	// holds, as if the user had written it; a quoted or partial value stays
	// text. Only numbers and booleans are retyped: a secret that happens to
	// be "null" or "~" must not vanish.
	if whole && n.Style == 0 {
		n.Tag = scalarTag(n.Value)
	} else {
		n.Tag = "!!str"
	}
	return nil
}

func envNameLen(s string) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return i
	}
	return len(s)
}

func scalarTag(v string) string {
	if v == "true" || v == "false" {
		return "!!bool"
	}
	if _, err := strconv.ParseInt(v, 10, 64); err == nil {
		return "!!int"
	}
	if strings.ContainsAny(v, "0123456789") && strings.Trim(v, "0123456789.eE+-") == "" {
		if _, err := strconv.ParseFloat(v, 64); err == nil {
			return "!!float"
		}
	}
	return "!!str"
}
