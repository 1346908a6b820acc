package chain

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
)

// Value is a handle on one registered value: its place in every Exchange.
// The zero Value stands for no value: it reads as empty and setting it does
// nothing. A Value is a small integer, safe to copy and to use from any
// goroutine.
type Value struct {
	// slot is the value's index in Exchange.vals, plus one.
	slot int32
}

// ValueSpec declares one value that a policy provides.
type ValueSpec struct {
	// Name is how expressions refer to the value, without the `$`:
	// words of letters, digits and '_', each beginning with a letter,
	// joined by dots ("client.id"). The names of the request's own
	// expressions (request, env, datetime, requestId) are taken.
	Name string
	// Object marks a value that holds one JSON object, such as a token's
	// claims. Expressions read its members by name below it:
	// $token.claims.email, $token.claims.address.country. No other value
	// may be registered below an object's name.
	Object bool
}

// ValueInfo describes a registered value.
type ValueInfo struct {
	// Name is the value's own name (an alias resolves to it).
	Name string
	// Value is the handle to set and read it with.
	Value Value
	// Object reports a JSON object value (see ValueSpec.Object).
	Object bool
	// Aliases are the other names that resolve to the value, sorted.
	Aliases []string
	// Providers are the registered policies that provide the value,
	// sorted.
	Providers []string
}

type valueEntry struct {
	name      string
	value     Value
	object    bool
	providers []string
}

// The value registry shares registryMu with the policies.
var (
	values = map[string]*valueEntry{}
	// aliases maps an alias to the name it stands for; the name may be
	// registered after the alias (init order across packages is not
	// chosen by them).
	aliases = map[string]string{}
	// valueCount is how many values are registered: the size of an
	// Exchange's value table.
	valueCount atomic.Int32
)

// reservedRoots are the first words of the expressions every request has;
// no value may be registered under them.
var reservedRoots = []string{"request", "env", "datetime", "requestId"}

// checkValueName panics unless name can be written as an expression.
func checkValueName(what, name string) {
	words := strings.Split(name, ".")
	for _, w := range words {
		ok := w != "" && isASCIILetter(w[0])
		for i := 1; ok && i < len(w); i++ {
			ok = isASCIILetter(w[i]) || w[i] >= '0' && w[i] <= '9' || w[i] == '_'
		}
		if !ok {
			panic(fmt.Sprintf("chain: %s %q is not a value name: join words of letters, digits and '_', each beginning with a letter, with dots", what, name))
		}
	}
	if slices.Contains(reservedRoots, words[0]) {
		panic(fmt.Sprintf("chain: %s %q: names under %q are the gateway's own expressions", what, name, words[0]))
	}
}

func isASCIILetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// addValues records the values policy provides. It checks everything
// before it changes anything, so that a panic leaves the registry as it
// was. The caller holds registryMu.
func addValues(policy string, specs []ValueSpec) {
	var fresh []ValueSpec
	for i, s := range specs {
		checkValueName("policy "+policy+" provides value", s.Name)
		for _, o := range specs[:i] {
			if o.Name == s.Name {
				panic(fmt.Sprintf("chain: policy %s declares value %q twice", policy, s.Name))
			}
		}
		if _, alias := aliases[s.Name]; alias {
			panic(fmt.Sprintf("chain: policy %s provides value %q, which is registered as an alias", policy, s.Name))
		}
		if e := values[s.Name]; e != nil {
			if e.object != s.Object {
				panic(fmt.Sprintf("chain: policy %s declares value %q with Object %v, but %s declares it with Object %v",
					policy, s.Name, s.Object, strings.Join(e.providers, ", "), e.object))
			}
			continue
		}
		fresh = append(fresh, s)
	}
	checkValueNesting(fresh, "", "")
	for _, s := range fresh {
		values[s.Name] = &valueEntry{name: s.Name, object: s.Object, value: Value{slot: valueCount.Add(1)}}
	}
	for _, s := range specs {
		e := values[s.Name]
		e.providers = append(e.providers, policy)
		slices.Sort(e.providers)
	}
}

