// Package ratelimit is the rate-limiting policy: token buckets per client
// identifier, refilled continuously, with the standard X-RateLimit-* and
// Retry-After headers; and rate-limiting-flex, Flex Gateway's, which counts
// fixed windows.
package ratelimit

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/expr"
	"github.com/flexgate/flexgate/config"
	"github.com/flexgate/flexgate/internal/redisopt"
)

func init() {
	chain.Register(chain.Registration{Name: "rate-limiting", New: func() chain.Policy { return new(Limiter) }, ByPlace: true,
		// A clusterizable limit holds a connection made from
		// spec.sharedStorage: a change there provisions it again (its
		// budget, in Redis, stays).
		KeyFrom: func(cfg *config.Config, _ *config.Route) string {
			if cfg.SharedStorage == nil || cfg.SharedStorage.Redis == nil {
				return ""
			}
			return redisopt.SettingsKey(cfg.SharedStorage.Redis)
		}})
}

// Defaults where the config is silent.
const (
	DefaultIdentifier = "$request.remoteAddress"
	DefaultMaxKeys    = 1_000_000
	// minMaxKeys keeps every shard able to hold a few clients.
	minMaxKeys = 1024
	sweepEvery = 10 * time.Second
	// DefaultStoreTimeout bounds a call to the shared storage.
	DefaultStoreTimeout = 10 * time.Millisecond
	// MaxReplicasEnv names the most replicas of the gateway that can run
	// at once, for onStoreError: local.
	MaxReplicasEnv = "FLEXGATE_MAX_REPLICAS"
)

// Limiter is the rate-limiting policy. Once provisioned it is safe for
// concurrent use.
type Limiter struct {
	// Limit is the number of requests a client may make per Period; it is
	// also the burst a client that was idle may send at once.
	Limit int64 `yaml:"limit" min:"1" max:"31622400000000"`
	// Period is the window of Limit in seconds; fractions are allowed
	// (0.5 is half a second).
	Period float64 `yaml:"period" min:"0.001" max:"31622400"`
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
	MaxKeys int `yaml:"maxKeys" min:"0" max:"2147483647" note:"0: the default, 1000000; else at least 1024"`
	// Clusterizable keeps the buckets in the gateway's shared storage
	// (spec.sharedStorage), so that the limit holds across all replicas
	// together; default false: each replica counts on its own.
	Clusterizable bool `yaml:"clusterizable"`
	// OnStoreError is what a clusterizable limit does when the shared
	// storage does not answer within StoreTimeout: deny (the default,
	// 503), allow, or local (limit ÷ FLEXGATE_MAX_REPLICAS per replica).
	OnStoreError Fallback `yaml:"onStoreError"`
	// StoreTimeout bounds each call to the shared storage, as a duration
	// ("10ms", the default).
	StoreTimeout string `yaml:"storeTimeout"`

	rules []Rule
	key   *expr.Template
	// shared is set when the buckets live in the shared storage; id
	// names the policy there, timeout bounds a call.
	shared       bool
	id           string
	timeout      time.Duration
	fallbackNode *yaml.Node
	unavailable  *chain.Rejection
	byAddr       bool
	expose       bool
	store        Store
	clock        func() int64
	route        string
	reject       *chain.Rejection
	full         *chain.Rejection
	// idents refuses a request that sends a header or query parameter
	// of the identifier twice, or in the other place: the identifier
	// (compiled by expr.CompileCredential) reads the one copy, and an
	// upstream that authenticates by another would let a client pick a
	// fresh budget for every request.
	idents *chain.Credentials
	// alts refuses a request that carries more than one of what the
	// identifier reads in turn (`default`): the limit would count one, an
	// upstream read another.
	alts *chain.Alternatives
	// message, when set, is the 429's message (rate-limiting-flex's is
	// Flex Gateway's "Too Many Requests"); resetMillis gives
	// X-RateLimit-Reset in milliseconds, as Flex Gateway does.
	message     string
	resetMillis bool
}

// Window is one limit: Limit requests per Period seconds.
type Window struct {
	// Limit is the number of requests per Period.
	Limit int64 `yaml:"limit" min:"1" max:"31622400000000"`
	// Period is the window in seconds; fractions are allowed.
	Period float64 `yaml:"period" min:"0.001" max:"31622400"`
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
	if err := l.compileKey(env, id, idNode, "identifier", false); err != nil {
		return err
	}

	if l.MaxKeys == 0 {
		l.MaxKeys = DefaultMaxKeys
	} else if l.MaxKeys < minMaxKeys {
		return chain.Errorf(chain.Field(params, "maxKeys"), "maxKeys is %d; it must be at least %d (each client costs about 100 bytes, so 1,000,000 is about 100 MB)", l.MaxKeys, minMaxKeys)
	}
	l.expose = l.ExposeHeaders == nil || *l.ExposeHeaders
	if err := l.validateShared(env, id, chain.Field(params, "clusterizable"), true); err != nil {
		return err
	}
	return nil
}

