// Package ratelimit is the rate-limiting policy: token buckets per client
// identifier, refilled continuously, with the standard X-RateLimit-* and
// Retry-After headers.
package ratelimit

import (
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/expr"
)

func init() {
	chain.Register(chain.Registration{Name: "rate-limiting", New: func() chain.Policy { return new(Limiter) }})
}

// Defaults where the config is silent.
const (
	DefaultIdentifier = "$request.remoteAddress"
	DefaultMaxKeys    = 1_000_000
	// minMaxKeys keeps every shard able to hold a few clients.
	minMaxKeys = 1024
	sweepEvery = 10 * time.Second
)

// Limiter is the rate-limiting policy. Once provisioned it is safe for
// concurrent use.
type Limiter struct {
	// Limit is the number of requests a client may make per Period; it is
	// also the burst a client that was idle may send at once.
	Limit int64 `yaml:"limit"`
	// Period is the window of Limit in seconds; fractions are allowed
	// (0.5 is half a second).
	Period float64 `yaml:"period"`
	// Limits are several limits that must all hold ("10 per second and
	// 1000 per hour"), instead of Limit and Period.
	Limits []Window `yaml:"limits"`
	// Identifier is an expression naming the client a budget belongs to;
	// default $request.remoteAddress.
	Identifier chain.Expression `yaml:"identifier"`
	// ExposeHeaders adds X-RateLimit-Limit, -Remaining and -Reset to every
	// response of the route; default true.
	ExposeHeaders *bool `yaml:"exposeHeaders"`
	// MaxKeys caps the clients tracked at once (memory); default 1,000,000.
	MaxKeys int `yaml:"maxKeys"`

	rules  []Rule
	key    *expr.Template
	byAddr bool
	expose bool
	store  Store
	clock  func() int64
	route  string
	reject *chain.Rejection
	full   *chain.Rejection
	// idents refuses a request that sends a header or query parameter
	// of the identifier twice: the identifier reads the first copy, and
	// an upstream that authenticates by another would let a client pick
	// a fresh budget for every request.
	idents *chain.Credentials
}

// Window is one limit: Limit requests per Period seconds.
type Window struct {
	// Limit is the number of requests per Period.
	Limit int64 `yaml:"limit"`
	// Period is the window in seconds; fractions are allowed.
	Period float64 `yaml:"period"`
}

// Validate checks the parameters and compiles the identifier.
func (l *Limiter) Validate(env *chain.Env) error {
	params := env.Spec.Params
	hasSingle := chain.Field(params, "limit") != nil || chain.Field(params, "period") != nil
	limitsNode := chain.Field(params, "limits")
	switch {
	case hasSingle && limitsNode != nil:
		return chain.Errorf(limitsNode, "give either limit and period, or limits, not both")
	case !hasSingle && len(l.Limits) == 0:
		node := limitsNode
		if node == nil {
			node = params
		}
		return chain.Errorf(node, "a limit is required: write limit (requests) and period (seconds), e.g. limit: 100, period: 60")
	}
	l.rules = l.rules[:0]
	if hasSingle {
		r, err := rule(Window{Limit: l.Limit, Period: l.Period}, params)
		if err != nil {
			return err
		}
		l.rules = append(l.rules, r)
	}
	for i, w := range l.Limits {
		r, err := rule(w, limitsNode.Content[i])
		if err != nil {
			return err
		}
		l.rules = append(l.rules, r)
	}
	if len(l.rules) > maxRules {
		return chain.Errorf(limitsNode, "%d limits given; at most %d are supported", len(l.rules), maxRules)
	}

	id := string(l.Identifier)
	idNode := chain.Field(params, "identifier")
	if idNode == nil {
		id, idNode = DefaultIdentifier, params
	}
	tmpl, err := expr.Compile(id, env)
	if err != nil {
		return chain.Errorf(idNode, "identifier: %v", err)
	}
	if tmpl.IsConstant() {
		return chain.Errorf(idNode, "identifier %q has no expression, so every client would share one budget; use e.g. $request.remoteAddress or $request.header.X-Api-Key", id)
	}
	headers, _ := tmpl.Reads()
	for _, h := range headers {
		if _, err := chain.HeaderSpellings(h); err != nil {
			return chain.Errorf(idNode, "identifier: %v", err)
		}
	}
	l.key, l.byAddr = tmpl, tmpl.IsRemoteAddress()

	if l.MaxKeys == 0 {
		l.MaxKeys = DefaultMaxKeys
	} else if l.MaxKeys < minMaxKeys {
		return chain.Errorf(chain.Field(params, "maxKeys"), "maxKeys is %d; it must be at least %d (each client costs about 100 bytes, so 1,000,000 is about 100 MB)", l.MaxKeys, minMaxKeys)
	}
	l.expose = l.ExposeHeaders == nil || *l.ExposeHeaders
	return nil
}

// rule checks one window; node is where its limit and period were written.
func rule(w Window, node *yaml.Node) (Rule, error) {
	at := func(key string) *yaml.Node {
		if n := chain.Field(node, key); n != nil {
			return n
		}
		return node
	}
	switch {
	case w.Limit <= 0:
		return Rule{}, chain.Errorf(at("limit"), "limit must be a whole number of requests above 0, e.g. limit: 100")
	case !(w.Period >= 0.001):
		return Rule{}, chain.Errorf(at("period"), "period must be a number of seconds of at least 0.001, e.g. period: 60")
	case w.Period > 366*24*3600:
		return Rule{}, chain.Errorf(at("period"), "period %g s is longer than a year; use at most 31622400", w.Period)
	case float64(w.Limit) > w.Period*1_000_000:
		return Rule{}, chain.Errorf(at("limit"), "limit %d per %g s is more than a million a second; raise the period or lower the limit", w.Limit, w.Period)
	}
	return NewRule(w.Limit, time.Duration(w.Period*float64(time.Second))), nil
}

// Provision builds the bucket store and the rejections.
func (l *Limiter) Provision(env *chain.Env) error {
	if l.clock == nil {
		l.clock = monoClock
	}
	if l.store == nil {
		l.store = NewMemStore(l.MaxKeys, sweepEvery, l.clock)
	}
	l.route = env.Route.ID
	r := &l.rules[0]
	msg := fmt.Sprintf("too many requests: the limit of %d per %g s for this client is used up; retry after the seconds in Retry-After", r.Limit, time.Duration(r.Period).Seconds())
	if len(l.rules) > 1 {
		msg = "too many requests: a rate limit for this client is used up; retry after the seconds in Retry-After"
	}
	l.reject = env.Reject(429, "rate_limited", msg)
	var err error
	if l.idents, err = env.Credentials(l.key.Reads()); err != nil {
		return err
	}
	l.full = env.Reject(429, "rate_limiter_full", "too many distinct clients are being rate limited at once; retry after the seconds in Retry-After (operators: raise maxKeys)")
	if ms, ok := l.store.(*MemStore); ok {
		track(env, l.route, ms)
	}
	return nil
}

// Close stops the store's background work.
func (l *Limiter) Close() error {
	if l.store == nil {
		return nil
	}
	if ms, ok := l.store.(*MemStore); ok {
		untrack(l.route, ms)
	}
	return l.store.Close()
}

// processStart anchors monoClock.
var processStart = time.Now()

// monoClock is nanoseconds on the monotonic clock: a step of the wall clock
// (NTP, a resumed VM) must neither lock every client out nor refill every
// budget at once.
func monoClock() int64 { return int64(time.Since(processStart)) }
