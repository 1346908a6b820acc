package chain

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

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
// known ones, a value of the wrong shape an error at the value that says
// what the parameter takes, an unset environment variable an error at the
// value that names it. A nil node (the policy written without parameters)
// leaves dst as it is. The node itself is not changed.
//
// A number parameter declares the values it takes with the tags min and
// max (`yaml:"limit" min:"1" max:"1000000"`), which Decode checks, so that
// every number is refused in the same words: "limit must be a whole number
// from 1 to 1000000, not 0"; a tag note says what a value means, after the
// range (`note:"-1: no limit"` reads "from -1 to 100 (-1: no limit)"). An
// integer is written in decimal (1_000 too), a float as a decimal number;
// a number in quotes, or from a variable, reads as it would without them.
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
	// strict as one written out. Every problem is reported, not the first:
	// unknown names, unset variables and values of the wrong shape.
	known := checkKnown(expanded, reflect.TypeOf(dst))
	env := expandEnv(expanded, reflect.TypeOf(dst))
	shape := checkShape(expanded, reflect.TypeOf(dst), "parameters", reflect.StructTag(""))
	if errs := flatten(errors.Join(known, env, withoutPlaces(shape, env))); errs[0] != nil {
		// In the order they are written.
		at := func(e error) (int, int) {
			var pe *ParamError
			if errors.As(e, &pe) {
				return pe.Line, pe.Col
			}
			return math.MaxInt, 0 // after those placed
		}
		slices.SortStableFunc(errs, func(a, b error) int {
			la, ca := at(a)
			lb, cb := at(b)
			return cmp.Or(cmp.Compare(la, lb), cmp.Compare(ca, cb))
		})
		return errors.Join(errs...)
	}
	if err := expanded.Decode(dst); err != nil {
		// An UnmarshalYAML of a parameter's type says what is wrong
		// itself.
		var pe *ParamError
		if errors.As(err, &pe) {
			return pe
		}
		return yamlError(expanded, err)
	}
	return nil
}

var (
	yamlNodeType    = reflect.TypeOf(yaml.Node{})
	durationType    = reflect.TypeOf(time.Duration(0))
	unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
)

// checkShape checks that the value n, which decodes into t, has the shape
// t takes, so that a mistake is named in the user's words rather than in
// yaml's and Go's ("cannot unmarshal !!seq into chain.Expression"); what
// names the value in messages and tag is its field's tags. Numbers are
// checked against their tags' bounds and written back in the form yaml
// decodes (see Decode). n is Decode's copy, whose aliases are expanded.
func checkShape(n *yaml.Node, t reflect.Type, what string, tag reflect.StructTag) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t == yamlNodeType || t.Kind() == reflect.Interface || config.IsNull(n) {
		// A null leaves the zero value, which Validate judges.
		return nil
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		// The type reads its own shapes: ask it, and name the parameter
		// in what it says.
		err := n.Decode(reflect.New(t).Interface())
		if err == nil {
			return nil
		}
		var pe *ParamError
		if errors.As(err, &pe) {
			return pe
		}
		return &ParamError{Line: n.Line, Col: n.Column, Msg: what + " " + err.Error()}
	}
	bad := func(takes string) error {
		return &ParamError{Line: n.Line, Col: n.Column, Msg: fmt.Sprintf("%s must be %s, not %s", what, takes, config.Describe(n))}
	}
	switch t.Kind() {
	case reflect.Struct:
		fields := map[string]reflect.StructField{}
		collectFields(t, fields)
		if n.Kind != yaml.MappingNode {
			return bad("a mapping with parameters " + strings.Join(sortedNames(fields), ", "))
		}
		var errs []error
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			// checkKnown has refused keys that are not fields.
			if f, ok := fields[k.Value]; ok {
				errs = append(errs, checkShape(n.Content[i+1], f.Type, k.Value, f.Tag))
			}
		}
		return errors.Join(errs...)
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return bad("a list")
		}
		var errs []error
		for _, c := range n.Content {
			errs = append(errs, checkShape(c, t.Elem(), "each entry of "+what, tag))
		}
		return errors.Join(errs...)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return bad("a mapping")
		}
		var errs []error
		for i := 0; i+1 < len(n.Content); i += 2 {
			errs = append(errs, checkShape(n.Content[i+1], t.Elem(), what+" "+n.Content[i].Value, tag))
		}
		return errors.Join(errs...)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			return bad("a string")
		}
	case reflect.Bool:
		// Only true and false, as in the rest of the config: yaml
		// would read YAML 1.1's yes, no, on, off, y and n too.
		v, ok := false, n.Kind == yaml.ScalarNode
		if ok {
			v, ok = config.ParseBool(n.Value)
		}
		if !ok {
			return bad("true or false")
		}
		// Written back as yaml reads it: "True" and "true" in quotes
		// read as unquoted true.
		n.Value, n.Tag, n.Style = strconv.FormatBool(v), "!!bool", 0
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		if t == durationType {
			if n.Kind != yaml.ScalarNode {
				return bad(durationTakes)
			}
			lo := durationTag(tag, "min", config.MinDuration)
			hi := durationTag(tag, "max", config.MaxDuration)
			if _, err := ParseDuration(n, what, n.Value, lo, hi, tag.Get("note")); err != nil {
				return err
			}
			// yaml reads a time.Duration as Go writes one, "2s", but
			// a number as nanoseconds: "0" is one.
			n.Tag = "!!str"
			return nil
		}
		return checkNumber(n, t, what, tag)
	}
	return nil
}

