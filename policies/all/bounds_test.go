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
