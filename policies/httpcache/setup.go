// Package httpcache is the http-caching policy: it answers requests from
// answers it stored earlier, without the upstream. Entries live in memory,
// bounded by count and bytes; Cache-Control, Expires, Age and Vary are
// honoured when asked; concurrent misses of a key send one request
// upstream; answers to requests with Authorization, and answers that set
// cookies, are not stored unless told.
package httpcache

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/expr"
	"github.com/flexgate/flexgate/config"
	"github.com/flexgate/flexgate/internal/ascii"
	"github.com/flexgate/flexgate/internal/redisopt"
)

func init() {
	chain.Register(chain.Registration{Name: "http-caching", New: func() chain.Policy { return new(Cache) }, KeyFrom: storageKey, ByPlace: true})
	chain.Register(chain.Registration{Name: "http-caching-flex", New: func() chain.Policy { return new(FlexCache) }, KeyFrom: storageKey, ByPlace: true})
}

// storageKey names what else a cache is built from: the shared storage a
// distributed cache connects to, and what of the gateway and the route
// its Redis namespace and its wait for a leader's answer are made of (see
// Validate and Provision). A change there provisions the cache again (its
// entries, in Redis, stay).
func storageKey(cfg *config.Config, route *config.Route) string {
	var b strings.Builder
	if cfg.SharedStorage != nil && cfg.SharedStorage.Redis != nil {
		b.WriteString(redisopt.SettingsKey(cfg.SharedStorage.Redis))
	}
	fmt.Fprintf(&b, "\x00%s\x00%s\x00%d", cfg.Name, route.Upstream.HostHeader, coalesceWait(route))
	for _, t := range route.Upstream.Targets {
		fmt.Fprintf(&b, "\x00%s://%s%s", t.Scheme, t.Host, t.BasePath)
	}
	return b.String()
}

// Defaults and bounds.
const (
	// DefaultKey keeps the answers of different queries apart.
	DefaultKey = "#[attributes.requestUri]"
	// FlexDefaultKey is Flex Gateway's: the path alone.
	FlexDefaultKey            = "#[attributes.requestPath]"
	DefaultRequestExpression  = "#[attributes.method == 'GET' or attributes.method == 'HEAD']"
	DefaultResponseExpression = "#[[200, 203, 204, 206, 300, 301, 404, 405, 410, 414, 501] contains attributes.statusCode]"
	DefaultMaxEntries         = 10_000
	DefaultMaxBytes           = 64 << 20
	DefaultTTL                = 600 * time.Second
	// MaxEntryBytes is the largest body stored, as in Flex Gateway ("up
	// to 1 MB"); a larger one streams through and is not stored.
	MaxEntryBytes = 1 << 20
	maxTTL        = 366 * 24 * time.Hour
	maxMaxEntries = 10_000_000
	maxMaxBytes   = 64 << 30
	// maxFlights bounds the keys being fetched at once with coalescing.
	maxFlights = 100_000
	// passTTL is how long a key whose answer could not be stored sends
	// its misses upstream without waiting for one another.
	passTTL = 30 * time.Second
)

// Invalidation header values, as Flex Gateway defines them.
const (
	invalidateOne = "invalidate"
	invalidateAll = "invalidate-all"
)

// Cache is the http-caching policy. Once provisioned it is safe for
// concurrent use.
type Cache struct {
	// Key is an expression naming a request's entry; default
	// #[attributes.requestUri] (the path and the query).
	Key chain.Expression `yaml:"key"`
	// MaxEntries bounds the entries held; default 10,000.
	MaxEntries int `yaml:"maxEntries" min:"1" max:"10000000"`
	// MaxBytes bounds the bytes held ("64MiB", the default; KiB, MiB,
	// GiB, or a number of bytes).
	MaxBytes string `yaml:"maxBytes"`
	// TTL is how long an entry is served, as a duration; default 10m.
	TTL string `yaml:"ttl"`
	// UseHTTPCacheHeaders honours Cache-Control, Expires and Age of
	// requests and responses; default true.
	UseHTTPCacheHeaders *bool `yaml:"useHttpCacheHeaders"`
	// InvalidationHeader names a request header whose value `invalidate`
	// drops the request's entry and `invalidate-all` every entry.
	InvalidationHeader string `yaml:"invalidationHeader"`
	// RequestExpression decides which requests use the cache.
	RequestExpression chain.Expression `yaml:"requestExpression"`
	// ResponseExpression decides which answers are stored.
	ResponseExpression chain.Expression `yaml:"responseExpression"`
	// CacheAuthorized uses the cache for requests with Authorization
	// (their answers may be one user's); default false.
	CacheAuthorized bool `yaml:"cacheAuthorized"`
	// CacheSetCookie stores answers with Set-Cookie (and hands that
	// cookie to every client the entry answers); default false.
	CacheSetCookie bool `yaml:"cacheSetCookie"`
	// Distributed keeps entries in the gateway's shared storage
	// (spec.sharedStorage.redis), where every replica finds them.
	Distributed bool `yaml:"distributed"`

	p     params
	st    store
	fl    flights
	clock Clock
	// teeing counts the bytes of streamed bodies being copied for storing.
	teeing   atomic.Int64
	series   *series
	onlyMiss *chain.Rejection
	route    string
	// wait is how long misses wait for the leader of their key.
	wait time.Duration
}

