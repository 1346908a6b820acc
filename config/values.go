package config

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// decoder reads the YAML nodes of one file into the model, adding every
// problem to errs with the file's name. It is not safe for concurrent use.
type decoder struct {
	file string
	// dir resolves relative file names written in the file.
	dir  string
	errs *errorList
	// skipped counts the problems reported so far that the decoder skipped
	// over (see skipf).
	skipped int
}

func (d *decoder) pos(n *yaml.Node) Pos {
	return Pos{File: d.file, Line: n.Line, Col: n.Column}
}

// errorf reports a problem with the value at n: the value, and whatever
// holds it, is unusable (see mark).
func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	d.errs.add(d.pos(n), format, args...)
}

// skipf reports a problem that the decoder skips over, leaving what holds
// it usable: an unknown or repeated key, a list of the wrong shape or a bad
// entry in it. A listener, route or client with such a problem is still
// checked against the others (duplicate names, ambiguous paths), so that one
// run reports those problems too.
func (d *decoder) skipf(n *yaml.Node, format string, args ...any) {
	d.errorf(n, format, args...)
	d.skipped++
}

// mark counts the problems reported so far that make a value unusable. A
// decoder takes a mark before it reads a value and asks failed(mark) when it
// is done: the value is usable when nothing but skipped problems was
// reported in between.
func (d *decoder) mark() int { return d.errs.len() - d.skipped }

// failed reports whether a problem that makes a value unusable was reported
// since mark m.
func (d *decoder) failed(m int) bool { return d.mark() != m }

// resolve follows an alias to the node it names, so that anchors work
// wherever a value is expected.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// IsNull reports whether n is YAML's null (empty, ~ or null). Safe for
// concurrent use.
func IsNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// Describe names what a node is, for "must be X, not Y" messages. Safe for
// concurrent use.
func Describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if IsNull(n) {
			return "empty"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "an alias"
}

// field handles the value of one known key of a mapping.
type field func(key, val *yaml.Node)

// mapping calls the handler of each key of n in the order written. An
// unknown or repeated key is an error at the key that lists the known ones,
// skipped over (see skipf); what names the mapping in messages ("listener",
// "upstream"). It reports whether n was a mapping at all.
func (d *decoder) mapping(n *yaml.Node, what string, fields map[string]field) bool {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s must be a mapping with fields %s, not %s", what, knownList(fields), Describe(n))
		return false
	}
	seen := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		fn, ok := fields[k.Value]
		if !ok {
			d.skipf(k, "unknown field %q in %s; known fields: %s", k.Value, what, knownList(fields))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.skipf(k, "field %q given twice in %s (first at line %d); keep one", k.Value, what, first.Line)
			continue
		}
		seen[k.Value] = k
		fn(k, v)
	}
	return true
}

func knownList(fields map[string]field) string {
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	return strings.Join(sortedStrings(names), ", ")
}

func sortedStrings(s []string) []string {
	sort.Strings(s)
	return s
}

// filePath resolves a file name written in the config against the
// directory of the file it is written in, so that a config directory can
// be moved as a whole.
func (d *decoder) filePath(n *yaml.Node, what string) (string, bool) {
	s, ok := d.requiredStr(n, what)
	if !ok {
		return "", false
	}
	return ResolveFile(d.file, s), true
}

// ResolveFile resolves name, a file named in the config file configFile,
// against that file's directory, so that a config directory can be moved
// as a whole; an absolute name, or one from no file, stays as it is.
func ResolveFile(configFile, name string) string {
	if filepath.IsAbs(name) || configFile == "" {
		return name
	}
	return filepath.Join(filepath.Dir(configFile), name)
}

// str reads a scalar as text; an empty value reads as "".
func (d *decoder) str(n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, "%s must be a string, not %s", what, Describe(n))
		return "", false
	}
	if IsNull(n) {
		return "", true
	}
	return n.Value, true
}

// requiredStr reads a scalar that must not be empty.
func (d *decoder) requiredStr(n *yaml.Node, what string) (string, bool) {
	s, ok := d.str(n, what)
	if ok && s == "" {
		d.errorf(n, "%s must not be empty", what)
		return "", false
	}
	return s, ok
}

