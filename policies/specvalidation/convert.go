package specvalidation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// An OpenAPI 3.1 schema is a JSON Schema (draft 2020-12); an OpenAPI 3.0
// one is a dialect of an older draft. converter turns either into a
// self-contained draft 2020-12 document that the request-validation
// package compiles: the 3.0 keywords written the 2020-12 way, OpenAPI's
// own annotations dropped, and every $ref into the spec inlined (a
// recursive schema keeps its references, under $defs).

// maxInlined bounds the schema objects one document may hold once its
// references are inlined; a larger one keeps them as references.
const maxInlined = 20000

var (
	errCycle   = errors.New("recursive schema")
	errTooMany = errors.New("too many schema objects once inlined")
)

type converter struct {
	// root is the whole spec as JSON, for references to resolve in.
	root any
	v30  bool

	// While a document is converted:
	budget int
	// defs mode: each reference becomes an entry of $defs.
	defs    map[string]any
	defKeys map[string]string
}

func newConverter(doc *openapi3.T) (*converter, error) {
	root, err := toJSON(doc)
	if err != nil {
		return nil, err
	}
	return &converter{root: root, v30: !doc.IsOpenAPI31OrLater()}, nil
}

// toJSON marshals v and decodes it again as plain values, numbers kept as
// written.
func toJSON(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		return nil, err
	}
	return out, nil
}

// document returns the draft 2020-12 document of a schema of the spec.
// request says the schema describes a request: a property marked readOnly
// is then not required (OpenAPI: it is not sent in requests).
func (c *converter) document(ref *openapi3.SchemaRef, request bool) ([]byte, error) {
	var start any
	if ref.Ref != "" {
		start = map[string]any{"$ref": ref.Ref}
	} else {
		v, err := toJSON(ref.Value)
		if err != nil {
			return nil, err
		}
		start = v
	}
	c.budget, c.defs, c.defKeys = maxInlined, nil, nil
	out, err := c.node(start, nil, request)
	if errors.Is(err, errCycle) || errors.Is(err, errTooMany) {
		c.budget, c.defs, c.defKeys = -1, map[string]any{}, map[string]string{}
		out, err = c.node(start, nil, request)
		if m, ok := out.(map[string]any); ok && err == nil {
			m["$defs"] = c.defs
		} else if err == nil {
			out = map[string]any{"allOf": []any{out}, "$defs": c.defs}
		}
	}
	if err != nil {
		return nil, err
	}
	return json.Marshal(out)
}

// Keywords whose value is a schema, a map of schemas or a list of them.
var (
	schemaKeywords = map[string]bool{"items": true, "additionalProperties": true, "not": true, "if": true, "then": true,
		"else": true, "contains": true, "propertyNames": true, "unevaluatedItems": true, "unevaluatedProperties": true,
		"contentSchema": true, "additionalItems": true}
	schemaMapKeywords  = map[string]bool{"properties": true, "patternProperties": true, "dependentSchemas": true, "$defs": true}
	schemaListKeywords = map[string]bool{"allOf": true, "anyOf": true, "oneOf": true, "prefixItems": true}
	// dropped are OpenAPI's annotations, which JSON Schema does not know
	// (nullable is turned into a type).
	dropped = map[string]bool{"nullable": true, "discriminator": true, "xml": true, "externalDocs": true, "example": true}
)