// compileKey compiles the expression that names a request's budget, written
// at node as the parameter param; one without an expression (every client
// in one budget) is refused unless constant allows it.
func (l *Limiter) compileKey(env *chain.Env, id string, node *yaml.Node, param string, constant bool) error {
	tmpl, err := expr.CompileCredential(id, env)
	if err != nil {
		return chain.Errorf(node, "%s: %v", param, err)
	}
	if tmpl.IsConstant() && !constant {
		return chain.Errorf(node, "%s %q has no expression, so every client would share one budget; use e.g. $request.remoteAddress or $request.header.X-Api-Key", param, id)
	}
	if name := tmpl.TextExpression(); name != "" && tmpl.IsConstant() {
		// A Flex policy's value is text unless it is one #[...]: this one
		// would put every client in one budget, meant per client.
		return chain.Errorf(node, "%s %q is text in %s, as in Flex Gateway, not an expression: every client would share one budget; "+
			"write the whole value as one #[...] expression, e.g. \"#[attributes.remoteAddress]\" or \"#[attributes.headers['x-api-key']]\"", param, id, env.Name)
	}
	l.key, l.byAddr = tmpl, tmpl.IsRemoteAddress()
	return nil
}

// validateShared checks clusterizable (written at clusterNode; nil when it
// is not written), onStoreError and storeTimeout, and warns of a limit
// that is counted per replica where that may surprise; warnUnwritten warns
// of a limit that leaves clusterizable out on a gateway with shared
// storage.
func (l *Limiter) validateShared(env *chain.Env, identifier string, clusterNode *yaml.Node, warnUnwritten bool) error {
	params := env.Spec.Params
	l.fallbackNode = chain.Field(params, "onStoreError")
	timeoutNode := chain.Field(params, "storeTimeout")
	if !l.Clusterizable {
		for _, n := range []*yaml.Node{l.fallbackNode, timeoutNode} {
			if n != nil {
				return chain.Errorf(n, "this applies only to a clusterizable limit; add clusterizable: true or remove it")
			}
		}
	}
	switch l.OnStoreError {
	case "":
		l.OnStoreError = FallbackDeny
	case FallbackDeny, FallbackAllow, FallbackLocal:
	default:
		return chain.Errorf(l.fallbackNode, "onStoreError %q is not supported; use deny (answer 503, the default), allow (let requests through uncounted) "+
			"or local (count in each replica against limit ÷ %s)", l.OnStoreError, MaxReplicasEnv)
	}
	l.timeout = DefaultStoreTimeout
	if timeoutNode != nil {
		d, err := chain.ParseDuration(timeoutNode, "storeTimeout", l.StoreTimeout, time.Millisecond, time.Second,
			"a request waits this long at most for the shared storage")
		if err != nil {
			return err
		}
		l.timeout = d
	}
	shared := env.Config.SharedStorage != nil && env.Config.SharedStorage.Redis != nil
	switch {
	case l.Clusterizable && !shared && (clusterNode != nil || warnUnwritten):
		env.Warn(clusterNode, "clusterizable: true, but spec.sharedStorage is not configured, so this limit is per replica: "+
			"each gateway process counts on its own, and N replicas let through up to N × the limit; configure spec.sharedStorage.redis to share it")
	case !l.Clusterizable && shared && clusterNode == nil && warnUnwritten:
		env.Warn(nil, "this limit is per replica (each gateway process counts on its own, so N replicas let through up to N × the limit) "+
			"although spec.sharedStorage is configured; add clusterizable: true to share it, or clusterizable: false to keep it per replica")
	}
	l.shared = l.Clusterizable && shared
	if l.shared {
		for _, r := range l.rules {
			// A window counts requests, not a token's interval.
			if got := redisLimit(r); !r.Fixed && got*1000 > r.Limit*1005 {
				env.Warn(clusterNode, "in the shared storage a token's interval counts in whole microseconds: the limit of %d per %g s "+
					"is enforced as %d (a token every %d µs); choose a limit that divides the period into whole microseconds, or a longer period",
					r.Limit, time.Duration(r.Period).Seconds(), got, redisInterval(r))
			}
		}
	}
	// What names the policy's budget in Redis, so that a restarted or
	// other replica finds it and a changed policy starts afresh. The
	// scope, not the route: a limit bound to a Flex API is the API's one
	// budget, whichever of its routes comes first.
	ordinal := 0
	for _, n := range env.Before {
		if n == env.Name {
			ordinal++
		}
	}
	var b strings.Builder
	if env.Name != "rate-limiting" {
		// rate-limiting-flex is named by its name too: one of the same
		// limits and identifier as a rate-limiting on the route was named
		// alike, and each request took a token from the one budget
		// twice. rate-limiting's names, and so its budgets, stay.
		b.WriteString(env.Name + "\x00")
	}
	fmt.Fprintf(&b, "%s\x00%d\x00%s", env.Scope, ordinal, identifier)
	for _, r := range l.rules {
		fmt.Fprintf(&b, "\x00%d/%d", r.Limit, r.Period)
	}
	l.id = b.String()
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
	// A limit or period left out is 0; one written is within its tags'
	// bounds.
	switch {
	case w.Limit <= 0:
		return Rule{}, chain.Errorf(at("limit"), "limit must be a whole number of requests above 0, e.g. limit: 100")
	case !(w.Period >= 0.001):
		return Rule{}, chain.Errorf(at("period"), "period must be a number of seconds of at least 0.001, e.g. period: 60")
	}
	// Rounded, not truncated: 2.11 s in float64 is a hair under 2.11e9 ns,
	// and 1.001 × 1e6 a hair under 1,001,000.
	period := time.Duration(math.Round(w.Period * float64(time.Second)))
	if w.Limit > int64(period/time.Microsecond) {
		return Rule{}, chain.Errorf(at("limit"), "limit %d per %g s is more than a million a second; raise the period or lower the limit", w.Limit, w.Period)
	}
	return NewRule(w.Limit, period), nil
}

