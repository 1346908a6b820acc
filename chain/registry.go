package chain

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/flexgate/flexgate/config"
)

// Registration describes a policy package to the registry.
type Registration struct {
	// Name is what users write in a route's policies list.
	Name string
	// New returns a zero policy, ready for Decode.
	New func() Policy
	// KeyFrom, when set, names what else of the config a policy's state
	// depends on (the client registry, say): an instance is carried over a
	// reload only when its parameters and this key are both unchanged.
	KeyFrom func(cfg *config.Config, route *config.Route) string
	// ByPlace says the policy names its state by its place among the
	// route's policies of its name (Env.Before): a rate limit's budget in
	// Redis, a cache's namespace. An instance is then carried over a
	// reload only when that place is unchanged too, so that it names what
	// a replica starting on the new config names.
	ByPlace bool
	// Provides declares the values the policy sets on the Exchange for
	// the steps after it ("client.id"); see ValueSpec. Another policy may
	// provide the same value. Take the handles with MustValue once
	// Register has returned.
	Provides []ValueSpec
	// First makes the policy run before every other policy of a chain,
	// whatever its place in the route's list (several such policies keep
	// their order among themselves). CORS runs so, as in Flex Gateway: a
	// preflight is answered before any other policy sees it, and the
	// other policies' rejections still carry its headers.
	First bool
}

var (
	registryMu sync.RWMutex
	registry   = map[string]Registration{}
)

// Register adds a policy under its name, with the values it provides.
// Policy packages call it from init(); a duplicate name, a malformed value
// name or a value declared unlike another provider declares it panics,
// since it is a programming error. Safe for concurrent use.
func Register(r Registration) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if r.Name == "" || r.New == nil {
		panic("chain: Register needs a name and a constructor")
	}
	if _, dup := registry[r.Name]; dup {
		panic(fmt.Sprintf("chain: policy %q registered twice", r.Name))
	}
	addValues(r.Name, r.Provides)
	registry[r.Name] = r
}

// IsFlexPolicy reports whether name is one of MuleSoft Flex Gateway's
// policies (rate-limiting-flex, header-injection-flex: Flex names its
// policies so), which take Flex's parameters and read their values as Flex
// does, wherever they are written: text, unless the whole value is one
// #[...] expression (chain/expr). Safe for concurrent use.
func IsFlexPolicy(name string) bool { return strings.HasSuffix(name, "-flex") }

// Lookup returns the registration for name.
func Lookup(name string) (Registration, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	r, ok := registry[name]
	return r, ok
}

// Names lists the registered policy names, sorted.
func Names() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