// params are the parameters in the policy's units, whichever form it
// was written in.
type params struct {
	key, requestExpr, responseExpr string
	// keyParam names the key's parameter, for errors.
	keyParam              string
	keyNode, requestNode  *yaml.Node
	responseNode          *yaml.Node
	maxEntries            int
	maxBytes              int64
	ttl                   time.Duration
	headers               bool
	invalidation          string
	authorized, setCookie bool
	distributed           bool
	distributedNode       *yaml.Node
	// namespace starts the keys of a distributed cache in Redis.
	namespace string

	keyT    *expr.Template
	request *expr.Condition
	respond *expr.Condition
	// headers and query are what choose a request's entry, or whether
	// the cache takes it: the request headers and query parameters the
	// key and the conditions read by name, and the headers the route's
	// and the policy's rules match. A request that carries one of them
	// ambiguously is neither answered from the cache nor stored (see
	// unambiguous).
	keyHeaders []chain.HeaderName
	keyQuery   []chain.QueryName
	// keyAlts are what those read in turn (`default`): a request with
	// two of them is ambiguous.
	keyAlts *chain.Alternatives
}

// Validate checks the parameters and compiles the expressions.
func (c *Cache) Validate(env *chain.Env) error {
	params := env.Spec.Params
	p := &c.p
	*p = defaultParams(DefaultKey)
	if n := chain.Field(params, "key"); n != nil {
		p.key, p.keyNode = string(c.Key), n
	}
	if n := chain.Field(params, "requestExpression"); n != nil {
		p.requestExpr, p.requestNode = string(c.RequestExpression), n
	}
	if n := chain.Field(params, "responseExpression"); n != nil {
		p.responseExpr, p.responseNode = string(c.ResponseExpression), n
	}
	if chain.Field(params, "maxEntries") != nil {
		// Within its tags' bounds, 1 to maxMaxEntries.
		p.maxEntries = c.MaxEntries
	}
	if n := chain.Field(params, "maxBytes"); n != nil {
		b, err := parseSize(c.MaxBytes)
		if err != nil || b < MaxEntryBytes || b > maxMaxBytes {
			return chain.Errorf(n, "maxBytes must be a size from 1MiB to 64GiB, such as 256MiB, not %q", c.MaxBytes)
		}
		p.maxBytes = b
	}
	if n := chain.Field(params, "ttl"); n != nil {
		d, err := chain.ParseDuration(n, "ttl", c.TTL, time.Second, maxTTL, "366 days")
		if err != nil {
			return err
		}
		p.ttl = d
	}
	p.headers = c.UseHTTPCacheHeaders == nil || *c.UseHTTPCacheHeaders
	p.invalidation = c.InvalidationHeader
	p.authorized, p.setCookie = c.CacheAuthorized, c.CacheSetCookie
	p.distributed, p.distributedNode = c.Distributed, chain.Field(params, "distributed")
	return p.compile(env, chain.Field(params, "invalidationHeader"))
}

func defaultParams(key string) params {
	return params{key: key, keyParam: "key", requestExpr: DefaultRequestExpression, responseExpr: DefaultResponseExpression,
		maxEntries: DefaultMaxEntries, maxBytes: DefaultMaxBytes, ttl: DefaultTTL, headers: true}
}

