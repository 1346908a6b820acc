package specvalidation

import (
	"fmt"
	"strings"
	"sync"
)

// maxVars bounds the template expressions of one path template.
const maxVars = 16

// segment is one segment of a path template: a literal, or a template
// expression ({name}) with literal text before and after it in the
// segment ("{file}.json").
type segment struct {
	lit            string // the segment, when name is ""
	name           string
	prefix, suffix string
}

// parseTemplate reads an OpenAPI path template ("/pets/{petId}/photo",
// "/files/{name}.{ext}" is refused: one expression per segment).
func parseTemplate(t string) ([]segment, error) {
	if !strings.HasPrefix(t, "/") {
		return nil, fmt.Errorf("path %q does not start with /", t)
	}
	if t == "/" {
		return nil, nil
	}
	parts := strings.Split(t[1:], "/")
	segs := make([]segment, 0, len(parts))
	names := map[string]bool{}
	for i, p := range parts {
		open := strings.IndexByte(p, '{')
		if open < 0 {
			if strings.IndexByte(p, '}') >= 0 {
				return nil, fmt.Errorf("path %q has a } without its {", t)
			}
			if p == "" && i < len(parts)-1 {
				return nil, fmt.Errorf("path %q has an empty segment (//)", t)
			}
			segs = append(segs, segment{lit: p})
			continue
		}
		end := strings.IndexByte(p[open:], '}')
		if end < 0 {
			return nil, fmt.Errorf("path %q has a { without its }", t)
		}
		end += open
		s := segment{prefix: p[:open], name: p[open+1 : end], suffix: p[end+1:]}
		switch {
		case s.name == "":
			return nil, fmt.Errorf("path %q has an empty template expression {}", t)
		case strings.ContainsAny(s.name, "{"), strings.ContainsAny(s.prefix, "}"):
			return nil, fmt.Errorf("path %q has a { inside a template expression", t)
		case strings.ContainsAny(s.suffix, "{}"):
			return nil, fmt.Errorf("path %q has two template expressions in one segment (%s); flexgate matches one per segment", t, p)
		case names[s.name]:
			return nil, fmt.Errorf("path %q names {%s} twice", t, s.name)
		}
		names[s.name] = true
		segs = append(segs, s)
	}
	if len(names) > maxVars {
		return nil, fmt.Errorf("path %q has %d template expressions; at most %d", t, len(names), maxVars)
	}
	return segs, nil
}

// pnode is one segment position of the path matcher, built at load.
type pnode struct {
	lits map[string]*pnode
	vars []*pvar // tried in order: the longest literal text first
	item *pathItem
}

// pvar is a template expression edge: a segment that starts with prefix,
// ends with suffix and has at least one byte between them.
type pvar struct {
	prefix, suffix string
	next           *pnode
}

// add inserts a template's segments; two templates that match the same
// paths (they differ only in their expressions' names) are refused.
func (n *pnode) add(segs []segment, item *pathItem) error {
	for _, s := range segs {
		if s.name == "" {
			if n.lits == nil {
				n.lits = map[string]*pnode{}
			}
			next := n.lits[s.lit]
			if next == nil {
				next = &pnode{}
				n.lits[s.lit] = next
			}
			n = next
			continue
		}
		var next *pnode
		for _, v := range n.vars {
			if v.prefix == s.prefix && v.suffix == s.suffix {
				next = v.next
			}
		}
		if next == nil {
			next = &pnode{}
			n.vars = append(n.vars, &pvar{prefix: s.prefix, suffix: s.suffix, next: next})
			// More literal text is more specific: tried first.
			for i := len(n.vars) - 1; i > 0 && fixed(n.vars[i]) > fixed(n.vars[i-1]); i-- {
				n.vars[i], n.vars[i-1] = n.vars[i-1], n.vars[i]
			}
		}
		n = next
	}
	if n.item != nil {
		return fmt.Errorf("path %q matches the same requests as %q (only the names of their template expressions differ)", item.template, n.item.template)
	}
	n.item = item
	return nil
}

func fixed(v *pvar) int { return len(v.prefix) + len(v.suffix) }

// match is the state of one match: where each template expression's
// value lies in the path. Pooled.
type match struct {
	spans [maxVars][2]int
	n     int
}

var matchPool = sync.Pool{New: func() any { return new(match) }}

// find matches path (after the base path, starting with '/') to a
// template: literal segments before template expressions, as OpenAPI
// says, backtracking when a more specific branch leads nowhere. off is
// the offset of path in what the spans index.
func (n *pnode) find(path []byte, off int, m *match) *pathItem {
	if len(path) == 0 {
		return n.item
	}
	if path[0] != '/' {
		return nil
	}
	end := 1
	for end < len(path) && path[end] != '/' {
		end++
	}
	seg, rest := path[1:end], path[end:]
	if next := n.lits[string(seg)]; next != nil {
		if it := next.find(rest, off+end, m); it != nil {
			return it
		}
	}
	if m.n == maxVars {
		return nil
	}
	for _, v := range n.vars {
		if len(seg) <= len(v.prefix)+len(v.suffix) || string(seg[:len(v.prefix)]) != v.prefix ||
			string(seg[len(seg)-len(v.suffix):]) != v.suffix {
			continue
		}
		i := m.n
		m.spans[i] = [2]int{off + 1 + len(v.prefix), off + end - len(v.suffix)}
		m.n++
		if it := v.next.find(rest, off+end, m); it != nil {
			return it
		}
		m.n = i
	}
	return nil
}
