package all_test

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/chain"
	_ "github.com/flexgate/flexgate/policies/all"
)

// TestNumberParametersDeclareBounds: every number parameter of every
// policy says what it accepts with the tags min and max, which
// chain.Decode checks and names in its error ("limit must be a whole
// number from 1 to 1000000, not 1e30"); without them a value far out of
// range would be told the bounds of a Go integer.
func TestNumberParametersDeclareBounds(t *testing.T) {
	var walk func(policy, path string, ty reflect.Type, seen map[reflect.Type]bool)
	walk = func(policy, path string, ty reflect.Type, seen map[reflect.Type]bool) {
		for ty.Kind() == reflect.Pointer || ty.Kind() == reflect.Slice || ty.Kind() == reflect.Array || ty.Kind() == reflect.Map {
			ty = ty.Elem()
		}
		if ty.Kind() != reflect.Struct || seen[ty] || ty == reflect.TypeOf(yaml.Node{}) ||
			reflect.PointerTo(ty).Implements(reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()) {
			// Types that read themselves are not decoded field by
			// field.
			return
		}
		seen[ty] = true
		for i := 0; i < ty.NumField(); i++ {
			f := ty.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" || !f.IsExported() && !strings.Contains(opts, "inline") {
				continue
			}
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft == reflect.TypeOf(time.Duration(0)) {
				// Written "2s", a duration rather than a number,
				// within its tags or the config's 1ms to 168h.
				continue
			}
			switch ft.Kind() {
			case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
				reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
				reflect.Float32, reflect.Float64:
				lo, okLo := f.Tag.Lookup("min")
				hi, okHi := f.Tag.Lookup("max")
				if !okLo || !okHi {
					t.Errorf("%s: parameter %s%s (%s) has no min and max tags", policy, path, name, ft)
					continue
				}
				a, errA := strconv.ParseFloat(lo, 64)
				b, errB := strconv.ParseFloat(hi, 64)
				if errA != nil || errB != nil || a > b {
					t.Errorf("%s: parameter %s%s has bounds min:%q max:%q", policy, path, name, lo, hi)
				}
			default:
				sub := path
				if name != "" && !strings.Contains(opts, "inline") {
					sub += name + "."
				}
				walk(policy, sub, f.Type, seen)
			}
		}
	}
	for _, name := range chain.Names() {
		reg, _ := chain.Lookup(name)
		walk(name, "", reflect.TypeOf(reg.New()), map[reflect.Type]bool{})
	}
}

// TestBooleanParametersTakeOnlyTrueOrFalse: every boolean parameter of
// every policy, wherever it sits, takes true or false as the rest of the
// config does; YAML 1.1's yes, which yaml.v3 would read as true into a Go
// bool, is refused in the same words as anywhere else.
func TestBooleanParametersTakeOnlyTrueOrFalse(t *testing.T) {
	unmarshaler := reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
	checked := 0
	check := func(policy, src string) {
		checked++
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
			t.Fatalf("%s: %s: %v", policy, src, err)
		}
		reg, _ := chain.Lookup(policy)
		err := chain.Decode(doc.Content[0], reg.New())
		if err == nil || !strings.Contains(err.Error(), `must be true or false, not "yes"`) {
			t.Errorf("%s: %s: error = %v, want … must be true or false, not \"yes\"", policy, src, err)
		}
	}
	// walk checks each boolean that a value of ty holds; at writes such
	// a value where it sits in the parameters.
	var walk func(policy string, ty reflect.Type, at func(string) string, seen map[reflect.Type]bool)
	walk = func(policy string, ty reflect.Type, at func(string) string, seen map[reflect.Type]bool) {
		for ty.Kind() == reflect.Pointer {
			ty = ty.Elem()
		}
		if ty == reflect.TypeOf(yaml.Node{}) || reflect.PointerTo(ty).Implements(unmarshaler) {
			return // reads itself
		}
		switch ty.Kind() {
		case reflect.Bool:
			check(policy, at("yes"))
		case reflect.Slice, reflect.Array:
			walk(policy, ty.Elem(), func(v string) string { return at("[" + v + "]") }, seen)
		case reflect.Map:
			walk(policy, ty.Elem(), func(v string) string { return at("{k: " + v + "}") }, seen)
		case reflect.Struct:
			if seen[ty] {
				return
			}
			seen[ty] = true
			for i := 0; i < ty.NumField(); i++ {
				f := ty.Field(i)
				name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
				switch {
				case name == "-":
				case strings.Contains(opts, "inline"):
					walk(policy, f.Type, at, seen)
				case f.IsExported():
					if name == "" {
						name = strings.ToLower(f.Name)
					}
					walk(policy, f.Type, func(v string) string { return at("{" + name + ": " + v + "}") }, seen)
				}
			}
		}
	}
	for _, name := range chain.Names() {
		reg, _ := chain.Lookup(name)
		walk(name, reflect.TypeOf(reg.New()), func(v string) string { return v }, map[reflect.Type]bool{})
	}
	if checked < 30 {
		t.Errorf("checked %d boolean parameters; the policies have more", checked)
	}
}