// durationTakes is what a duration parameter takes, in messages.
const durationTakes = "a duration with a unit like 500ms, 2s or 1m"

// ParseDuration reads s, the duration parameter name written at node,
// which takes lo to hi: as Go writes a duration, with a unit, since a bare
// number could mean seconds or milliseconds. note, when not empty, says
// what the range means and follows it in the error, as a number
// parameter's note tag does. Every duration of every policy is read here,
// so that each is refused in the same words:
//
//	storeTimeout must be a duration with a unit like 500ms, 2s or 1m, not "10"
//	storeTimeout "5s" is out of range: use 1ms to 1s (a request waits …)
//
// One longer than Go holds, or negative, is out of range too. A duration
// field of a policy's parameters (time.Duration) is read so by Decode, lo
// and hi being its tags min and max ("1ms", "1s") or else
// config.MinDuration and config.MaxDuration. Safe for concurrent use.
func ParseDuration(node *yaml.Node, name, s string, lo, hi time.Duration, note string) (time.Duration, error) {
	d, err := config.ParseDuration(s)
	if err != nil {
		got := strconv.Quote(s)
		if node != nil && config.IsNull(node) {
			got = config.Describe(node)
		}
		return 0, Errorf(node, "%s must be %s, not %s", name, durationTakes, got)
	}
	if d < lo || d > hi {
		if note != "" {
			note = " (" + note + ")"
		}
		return 0, Errorf(node, "%s %q is out of range: use %s to %s%s", name, s, fmtDuration(lo), fmtDuration(hi), note)
	}
	return d, nil
}

// fmtDuration writes d as a user would: 168h rather than 168h0m0s.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// durationTag reads the bound key of a duration field's tag, def when
// there is none. A tag that is not a duration is a programming error.
func durationTag(tag reflect.StructTag, key string, def time.Duration) time.Duration {
	s, ok := tag.Lookup(key)
	if !ok {
		return def
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		panic(fmt.Sprintf("chain: tag %s:%q of a duration parameter is not a duration", key, s))
	}
	return v
}

// checkNumber checks the number n, which decodes into t (a number kind),
// against the bounds of its tags, and writes it back as yaml reads it.
func checkNumber(n *yaml.Node, t reflect.Type, what string, tag reflect.StructTag) error {
	var err error
	var text, accepts string
	switch t.Kind() {
	case reflect.Float32, reflect.Float64:
		lo, hi := -math.MaxFloat64, math.MaxFloat64
		if t.Kind() == reflect.Float32 {
			lo, hi = -math.MaxFloat32, math.MaxFloat32
		}
		lo, hi = floatTag(t, tag, "min", lo), floatTag(t, tag, "max", hi)
		accepts = "a number from " + fmtFloat(lo) + " to " + fmtFloat(hi)
		if _, bounded := tag.Lookup("max"); !bounded {
			accepts = "a number"
		}
		if n.Kind == yaml.ScalarNode {
			var v float64
			if v, err = config.ParseNumber(n.Value, lo, hi); err == nil {
				text, n.Tag = strconv.FormatFloat(v, 'g', -1, 64), "!!float"
			}
		}
	default:
		lo, hi := intBounds(t)
		lo, hi = intTag(t, tag, "min", lo), intTag(t, tag, "max", hi)
		accepts = fmt.Sprintf("a whole number from %d to %d", lo, hi)
		if n.Kind == yaml.ScalarNode {
			var v int64
			if v, err = config.ParseWhole(n.Value, lo, hi); err == nil {
				text, n.Tag = strconv.FormatInt(v, 10), "!!int"
			}
		}
	}
	if n.Kind != yaml.ScalarNode {
		return &ParamError{Line: n.Line, Col: n.Column, Msg: fmt.Sprintf("%s must be %s%s, not %s", what, accepts, noteOf(tag), config.Describe(n))}
	}
	if err != nil {
		var ne *config.NumberError
		if errors.As(err, &ne) {
			ne.Accepts, ne.Note = accepts, noteOf(tag)
		}
		return &ParamError{Line: n.Line, Col: n.Column, Msg: what + " " + err.Error()}
	}
	n.Value, n.Style = text, 0
	return nil
}

