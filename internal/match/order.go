package match

import (
	"math"
	"slices"
	"strings"
)

// Compare orders two routes' conditions for a router that tries the routes
// of one path pattern in turn: it returns a negative number when a's
// routes are to be tried before b's, a positive one for the opposite, and
// 0 when neither comes first (the config's order decides). Conditions that
// narrow others come first:
//
//  1. routes limited to listeners, the fewest listeners first;
//  2. routes limited to hosts: only exact names before wildcards, a
//     wildcard's longer suffix (*.eu.example.com) before a shorter one,
//     fewer hosts before more;
//  3. more headers before fewer;
//  4. rules before none;
//  5. a longer StripPrefix before a shorter one.
//
// When the conditions of a route imply those of another (see Implies) it
// comes first; Ambiguous tells the other cases apart. Compare is safe for
// concurrent use.
func Compare(a, b *Spec) int {
	ka, kb := a.rank(), b.rank()
	return slices.Compare(ka[:], kb[:])
}

// rank is the key Compare orders by, smallest first.
func (s *Spec) rank() [7]int {
	listeners := math.MaxInt
	if len(s.Listeners) > 0 {
		listeners = len(s.Listeners)
	}
	class, shortest := 2, 0
	if len(s.Hosts) > 0 {
		class, shortest = 0, math.MaxInt
		for _, h := range s.Hosts {
			if strings.HasPrefix(h, "*") {
				class = 1
				shortest = min(shortest, len(h))
			}
		}
		if class == 0 {
			shortest = 0
		}
	}
	rules := 1
	if len(s.Rules) > 0 {
		rules = 0
	}
	return [7]int{listeners, class, -shortest, len(s.Hosts), -len(s.Headers), rules, -len(strings.TrimRight(s.StripPrefix, "/"))}
}

// Implies reports whether every request that meets a's conditions meets
// b's, as far as can be told without running expressions: a rule or a
// header expression implies only the same text. It is safe for concurrent
// use.
func Implies(a, b *Spec) bool {
	if len(b.Listeners) > 0 && (len(a.Listeners) == 0 || !subset(a.Listeners, b.Listeners)) {
		return false
	}
	if len(b.Hosts) > 0 {
		if len(a.Hosts) == 0 {
			return false
		}
		for _, h := range a.Hosts {
			if !slices.ContainsFunc(b.Hosts, func(g string) bool { return covers(g, h) }) {
				return false
			}
		}
	}
	for _, h := range b.Headers {
		if !slices.ContainsFunc(a.Headers, func(g Header) bool { return sameHeader(g, h) }) {
			return false
		}
	}
	// Rules match the path after the prefix: the same rules under
	// another prefix match other paths.
	bp := strings.TrimRight(b.StripPrefix, "/")
	if (bp != "" || len(b.Rules) > 0) && bp != strings.TrimRight(a.StripPrefix, "/") {
		return false
	}
	return len(b.Rules) == 0 || slices.EqualFunc(a.Rules, b.Rules, sameRule)
}

// Overlap reports whether a request may meet the conditions of a and of b
// at once: it is false only when some condition tells them apart for sure
// (different listeners, hosts no name matches both, or a header both
// require with different exact values). It is safe for concurrent use.
func Overlap(a, b *Spec) bool {
	if len(a.Listeners) > 0 && len(b.Listeners) > 0 && !slices.ContainsFunc(a.Listeners, func(l string) bool { return slices.Contains(b.Listeners, l) }) {
		return false
	}
	if len(a.Hosts) > 0 && len(b.Hosts) > 0 && !slices.ContainsFunc(a.Hosts, func(h string) bool {
		return slices.ContainsFunc(b.Hosts, func(g string) bool { return covers(h, g) || covers(g, h) })
	}) {
		return false
	}
	for _, h := range a.Headers {
		for _, g := range b.Headers {
			if !h.Regex && !g.Regex && strings.EqualFold(h.Name, g.Name) && h.Value != g.Value {
				return false
			}
		}
	}
	return true
}

// Ambiguous reports whether which of two routes of one path pattern serves
// a request that both would take is left to their order in the config: a
// request can meet both's conditions, and the one Compare puts first does
// not narrow the other (its conditions do not imply the other's). Routes
// that both have rules are tried in the config's order by design (Flex
// does so) and are not ambiguous. Methods are not considered. It is safe
// for concurrent use.
func Ambiguous(a, b *Spec) bool {
	if !Overlap(a, b) || len(a.Rules) > 0 && len(b.Rules) > 0 {
		return false
	}
	switch c := Compare(a, b); {
	case c < 0:
		return !Implies(a, b)
	case c > 0:
		return !Implies(b, a)
	}
	return true
}

// covers reports whether host pattern g matches every name that host
// pattern h matches.
func covers(g, h string) bool {
	g, h = strings.ToLower(g), strings.ToLower(h)
	if g == h {
		return true
	}
	suffix, ok := strings.CutPrefix(g, "*")
	if !ok {
		return false
	}
	// "*.example.com" covers "a.example.com" and "*.a.example.com".
	h = strings.TrimPrefix(h, "*")
	return len(h) > len(suffix) && strings.HasSuffix(h, suffix)
}

func subset(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

func sameHeader(a, b Header) bool {
	return strings.EqualFold(a.Name, b.Name) && a.Value == b.Value && a.Regex == b.Regex
}

func sameRule(a, b Rule) bool {
	return a.Path == b.Path && a.Host == b.Host && a.Methods == b.Methods && slices.EqualFunc(a.Headers, b.Headers, sameHeader)
}