// wholeNumber reads an integer from min to max. A value that is not one
// (a fraction, a word, a number beyond what a computer holds, spaces a
// variable brought in) is an error that says what the field accepts; note,
// when not empty, is put after the range to say what a value means
// ("0: no limit").
func (d *decoder) wholeNumber(n *yaml.Node, what string, min, max int64, note string) (int64, bool) {
	if n.Kind != yaml.ScalarNode || IsNull(n) {
		d.errorf(n, "%s must be %s%s, not %s", what, wholeRange(min, max), note, Describe(n))
		return 0, false
	}
	v, err := ParseWhole(n.Value, min, max)
	if err != nil {
		d.errorf(n, "%s %s", what, withNote(err, note))
		return 0, false
	}
	return v, true
}

// positiveInt reads an integer in [1, max].
func (d *decoder) positiveInt(n *yaml.Node, what string, max int64) (int, bool) {
	v, ok := d.wholeNumber(n, what, 1, max, "")
	return int(v), ok
}

// NumberError says why a value is not a number a field takes, as a
// predicate that follows the field's name: `must be a whole number from 1
// to 65535, not "http"`. A caller may fill in Note, or change Accepts to
// its own words, before it reports it; it is not safe for concurrent use
// while it does.
type NumberError struct {
	// Accepts is what the field takes: "a whole number from 1 to 65535".
	Accepts string
	// Note follows Accepts, to say what a value means: " (0: no limit)".
	Note string
	// Value is the value as written; Parsed reports whether it reads as a
	// number at all, only out of range (then it is not quoted).
	Value  string
	Parsed bool
}

func (e *NumberError) Error() string {
	val := strconv.Quote(e.Value)
	if e.Parsed && strings.TrimSpace(e.Value) == e.Value {
		val = e.Value
	}
	msg := "must be " + e.Accepts + e.Note + ", not " + val
	if t := strings.TrimSpace(e.Value); t != e.Value && t != "" {
		// A variable's value often carries a space or a newline its
		// writer did not see.
		msg += "; remove the spaces around the value"
	}
	return msg
}

// withNote sets the Note of a *NumberError.
func withNote(err error, note string) error {
	var ne *NumberError
	if errors.As(err, &ne) {
		ne.Note = note
	}
	return err
}

func wholeRange(min, max int64) string {
	return fmt.Sprintf("a whole number from %d to %d", min, max)
}

// ParseWhole reads s as an integer from min to max, written in decimal
// with an optional sign, `_` allowed between digits (1_000_000). Nothing
// else is read as one: not 1.5 or 1e3, not 0x10, and not 017 as octal,
// as YAML 1.1 would. The error is a *NumberError. Safe for concurrent use.
func ParseWhole(s string, min, max int64) (int64, error) {
	e := &NumberError{Accepts: wholeRange(min, max), Value: s}
	v, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, 64)
	var ne *strconv.NumError
	switch {
	case err == nil:
		e.Parsed = true
	case errors.As(err, &ne) && ne.Err == strconv.ErrRange:
		// A whole number, larger than any field accepts.
		e.Parsed = true
		return 0, e
	default:
		return 0, e
	}
	if v < min || v > max {
		return 0, e
	}
	return v, nil
}

// numberSyntax is a decimal number: digits with an optional fraction and
// exponent. Go's ParseFloat reads more (Inf, NaN, hexadecimal), which no
// field means.
var numberSyntax = regexp.MustCompile(`^[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?$`)