// intBounds are the values an integer type holds.
func intBounds(t reflect.Type) (int64, int64) {
	bits := t.Bits()
	switch t.Kind() {
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if bits == 64 {
			// Above MaxInt64 is past anything a parameter means.
			return 0, math.MaxInt64
		}
		return 0, 1<<bits - 1
	}
	return -1 << (bits - 1), 1<<(bits-1) - 1
}

// intTag reads the bound key of an integer field's tag, def when there is
// none. A tag that is not a number of the type is a programming error.
func intTag(t reflect.Type, tag reflect.StructTag, key string, def int64) int64 {
	s, ok := tag.Lookup(key)
	if !ok {
		return def
	}
	lo, hi := intBounds(t)
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < lo || v > hi {
		panic(fmt.Sprintf("chain: tag %s:%q of a %s parameter is not a whole number it holds", key, s, t))
	}
	return v
}

// floatTag reads the bound key of a float field's tag, def when there is
// none.
func floatTag(t reflect.Type, tag reflect.StructTag, key string, def float64) float64 {
	s, ok := tag.Lookup(key)
	if !ok {
		return def
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		panic(fmt.Sprintf("chain: tag %s:%q of a %s parameter is not a number", key, s, t))
	}
	return v
}

// noteOf is a number field's note tag, as it follows the range.
func noteOf(tag reflect.StructTag) string {
	if note := tag.Get("note"); note != "" {
		return " (" + note + ")"
	}
	return ""
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func sortedNames(fields map[string]reflect.StructField) []string {
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
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
		var errs []error
		for _, c := range n.Content {
			errs = append(errs, expandEnv(c, elem))
		}
		return errors.Join(errs...)
	case yaml.MappingNode:
		fields := map[string]reflect.StructField{}
		var elem reflect.Type
		switch {
		case t != nil && t.Kind() == reflect.Struct:
			collectFields(t, fields)
		case t != nil && t.Kind() == reflect.Map:
			elem = t.Elem()
		}
		var errs []error
		for i := 0; i+1 < len(n.Content); i += 2 {
			ft := elem
			if f, ok := fields[n.Content[i].Value]; ok {
				ft = f.Type
			}
			errs = append(errs, expandEnv(n.Content[i+1], ft))
		}
		return errors.Join(errs...)
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
	var errs []error
	switch {
	case node.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		fields := map[string]reflect.StructField{}
		collectFields(t, fields)
		for i := 0; i+1 < len(node.Content); i += 2 {
			k, v := node.Content[i], node.Content[i+1]
			f, ok := fields[k.Value]
			if !ok {
				errs = append(errs, &ParamError{Line: k.Line, Col: k.Column,
					Msg: fmt.Sprintf("unknown parameter %q; known parameters: %s", k.Value, strings.Join(sortedNames(fields), ", "))})
				continue
			}
			errs = append(errs, checkKnown(v, f.Type))
		}
	case node.Kind == yaml.SequenceNode && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
		for _, c := range node.Content {
			errs = append(errs, checkKnown(c, t.Elem()))
		}
	}
	return errors.Join(errs...)
}

// withoutPlaces is err less the ParamErrors at a line and column of one in
// other: a value whose variable is unset is not also of the wrong shape.
func withoutPlaces(err, other error) error {
	if err == nil || other == nil {
		return err
	}
	taken := map[[2]int]bool{}
	for _, e := range flatten(other) {
		var pe *ParamError
		if errors.As(e, &pe) {
			taken[[2]int{pe.Line, pe.Col}] = true
		}
	}
	var keep []error
	for _, e := range flatten(err) {
		var pe *ParamError
		if errors.As(e, &pe) && taken[[2]int{pe.Line, pe.Col}] {
			continue
		}
		keep = append(keep, e)
	}
	return errors.Join(keep...)
}

// flatten lists the errors errors.Join put together in err, however
// nested, in order; err itself when it is no join.
func flatten(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, flatten(e)...)
	}
	return out
}

func collectFields(t reflect.Type, into map[string]reflect.StructField) {
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
		into[name] = f
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