// RegisterAlias makes alias another name of the value name, so that an
// expression may write either; both read the same place of an Exchange,
// and any policy that provides name provides the alias. name may be
// registered later (by a policy's Registration); until it is, the alias
// resolves to nothing. Call it from init(); an alias that is already a
// value's name or another alias, or a name that is itself an alias, panics
// (a programming error). Safe for concurrent use.
func RegisterAlias(alias, name string) {
	registryMu.Lock()
	defer registryMu.Unlock()
	checkValueName("alias", alias)
	checkValueName("value", name)
	if _, dup := values[alias]; dup {
		panic(fmt.Sprintf("chain: alias %q is already the name of a value", alias))
	}
	if to, dup := aliases[alias]; dup {
		panic(fmt.Sprintf("chain: alias %q is already registered, for %q", alias, to))
	}
	if alias == name {
		panic(fmt.Sprintf("chain: alias %q names itself", alias))
	}
	checkValueNesting(nil, alias, name)
	aliases[alias] = name
}

// checkValueNesting panics when, with the values fresh and the alias added
// to the registry, a name would lie below an object value's name, where an
// expression reads the object's member instead, or an alias would point at
// another alias. The caller holds registryMu.
func checkValueNesting(fresh []ValueSpec, alias, aliasFor string) {
	all := maps.Clone(aliases)
	if alias != "" {
		all[alias] = aliasFor
	}
	objects := map[string]string{} // an object's names → its value name
	var names []string
	for n, e := range values {
		names = append(names, n)
		if e.object {
			objects[n] = n
		}
	}
	for _, s := range fresh {
		names = append(names, s.Name)
		if s.Object {
			objects[s.Name] = s.Name
		}
	}
	for a, n := range all {
		names = append(names, a)
		if to, chained := all[n]; chained {
			panic(fmt.Sprintf("chain: alias %q points at %q, which is an alias too: point it at %q", a, n, to))
		}
		if _, ok := objects[n]; ok {
			objects[a] = n
		}
	}
	for _, name := range names {
		for i := 0; i < len(name); i++ {
			if name[i] != '.' {
				continue
			}
			if obj, ok := objects[name[:i]]; ok {
				panic(fmt.Sprintf("chain: %q lies below %q, a JSON object value (%q), whose members expressions read there", name, name[:i], obj))
			}
		}
	}
}

// LookupValue returns the value registered under name or under an alias
// name. Safe for concurrent use; it is meant for load time, not for the
// request path (keep the Value it returns).
func LookupValue(name string) (ValueInfo, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	if to, ok := aliases[name]; ok {
		name = to
	}
	e := values[name]
	if e == nil {
		return ValueInfo{}, false
	}
	return infoOf(e), true
}

// MustValue returns the handle of the value registered under name (or an
// alias), for the policy that provides it to keep from init() on. It panics
// when no value has that name. Safe for concurrent use.
func MustValue(name string) Value {
	info, ok := LookupValue(name)
	if !ok {
		panic(fmt.Sprintf("chain: no value %q is registered: declare it in the Provides of a Registration first", name))
	}
	return info.Value
}

// Values lists the registered values, sorted by name. Safe for concurrent
// use.
func Values() []ValueInfo {
	registryMu.RLock()
	defer registryMu.RUnlock()
	out := make([]ValueInfo, 0, len(values))
	for _, e := range values {
		out = append(out, infoOf(e))
	}
	slices.SortFunc(out, func(a, b ValueInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// infoOf describes e; the caller holds registryMu.
func infoOf(e *valueEntry) ValueInfo {
	info := ValueInfo{Name: e.name, Value: e.value, Object: e.object, Providers: slices.Clone(e.providers)}
	for a, n := range aliases {
		if n == e.name {
			info.Aliases = append(info.Aliases, a)
		}
	}
	slices.Sort(info.Aliases)
	return info
}