func (c *converter) node(v any, stack []string, request bool) (any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return v, nil // a boolean schema (3.1)
	}
	if c.budget >= 0 {
		if c.budget == 0 {
			return nil, errTooMany
		}
		c.budget--
	}
	if r, ok := m["$ref"].(string); ok {
		return c.ref(r, stack, request)
	}
	out := make(map[string]any, len(m))
	for k, val := range m {
		switch {
		case dropped[k] || strings.HasPrefix(k, "x-"):
		case schemaKeywords[k]:
			s, err := c.node(val, stack, request)
			if err != nil {
				return nil, err
			}
			out[k] = s
		case schemaMapKeywords[k]:
			sm, _ := val.(map[string]any)
			conv := make(map[string]any, len(sm))
			for name, sub := range sm {
				s, err := c.node(sub, stack, request)
				if err != nil {
					return nil, err
				}
				conv[name] = s
			}
			out[k] = conv
		case schemaListKeywords[k]:
			list, _ := val.([]any)
			conv := make([]any, len(list))
			for i, sub := range list {
				s, err := c.node(sub, stack, request)
				if err != nil {
					return nil, err
				}
				conv[i] = s
			}
			out[k] = conv
		default:
			out[k] = val
		}
	}
	if c.v30 {
		for _, b := range [][2]string{{"exclusiveMinimum", "minimum"}, {"exclusiveMaximum", "maximum"}} {
			if ex, ok := out[b[0]].(bool); ok {
				delete(out, b[0])
				if bound, has := out[b[1]]; ex && has {
					out[b[0]] = bound
					delete(out, b[1])
				}
			}
		}
	}
	if nullable, _ := m["nullable"].(bool); nullable {
		switch t := out["type"].(type) {
		case string:
			out["type"] = []any{t, "null"}
		case []any:
			if !containsValue(t, "null") {
				out["type"] = append(t, "null")
			}
		}
		if enum, ok := out["enum"].([]any); ok && !containsValue(enum, nil) {
			out["enum"] = append(enum, nil)
		}
	}
	if request {
		dropReadOnlyRequired(out)
	}
	return out, nil
}

// ref inlines the schema a reference points at, or in defs mode refers
// to its entry of $defs.
func (c *converter) ref(r string, stack []string, request bool) (any, error) {
	if c.defs != nil {
		key, ok := c.defKeys[r]
		if !ok {
			key = "s" + strconv.Itoa(len(c.defKeys))
			c.defKeys[r] = key
			target, err := c.resolve(r)
			if err != nil {
				return nil, err
			}
			s, err := c.node(target, nil, request)
			if err != nil {
				return nil, err
			}
			c.defs[key] = s
		}
		return map[string]any{"$ref": "#/$defs/" + key}, nil
	}
	for _, s := range stack {
		if s == r {
			return nil, errCycle
		}
	}
	target, err := c.resolve(r)
	if err != nil {
		return nil, err
	}
	return c.node(target, append(stack, r), request)
}

// resolve finds the value a reference into the spec points at.
func (c *converter) resolve(r string) (any, error) {
	p, ok := strings.CutPrefix(r, "#")
	if !ok {
		return nil, fmt.Errorf("$ref %q points outside the spec; nothing is fetched", r)
	}
	cur := c.root
	if p == "" {
		return cur, nil
	}
	for _, tok := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[tok]
			if !ok {
				return nil, fmt.Errorf("$ref %q points at nothing in the spec", r)
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(v) {
				return nil, fmt.Errorf("$ref %q points at nothing in the spec", r)
			}
			cur = v[i]
		default:
			return nil, fmt.Errorf("$ref %q points at nothing in the spec", r)
		}
	}
	return cur, nil
}

// dropReadOnlyRequired removes from "required" the properties marked
// readOnly: a client does not send them.
func dropReadOnlyRequired(s map[string]any) {
	req, _ := s["required"].([]any)
	props, _ := s["properties"].(map[string]any)
	if len(req) == 0 || len(props) == 0 {
		return
	}
	kept := req[:0:0]
	for _, name := range req {
		n, _ := name.(string)
		if p, ok := props[n].(map[string]any); ok && p["readOnly"] == true {
			continue
		}
		kept = append(kept, name)
	}
	if len(kept) == 0 {
		delete(s, "required")
		return
	}
	s["required"] = kept
}

func containsValue(list []any, v any) bool {
	for _, e := range list {
		if e == v {
			return true
		}
	}
	return false
}