// compile compiles the expressions and checks the invalidation header,
// written at invNode.
func (p *params) compile(env *chain.Env, invNode *yaml.Node) error {
	at := func(n *yaml.Node) *yaml.Node {
		if n != nil {
			return n
		}
		return env.Spec.Params
	}
	var err error
	if p.keyT, err = expr.Compile(p.key, env); err != nil {
		return chain.Errorf(at(p.keyNode), "%s: %v", p.keyParam, err)
	}
	if p.keyT.IsConstant() {
		return chain.Errorf(at(p.keyNode), "the key %q has no expression, so every request would share one entry; use e.g. #[attributes.requestUri]", p.key)
	}
	if p.request, err = expr.CompileBool(p.requestExpr, env, expr.Request); err != nil {
		return chain.Errorf(at(p.requestNode), "requestExpression: %v", err)
	}
	if p.respond, err = expr.CompileBool(p.responseExpr, env, expr.Response); err != nil {
		return chain.Errorf(at(p.responseNode), "responseExpression: %v", err)
	}
	for _, c := range []struct {
		name string
		cond *expr.Condition
		node *yaml.Node
	}{{"requestExpression", p.request, p.requestNode}, {"responseExpression", p.respond, p.responseNode}} {
		if !c.cond.Certain() {
			// Text, a number or a claim is false whenever it is not the
			// boolean true: such a condition would cache nothing, or
			// almost nothing, with nothing said.
			src := c.cond.String()
			inner := strings.TrimSuffix(strings.TrimPrefix(src, "#["), "]")
			return chain.Errorf(at(c.node), "%s %q is true or false only when what it reads is, and anything else counts as false, "+
				"so it could cache nothing with nothing said: compare it, e.g. \"#[%s == true]\" or \"#[%s == 'gold']\"",
				c.name, src, inner, inner)
		}
	}
	if err := p.collectReads(env, at); err != nil {
		return err
	}
	if p.invalidation != "" && !ascii.IsToken(p.invalidation) {
		return chain.Errorf(invNode, "invalidationHeader %q is not a header name", p.invalidation)
	}
	var after []string
	for _, s := range env.Route.Policies[min(env.Index+1, len(env.Route.Policies)):] {
		if checks[s.Name] {
			after = append(after, s.Name)
		}
	}
	if len(after) > 0 {
		env.Warn(nil, "%s run after the cache: a request answered from the cache skips them, so a client they would refuse "+
			"gets the stored answer; put the policies that must see every request before the cache", strings.Join(after, ", "))
	}
	if p.distributed && (env.Config.SharedStorage == nil || env.Config.SharedStorage.Redis == nil) {
		env.Warn(p.distributedNode, "distributed: true, but spec.sharedStorage is not configured, so each replica keeps its own cache in memory: "+
			"an entry is stored once per replica and invalidation reaches only the replica that receives it; configure spec.sharedStorage.redis to share it")
		p.distributed = false
	}
	if p.distributed {
		// What names the cache's entries in Redis, so that every replica
		// finds them and a changed policy starts afresh.
		ordinal := 0
		for _, n := range env.Before {
			if n == env.Name {
				ordinal++
			}
		}
		// The gateway's name and the upstream keep apart gateways of
		// other configs that share the Redis and name a route alike.
		// The scope, not the route: a cache bound to a Flex API serves
		// its routes to the upstream, whichever of them comes first
		// (entries are kept apart by route, see appendKey).
		h := sha256.New()
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%d\x00%s\x00%s\x00%s\x00%t%t%t\x00%s", env.Config.Name, env.Scope, env.Name, ordinal,
			p.key, p.requestExpr, p.responseExpr, p.headers, p.authorized, p.setCookie, env.Route.Upstream.HostHeader)
		for _, t := range env.Route.Upstream.Targets {
			fmt.Fprintf(h, "\x00%s://%s%s", t.Scheme, t.Host, t.BasePath)
		}
		p.namespace = fmt.Sprintf("flexgate:cache:%x:", h.Sum(nil)[:16])
	}
	return nil
}

