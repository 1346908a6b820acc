package chain

import (
	"strings"
	"sync"
	"testing"
)

type nopPolicy struct{}

func (nopPolicy) Validate(*Env) error  { return nil }
func (nopPolicy) Provision(*Env) error { return nil }
func (nopPolicy) Close() error         { return nil }

func newNop() Policy { return nopPolicy{} }

// The registry is global and refuses a name twice, while a test may run
// more than once (go test -count): each test registers its policies once.
var registerVT, registerVTEx sync.Once

// TestValueRegistration: names that an expression could not write, or
// that would shadow another value, are refused when a policy registers.
func TestValueRegistration(t *testing.T) {
	panics := func(what string, fn func(), want string) {
		t.Helper()
		defer func() {
			t.Helper()
			r := recover()
			if msg, _ := r.(string); !strings.Contains(msg, want) {
				t.Errorf("%s: panic %v, want one containing %q", what, r, want)
			}
		}()
		fn()
	}
	reg := func(name string, specs ...ValueSpec) func() {
		return func() { Register(Registration{Name: name, New: newNop, Provides: specs}) }
	}
	registerVT.Do(func() {
		Register(Registration{Name: "vt-a", New: newNop, Provides: []ValueSpec{{Name: "vt.id"}, {Name: "vt.claims", Object: true}}})
		Register(Registration{Name: "vt-b", New: newNop, Provides: []ValueSpec{{Name: "vt.id"}}})
		RegisterAlias("vt.alias", "vt.id")
	})

	panics("bad name", reg("vt-bad", ValueSpec{Name: "vt..x"}), "is not a value name")
	panics("dash", reg("vt-dash", ValueSpec{Name: "vt.a-b"}), "is not a value name")
	panics("digit first", reg("vt-digit", ValueSpec{Name: "vt.1"}), "is not a value name")
	panics("reserved", reg("vt-req", ValueSpec{Name: "request.user"}), `names under "request" are the gateway's own`)
	panics("reserved env", func() { RegisterAlias("env.X", "vt.id") }, `names under "env"`)
	panics("twice", reg("vt-twice", ValueSpec{Name: "vt.t"}, ValueSpec{Name: "vt.t"}), "declares value \"vt.t\" twice")
	panics("kind", reg("vt-kind", ValueSpec{Name: "vt.id", Object: true}), "with Object true, but vt-a, vt-b declares it with Object false")
	panics("below object", reg("vt-below", ValueSpec{Name: "vt.claims.sub"}), `"vt.claims.sub" lies below "vt.claims"`)
	panics("object above", reg("vt-above", ValueSpec{Name: "vt", Object: true}), `lies below "vt"`)
	panics("alias is value", func() { RegisterAlias("vt.id", "vt.other") }, "already the name of a value")
	panics("value is alias", reg("vt-alias", ValueSpec{Name: "vt.alias"}), "registered as an alias")
	panics("alias twice", func() { RegisterAlias("vt.alias", "vt.other") }, `already registered, for "vt.id"`)
	panics("alias chain", func() { RegisterAlias("vt.alias2", "vt.alias") }, `point it at "vt.id"`)
	panics("alias below object", func() { RegisterAlias("vt.claims.x", "vt.id") }, "lies below")
	panics("must", func() { MustValue("vt.nothing") }, `no value "vt.nothing" is registered`)

	id, _ := LookupValue("vt.id")
	alias, _ := LookupValue("vt.alias")
	if id.Value != alias.Value || id.Value == (Value{}) || alias.Name != "vt.id" {
		t.Errorf("vt.alias = %+v, vt.id = %+v", alias, id)
	}
}

// TestExchangeValues: values are per request, cleared by Reset, and the
// zero Value reads as empty.
func TestExchangeValues(t *testing.T) {
	registerVTEx.Do(func() {
		Register(Registration{Name: "vt-ex", New: newNop, Provides: []ValueSpec{{Name: "vtex.one"}, {Name: "vtex.two"}}})
	})
	one, two := MustValue("vtex.one"), MustValue("vtex.two")
	ex := AcquireExchange()
	defer ReleaseExchange(ex)
	if len(ex.Value(one)) != 0 || len(ex.Value(Value{})) != 0 {
		t.Fatal("a fresh exchange holds values")
	}
	src := []byte("alice")
	ex.SetValue(two, src)
	ex.SetValue(Value{}, []byte("nowhere"))
	src[0] = 'X' // the exchange holds a copy
	if string(ex.Value(two)) != "alice" || len(ex.Value(one)) != 0 {
		t.Fatalf("one %q two %q", ex.Value(one), ex.Value(two))
	}
	ex.Reset()
	if len(ex.Value(two)) != 0 {
		t.Fatalf("after Reset: %q", ex.Value(two))
	}
	if n := testing.AllocsPerRun(100, func() {
		ex.SetValue(one, []byte("bob"))
		ex.SetValue(two, []byte("carol"))
		_ = ex.Value(one)
		ex.Reset()
	}); n != 0 {
		t.Fatalf("%v allocations per request's values, want 0", n)
	}
}
