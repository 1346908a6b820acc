package chain

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Decode decodes a policy's parameters strictly into dst (a pointer to a
// struct with yaml tags): an unknown parameter is an error that lists the
// known ones, a wrong type is an error at the value's own line. A nil node
// (the policy written without parameters) leaves dst as it is.
func Decode(node *yaml.Node, dst any) error {
	if node == nil {
		return nil
	}
	if node.Kind != yaml.MappingNode {
		return &ParamError{Line: node.Line, Col: node.Column,
			Msg: fmt.Sprintf("parameters must be a mapping, not %s", kindName(node))}
	}
	if err := checkKnown(node, reflect.TypeOf(dst)); err != nil {
		return err
	}
	if err := node.Decode(dst); err != nil {
		return yamlError(node, err)
	}
	return nil
}

// ParamError is a parameter error at a line and column of the policy's
// YAML; Compile adds the file name.
type ParamError struct {
	Line, Col int
	Msg       string
}

func (e *ParamError) Error() string {
	if e.Line == 0 {
		return e.Msg
	}
	return fmt.Sprintf("%d:%d: %s", e.Line, e.Col, e.Msg)
}

// Errorf returns a ParamError at node's position.
func Errorf(node *yaml.Node, format string, args ...any) error {
	e := &ParamError{Msg: fmt.Sprintf(format, args...)}
	if node != nil {
		e.Line, e.Col = node.Line, node.Column
	}
	return e
}

// Field returns the value node of key in a mapping node, or nil.
func Field(node *yaml.Node, key string) *yaml.Node {
	if node == nil || node.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		if node.Content[i].Value == key {
			return node.Content[i+1]
		}
	}
	return nil
}

func checkKnown(node *yaml.Node, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case node.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		fields := map[string]reflect.Type{}
		collectFields(t, fields)
		for i := 0; i+1 < len(node.Content); i += 2 {
			k, v := node.Content[i], node.Content[i+1]
			ft, ok := fields[k.Value]
			if !ok {
				known := make([]string, 0, len(fields))
				for n := range fields {
					known = append(known, n)
				}
				sort.Strings(known)
				return &ParamError{Line: k.Line, Col: k.Column,
					Msg: fmt.Sprintf("unknown parameter %q; known parameters: %s", k.Value, strings.Join(known, ", "))}
			}
			if err := checkKnown(v, ft); err != nil {
				return err
			}
		}
	case node.Kind == yaml.SequenceNode && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
		for _, c := range node.Content {
			if err := checkKnown(c, t.Elem()); err != nil {
				return err
			}
		}
	}
	return nil
}

func collectFields(t reflect.Type, into map[string]reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			collectFields(ft, into)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		into[name] = f.Type
	}
}

var yamlLineRe = regexp.MustCompile(`line (\d+): (.*)`)

// yamlError turns yaml.v3's "line N: cannot unmarshal …" into a ParamError.
func yamlError(node *yaml.Node, err error) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:\n")
	first, _, _ := strings.Cut(strings.TrimSpace(msg), "\n")
	if m := yamlLineRe.FindStringSubmatch(first); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &ParamError{Line: line, Col: colOfLine(node, line), Msg: m[2]}
	}
	return &ParamError{Line: node.Line, Col: node.Column, Msg: first}
}

// colOfLine returns the column a type error on line is about: the value
// of a "key: value" pair that starts there, else the first node there.
func colOfLine(node *yaml.Node, line int) int {
	if node.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(node.Content); i += 2 {
			if k, v := node.Content[i], node.Content[i+1]; k.Line == line && v.Line == line {
				return v.Column
			}
		}
	}
	if node.Line == line {
		return node.Column
	}
	for _, c := range node.Content {
		if col := colOfLine(c, line); col != 0 {
			return col
		}
	}
	return 0
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("the value %q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "a document"
}