// Provision builds the bucket store and the rejections.
func (l *Limiter) Provision(env *chain.Env) error {
	if l.clock == nil {
		l.clock = monoClock
	}
	l.route = env.Owner()
	r := &l.rules[0]
	msg := fmt.Sprintf("too many requests: the limit of %d per %g s for this client is used up; retry after the seconds in Retry-After", r.Limit, time.Duration(r.Period).Seconds())
	if len(l.rules) > 1 {
		msg = "too many requests: a rate limit for this client is used up; retry after the seconds in Retry-After"
	}
	if l.message != "" {
		msg = l.message
	}
	l.reject = env.Reject(429, "rate_limited", msg)
	var err error
	if l.idents, err = env.Credentials(l.key.Reads()); err != nil {
		return err
	}
	if l.alts, err = env.Alternatives(l.key.Alternatives()); err != nil {
		return err
	}
	l.unavailable = env.Reject(503, "rate_limit_store_unavailable", "the rate limit cannot be checked: its shared storage does not answer; retry shortly")
	l.full = env.Reject(429, "rate_limiter_full", "too many distinct clients are being rate limited at once; retry after the seconds in Retry-After (operators: raise maxKeys)")
	// The store last: nothing after it can fail and leave it running.
	if l.store == nil && l.shared {
		if err := l.provisionShared(env); err != nil {
			return err
		}
	}
	if l.store == nil {
		l.store = NewMemStore(l.MaxKeys, sweepEvery, l.clock)
	}
	if ms, ok := l.store.(*MemStore); ok {
		track(env, l.route, ms)
	}
	return nil
}

// provisionShared connects to the shared storage and, for onStoreError:
// local, builds the local buckets of limit ÷ FLEXGATE_MAX_REPLICAS.
func (l *Limiter) provisionShared(env *chain.Env) error {
	o := redisStoreOptions{id: l.id, rules: l.rules, timeout: l.timeout, clock: l.clock, fallback: l.OnStoreError,
		set: env.Metrics, route: l.route}
	if l.OnStoreError == FallbackLocal {
		n, err := maxReplicas()
		if err != nil {
			return chain.Errorf(l.fallbackNode, "onStoreError: local %v", err)
		}
		for _, r := range l.rules {
			per := r.Limit / n
			if per < 1 {
				return chain.Errorf(l.fallbackNode, "onStoreError: local gives each of %s=%d replicas less than one request of the limit of %d per %g s; "+
					"use onStoreError: deny", MaxReplicasEnv, n, r.Limit, time.Duration(r.Period).Seconds())
			}
			o.localRules = append(o.localRules, r.withLimit(per))
		}
		o.local = NewMemStore(l.MaxKeys, sweepEvery, l.clock)
	}
	if v, ok := os.LookupEnv(MaxReplicasEnv); ok && v != "" {
		// It bounds how much of a high limit a replica may take ahead of
		// its requests (see leaseSize).
		n, err := maxReplicas()
		if err != nil {
			return chain.Errorf(env.Spec.Params, "clusterizable: %v", err)
		}
		o.replicas = n
	}
	conn, err := acquireConn(env.Metrics, env.Config.SharedStorage, l.timeout)
	if err != nil {
		if o.local != nil {
			_ = o.local.Close()
		}
		return err
	}
	o.conn = conn
	s := newRedisStore(o)
	if s.lease > 0 && env.Logger != nil {
		window := time.Duration(s.window).String()
		if s.fixed {
			window = "until the first window ends"
		}
		env.Logger.Info("clusterizable limit spent in leases: each call to the shared storage takes tokens ahead for the client's next requests on this replica",
			"leaseTokens", s.lease, "leaseWindow", window, MaxReplicasEnv, o.replicas)
	}
	l.store = s
	return nil
}

// maxReplicas reads FLEXGATE_MAX_REPLICAS.
func maxReplicas() (int64, error) {
	v, ok := os.LookupEnv(MaxReplicasEnv)
	if !ok || v == "" {
		return 0, fmt.Errorf("needs %s, the most replicas of the gateway that can run at once (the chart sets it from the HPA's maxReplicas plus the rollout surge); it is not set", MaxReplicasEnv)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("needs %s to be a whole number of replicas of at least 1, not %q", MaxReplicasEnv, v)
	}
	return n, nil
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
