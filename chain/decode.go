package chain

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/config"
)

// Expression is a parameter that holds an expression template (see
// chain/expr). Decode leaves its `$env.NAME` references for the template
// compiler, which reads the variable's value as literal text; in any other
// parameter Decode substitutes them itself.
type Expression string

var expressionType = reflect.TypeOf(Expression(""))

// Decode decodes a policy's parameters strictly into dst (a pointer to a
// struct with yaml tags): an unknown parameter is an error that lists the
// known ones, a wrong type is an error at the value's own line, an unset
// environment variable an error at the value that names it. A nil node (the
// policy written without parameters) leaves dst as it is. The node itself
// is not changed.
func Decode(node *yaml.Node, dst any) error {
	if node == nil {
		return nil
	}
	if node.Kind != yaml.MappingNode {
		return &ParamError{Line: node.Line, Col: node.Column,
			Msg: fmt.Sprintf("parameters must be a mapping, not %s", kindName(node))}
	}
	// The copy expands every alias: bound it first, since nothing in
	// yaml.v3 does once the aliases are gone.
	var ae *config.AliasError
	if errors.As(config.CheckAliases(node), &ae) {
		return &ParamError{Line: ae.Alias.Line, Col: ae.Alias.Column, Msg: ae.Msg}
	}
	expanded := copyNode(node)
	// Checked on the copy, so that a block reused through an alias is as
	// strict as one written out.
	if err := checkKnown(expanded, reflect.TypeOf(dst)); err != nil {
		return err
	}
	if err := expandEnv(expanded, reflect.TypeOf(dst)); err != nil {
		return err
	}
	if err := expanded.Decode(dst); err != nil {
		return yamlError(expanded, err)
	}
	return nil
}

// copyNode deep-copies n, resolving aliases to copies of what they name,
// so that `$env` behind an alias is substituted like any other value. The
// caller bounds n with config.CheckAliases first.
func copyNode(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return copyNode(n.Alias)
	}
	c := *n
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, k := range n.Content {
		c.Content[i] = copyNode(k)
	}
	return &c
}

// expandEnv substitutes `$env.NAME` in the scalars under n that decode into
// anything but an Expression, walking n along t.
func expandEnv(n *yaml.Node, t reflect.Type) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == expressionType {
		return nil
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if err := config.ExpandEnv(n); err != nil {
			return &ParamError{Line: n.Line, Col: n.Column, Msg: err.Error()}
		}
	case yaml.SequenceNode:
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for _, c := range n.Content {
			if err := expandEnv(c, elem); err != nil {
				return err
			}
		}
	case yaml.MappingNode:
		fields := map[string]reflect.Type{}
		var elem reflect.Type
		switch {
		case t != nil && t.Kind() == reflect.Struct:
			collectFields(t, fields)
		case t != nil && t.Kind() == reflect.Map:
			elem = t.Elem()
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			ft := elem
			if f, ok := fields[n.Content[i].Value]; ok {
				ft = f
			}
			if err := expandEnv(n.Content[i+1], ft); err != nil {
				return err
			}
		}
	}
	return nil
}

// ParamError is a parameter error at a line and column of the policy's
// YAML; Compile adds the file name.
type ParamError struct {
	Line, Col int
	Msg       string
	// node and offset place an error about one place inside a value
	// (ValueError); Compile finds that place's exact position in the
	// file.
	node   *yaml.Node
	offset int
}

func (e *ParamError) Error() string {
	if e.Line == 0 {
		return e.Msg
	}
	return fmt.Sprintf("%d:%d: %s", e.Line, e.Col, e.Msg)
}

// Errorf returns a ParamError at node's position. When one of args is a
// ValueError about node's value (an expression's error), the position is
// that of the place in the value it names.
func Errorf(node *yaml.Node, format string, args ...any) error {
	e := &ParamError{Msg: fmt.Sprintf(format, args...)}
	if node != nil {
		e.Line, e.Col = node.Line, node.Column
		if off, ok := valueOffset(node, args); ok {
			e.node, e.offset = node, off
			e.Line, e.Col = approxPos(node, off)
		}
	}
	return e
}

// Field returns the value node of key in a mapping node, or nil. A value
// written as an alias is returned as the node the alias names, so that a
// policy reads a reused block as if it were written out.
func Field(node *yaml.Node, key string) *yaml.Node {
	if node == nil || node.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		if node.Content[i].Value == key {
			v := node.Content[i+1]
			if v.Kind == yaml.AliasNode && v.Alias != nil {
				v = v.Alias
			}
			return v
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
