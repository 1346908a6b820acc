package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/flexgate/flexgate/proxy/router"
)

// shadowWarnings warns of every route that takes requests away from a
// broader route, because its pattern is more specific and matches no path
// the broader one does not, yet does not run all of the broader route's
// policies (by name): a client-id check on /api/* does not protect
// /api/public/*. Policies a route lists under withoutPolicies are
// acknowledged and not warned of.
func shadowWarnings(routes []Route) []Warning {
	entries := make([]router.Entry, len(routes))
	for i := range routes {
		entries[i] = routes[i].RouterEntry(i)
	}
	var ws []Warning
	for _, s := range router.Shadows(entries) {
		narrow, broad := &routes[s.Narrow], &routes[s.Broad]
		if !shareListener(narrow, broad) {
			// Routes on different ports never take each other's requests.
			continue
		}
		var missing []string
		for _, p := range broad.Policies {
			if !slices.Contains(missing, p.Name) && !slices.Contains(narrow.WithoutPolicies, p.Name) &&
				!slices.ContainsFunc(narrow.Policies, func(q PolicySpec) bool { return q.Name == p.Name }) {
				missing = append(missing, p.Name)
			}
		}
		if len(missing) == 0 {
			continue
		}
		noun, pronoun := "policy", "it"
		if len(missing) > 1 {
			noun, pronoun = "policies", "them"
		}
		list := strings.Join(missing, ", ")
		ws = append(ws, Warning{Pos: narrow.Pos, Message: fmt.Sprintf(
			"route %q (path %q) takes requests that route %q at %s (path %q) would serve, without its %s %s; "+
				"add %s to route %q, or, if that is intended, add `withoutPolicies: [%s]` to route %q",
			narrow.ID, s.NarrowPath, broad.ID, broad.Pos, s.BroadPath, noun, list, pronoun, narrow.ID, list, narrow.ID)})
	}
	return ws
}

// shareListener reports whether two routes serve on a listener in common;
// a route without Listeners serves on every one.
func shareListener(a, b *Route) bool {
	if len(a.Listeners) == 0 || len(b.Listeners) == 0 {
		return true
	}
	for _, l := range a.Listeners {
		if slices.Contains(b.Listeners, l) {
			return true
		}
	}
	return false
}