// ParseNumber reads s as a decimal number from min to max; fractions and
// exponents are allowed, `_` between digits too. The error is a
// *NumberError. Safe for concurrent use.
func ParseNumber(s string, min, max float64) (float64, error) {
	e := &NumberError{Accepts: "a number from " + formatFloat(min) + " to " + formatFloat(max), Value: s}
	t := strings.ReplaceAll(s, "_", "")
	if !numberSyntax.MatchString(t) {
		return 0, e
	}
	e.Parsed = true
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < min || v > max {
		return 0, e
	}
	return v, nil
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func (d *decoder) boolean(n *yaml.Node, what string) (bool, bool) {
	if n.Kind == yaml.ScalarNode {
		if v, ok := ParseBool(n.Value); ok {
			return v, true
		}
	}
	d.errorf(n, "%s must be true or false, not %s", what, Describe(n))
	return false, false
}

// ParseBool reads a boolean as every boolean of a config is written: true
// or false, in any case. YAML 1.1's yes, no, on, off, y and n are not
// booleans: `on` and `n` read so would be surprises. Safe for concurrent
// use.
func ParseBool(s string) (v, ok bool) {
	switch strings.ToLower(s) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// duration reads a Go duration ("2s", "1m30s") that must be positive. A
// bare number is refused: "30" could mean seconds or milliseconds.
func (d *decoder) duration(n *yaml.Node, what string) (time.Duration, bool) {
	s, ok := d.str(n, what)
	if !ok {
		return 0, false
	}
	v, err := ParseDuration(s)
	if err != nil {
		d.errorf(n, "%s must be a duration with a unit like 500ms, 2s or 1m, not %q", what, s)
		return 0, false
	}
	switch {
	case v <= 0:
		d.errorf(n, "%s must be positive, not %q", what, s)
		return 0, false
	case v < MinDuration:
		// 1ns as a write timeout fails every answer; no network wait is
		// that short.
		d.errorf(n, "%s %q is shorter than a millisecond; use at least 1ms", what, s)
		return 0, false
	case v > MaxDuration:
		d.errorf(n, "%s %q is longer than a week; use at most 168h", what, s)
		return 0, false
	}
	return v, true
}

// ParseDuration reads a duration as Go writes one: "500ms", "1m30s". One
// written so but longer than Go holds (about 292 years) reads as the
// longest duration, or after a minus sign the most negative, so that a
// range check refuses it as out of range like any other too long or
// negative one, rather than as written wrong. Safe for concurrent use.
func ParseDuration(s string) (time.Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil && durationSyntax.MatchString(s) {
		if strings.HasPrefix(s, "-") {
			return math.MinInt64, nil
		}
		return math.MaxInt64, nil
	}
	return v, err
}

// durationSyntax is what time.ParseDuration reads, whatever the size.
var durationSyntax = regexp.MustCompile(`^[-+]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$`)

// MinDuration and MaxDuration bound every duration of a config: the
// timeouts, intervals and backoffs of the gateway, its routes and upstreams.
const (
	MinDuration = time.Millisecond
	MaxDuration = 7 * 24 * time.Hour
)

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	// Longest suffixes first so that "MiB" is not read as "B".
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"B", 1},
}

// size reads a byte count: an integer, or a number with a unit (10MiB,
// 512KiB, 10MB). Zero is allowed and means "the default".
func (d *decoder) size(n *yaml.Node, what string) (int64, bool) {
	s, ok := d.str(n, what)
	if !ok {
		return 0, false
	}
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v < 0 || v > (1<<62)/mult {
		d.errorf(n, "%s must be a size in bytes like 1048576, 512KiB, 10MiB, 1GiB or 10MB, not %q", what, s)
		return 0, false
	}
	return v * mult, true
}

// strEntry is one string of a list and the node it was written at.
type strEntry struct {
	val  string
	node *yaml.Node
}

// strEntries reads a list of non-empty strings; with single, a lone string
// reads as a list of one. A list of another shape, and bad entries, are
// reported and skipped over (see skipf).
func (d *decoder) strEntries(n *yaml.Node, what string, single bool) []strEntry {
	if single && n.Kind == yaml.ScalarNode && !IsNull(n) {
		return []strEntry{{n.Value, n}}
	}
	if n.Kind != yaml.SequenceNode {
		d.skipf(n, "%s must be a list of strings, not %s", what, Describe(n))
		return nil
	}
	out := make([]strEntry, 0, len(n.Content))
	for _, c := range n.Content {
		c = resolve(c)
		reported := d.errs.len()
		s, ok := d.requiredStr(c, what+" entry")
		if !ok {
			d.skipped += d.errs.len() - reported
			continue
		}
		out = append(out, strEntry{s, c})
	}
	return out
}

// list calls fn for each entry of a sequence. Another shape is reported
// and skipped over (see skipf).
func (d *decoder) list(n *yaml.Node, what string, fn func(*yaml.Node)) {
	if IsNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.skipf(n, "%s must be a list, not %s", what, Describe(n))
		return
	}
	for _, c := range n.Content {
		fn(resolve(c))
	}
}
