package config

import (
	"github.com/flexgate/flexgate/internal/match"
	"github.com/flexgate/flexgate/proxy/router"
)

// RouterEntry is the route as the router sees it, at position i of the
// config's routes.
func (r *Route) RouterEntry(i int) router.Entry {
	return router.Entry{Paths: r.Paths, Methods: r.Methods, Index: i, Cond: r.Conditions()}
}

// Conditions are what narrows the route beyond its paths and methods, as
// the matcher takes them.
func (r *Route) Conditions() match.Spec {
	return match.Spec{Listeners: r.Listeners, Hosts: r.Hosts, Headers: headerSpecs(r.Headers),
		StripPrefix: r.StripPrefix, Rules: RuleSpecs(r.Rules)}
}

// RuleSpecs are rules as the matcher takes them.
func RuleSpecs(rules []MatchRule) []match.Rule {
	if len(rules) == 0 {
		return nil
	}
	out := make([]match.Rule, len(rules))
	for i, r := range rules {
		out[i] = match.Rule{Path: r.Path, Host: r.Host, Methods: r.Methods, Headers: headerSpecs(r.Headers)}
	}
	return out
}

func headerSpecs(hs []HeaderMatch) []match.Header {
	if len(hs) == 0 {
		return nil
	}
	out := make([]match.Header, len(hs))
	for i, h := range hs {
		out[i] = match.Header{Name: h.Name, Value: h.Value, Regex: h.Regex}
	}
	return out
}

// CheckMatchRule reports why r cannot be matched, or nil: an expression
// that is not valid RE2 syntax, or a header name that is not a token. The
// error names the field; the caller places it at r.Pos or at the field.
func CheckMatchRule(r MatchRule) error {
	return match.CheckRule(RuleSpecs([]MatchRule{r})[0])
}