// collectReads collects the headers and query parameters that choose a
// request's entry (see params.keyHeaders). at gives the node of a
// parameter, or the policy's when it is not written.
func (p *params) collectReads(env *chain.Env, at func(*yaml.Node) *yaml.Node) error {
	p.keyHeaders, p.keyQuery = nil, nil
	alts := append(append(p.keyT.Alternatives(), p.request.Alternatives()...), p.respond.Alternatives()...)
	var err error
	if p.keyAlts, err = env.Alternatives(alts); err != nil {
		return chain.Errorf(at(p.keyNode), "%s: %v", p.keyParam, err)
	}
	addHeader := func(name string, node *yaml.Node, what string) error {
		for i := range p.keyHeaders {
			if strings.EqualFold(p.keyHeaders[i].String(), name) {
				return nil
			}
		}
		h, err := chain.NewHeaderName(name)
		if err != nil {
			return chain.Errorf(node, "%s reads the header %s, so the cache looks for it in every spelling an upstream reads, and %v", what, name, err)
		}
		p.keyHeaders = append(p.keyHeaders, h)
		return nil
	}
	for _, x := range []struct {
		what string
		node *yaml.Node
		read func() (headers, query []string)
	}{{p.keyParam, p.keyNode, p.keyT.Reads}, {"requestExpression", p.requestNode, p.request.Reads}, {"responseExpression", p.responseNode, p.respond.Reads}} {
		headers, query := x.read()
		for _, h := range headers {
			if err := addHeader(h, at(x.node), x.what); err != nil {
				return err
			}
		}
		for _, q := range query {
			if !slices.ContainsFunc(p.keyQuery, func(o chain.QueryName) bool { return o.String() == q }) {
				p.keyQuery = append(p.keyQuery, chain.NewQueryName(q))
			}
		}
	}
	// The route is part of the key: the headers that choose it choose the
	// entry. The routes of a Flex API share its cache.
	var rules []config.HeaderMatch
	for _, r := range env.Spec.When {
		rules = append(rules, r.Headers...)
	}
	routes := []*config.Route{env.Route}
	for i := range env.Config.Routes {
		if r := &env.Config.Routes[i]; r.PolicyScope != "" && r.PolicyScope == env.Route.PolicyScope {
			routes = append(routes, r)
		}
	}
	for _, r := range routes {
		rules = append(rules, r.Headers...)
		for _, rule := range r.Rules {
			rules = append(rules, rule.Headers...)
		}
	}
	for _, h := range rules {
		if err := addHeader(h.Name, at(nil), "a rule of the route or of the policy"); err != nil {
			return err
		}
	}
	return nil
}

// checks are the policies that may refuse a request: run after the cache,
// they do not see the requests it answers.
var checks = map[string]bool{
	"client-id-enforcement": true, "client-id-enforcement-flex": true, "token-introspection": true,
	"oauth2-token-introspection-flex": true, "http-basic-authentication-flex": true, "ldap-authentication-flex": true,
	"jwt-validation": true, "jwt-validation-flex": true, "openidconnect-access-token-enforcement-flex": true, "ip-allowlist-flex": true,
	"ip-blocklist-flex": true, "ip-allowlist": true, "ip-blocklist": true, "http-basic-authentication": true, "json-threat-protection": true, "rate-limiting": true, "rate-limiting-flex": true, "spike-control": true,
	"spike-control-flex": true, "request-validation": true, "json-threat-protection-flex": true, "spec-validation-flex": true,
}

// parseSize reads "64MiB", "512KiB", "1GiB" or a number of bytes.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("not a size")
	}
	return n * mult, nil
}

// testClock, when set, is the clock of the caches provisioned (tests).
var testClock Clock

// Provision builds the store.
func (c *Cache) Provision(env *chain.Env) error {
	if c.clock == nil {
		c.clock = testClock
	}
	mem, err := newMemStore(c.p.maxEntries, c.p.maxBytes, c.clock)
	if err != nil {
		return err
	}
	c.st = mem
	if c.p.distributed {
		conn, err := acquireConn(env.Metrics, env.Config.SharedStorage.Redis)
		if err != nil {
			mem.close()
			return err
		}
		c.st = newRedisStore(mem, conn, c.p.namespace, c.p.maxBytes, c.now)
	}
	c.fl = flights{m: map[string]*flight{}, max: maxFlights}
	c.route = env.Owner()
	c.wait = coalesceWait(env.Route)
	c.onlyMiss = env.Reject(504, "not_cached", "the request asks for a cached answer only (Cache-Control: only-if-cached), and none is stored")
	c.series = newSeries(env, c.route, c.st)
	return nil
}

// Close drops the entries and stops the store's goroutines.
func (c *Cache) Close() error {
	if c.st != nil {
		c.series.untrack(c.st)
		c.st.close()
	}
	return nil
}

// coalesceWait is how long misses wait for the leader's answer: the
// route's upstream responseTimeout, the most the leader waits for its
// head.
func coalesceWait(r *config.Route) time.Duration {
	if r != nil && r.Upstream.ResponseTimeout > 0 {
		return r.Upstream.ResponseTimeout
	}
	return config.DefaultResponseTimeout
}

var _ chain.Policy = (*Cache)(nil)
