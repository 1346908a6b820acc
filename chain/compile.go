package chain

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/VictoriaMetrics/metrics"
	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/config"
	"github.com/flexgate/flexgate/internal/match"
)

// Env is what a policy sees of the world while it is validated and
// provisioned. It is not used on the request path.
type Env struct {
	// Config is the whole config being compiled (clients, trusted proxies).
	Config *config.Config
	// Route is the route the policy belongs to. The routes of a
	// PolicyScope share one instance of a policy they have alike: Route is
	// then the first of them compiled, which another config may change.
	Route *config.Route
	// Scope names what the instance serves: the route's ID, or the route's
	// PolicyScope (marked, so that it is not taken for a route of that
	// name), for every route of the scope.
	// A policy that names its state outside the gateway (a rate limit's
	// budget, a cache's namespace, in Redis) names it by Scope, not by
	// Route: a replica started on a config that adds, removes or reorders
	// the scope's routes finds the same state, as does one that carried
	// the instance over a reload.
	Scope string
	// Spec is the policy's own entry.
	Spec *config.PolicySpec
	// Name is the policy's registered name.
	Name string
	// Index is the policy's position in the route's chain.
	Index int
	// Before lists the names of the policies that run before this one.
	Before []string
	// Metrics is the gateway's long-lived set. Policies register with its
	// GetOrCreate* methods (never New*): a reload compiles them again and
	// must find the same counters, so that series do not reset.
	Metrics *metrics.Set
	// Logger for events (never for secrets or tokens).
	Logger *slog.Logger

	// credentials are what the policy declared with Credentials: the
	// chain looks for them in a form body too.
	credentials []*Credentials
}

// Owner names what the instance serves in its metrics' route label and
// its logs: the route's ID, or the PolicyScope its routes share (a Flex
// ApiInstance's, "namespace/name"). A shared instance belongs to every
// route of the scope, and which of them is compiled first changes with
// the config: named by it, the instance's series would move to another
// label when a service is added or reordered.
func (e *Env) Owner() string {
	if e.Route.PolicyScope != "" {
		return e.Route.PolicyScope
	}
	return e.Route.ID
}

// Whose names the owner in messages: `route "id"`, or `API "namespace/name"`
// for a shared scope (see Owner).
func (e *Env) Whose() string {
	if e.Route.PolicyScope != "" {
		return "API " + strconv.Quote(e.Route.PolicyScope)
	}
	return "route " + strconv.Quote(e.Route.ID)
}

// Reject builds a Rejection attributed to this policy. Call it at provision
// time and return the result on every request.
func (e *Env) Reject(status int, reason, message string) *Rejection {
	return &Rejection{Status: status, Reason: reason, Message: message, Policy: e.Name}
}

// Answer builds the Rejection by which this policy says it has answered
// the request itself (see Rejection.Answer); reason names the answer in
// the access log. Call it at provision time.
func (e *Env) Answer(reason string) *Rejection {
	return &Rejection{Reason: reason, Policy: e.Name, Answer: true}
}

// Warn records a likely mistake at node (one of the policy's parameters;
// nil: the policy's entry) among the config's warnings, which `flexgate
// validate` prints and the gateway logs whenever it loads the config. It
// does not fail the config. A warning is recorded once, however often the
// config is compiled; Compile runs on one goroutine, so this is safe.
func (e *Env) Warn(node *yaml.Node, format string, args ...any) {
	pos := e.Spec.Pos
	if node != nil && node.Line > 0 {
		pos.Line, pos.Col = node.Line, node.Column
	}
	w := config.Warning{Pos: pos, Message: e.Name + ": " + fmt.Sprintf(format, args...)}
	if !slices.Contains(e.Config.Warnings, w) {
		e.Config.Warnings = append(e.Config.Warnings, w)
	}
}

// HasBefore reports whether a policy named name runs before this one.
func (e *Env) HasBefore(name string) bool {
	for _, n := range e.Before {
		if n == name {
			return true
		}
	}
	return false
}

// Options steer Compile.
type Options struct {
	// Provision builds runtime state; without it policies are only
	// decoded and validated (what `flexgate validate` does).
	Provision bool
	// Reuse holds the instances of the config being replaced, by key;
	// Compile takes the ones whose key it meets again instead of
	// provisioning new ones, and deletes them from the map. What is left
	// is the caller's to Close once the old config has drained.
	Reuse   map[string]Instance
	Metrics *metrics.Set
	Logger  *slog.Logger

	// shared holds the instances of the routes compiled so far by
	// CompileAll, by key, for the routes of the same PolicyScope.
	shared map[string]Instance
}

// Compile decodes, validates and (with opts.Provision) provisions the
// policies of route into a Chain. Every error carries the file:line:col of
// the offending value; all errors of the route are returned, joined. On error,
// what it provisioned is closed again.
func Compile(cfg *config.Config, route *config.Route, opts Options) (*Chain, error) {
	c := &Chain{RouteID: route.ID}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.NewSet()
	}
	var errs []error
	var before []string
	var fresh []Policy
	var taken []Instance
	seen := map[string]int{}
	conds := map[string]int{}
	// headForms are the form checks of the policies whose steps read no
	// body: they run first among the steps that follow those.
	var headForms []RequestStep
	for i, pos := range RunOrder(route.Policies) {
		spec := &route.Policies[pos]
		reg, ok := Lookup(spec.Name)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: route %q: unknown policy %q; known policies: %s",
				spec.Pos, route.ID, spec.Name, strings.Join(Names(), ", ")))
			continue
		}
		scope := scopeOf(route)
		key := instanceKey(scope, spec)
		if reg.KeyFrom != nil {
			key += "\x00" + reg.KeyFrom(cfg, route)
		}
		if n := countOf(before, spec.Name); reg.ByPlace && n > 0 {
			key += "\x00#" + strconv.Itoa(n)
		}
		seen[key]++
		if n := seen[key]; n > 1 {
			key += "\x00" + strconv.Itoa(n)
		}
		env := &Env{Config: cfg, Route: route, Scope: scope, Spec: spec, Name: spec.Name, Index: i,
			Before: append([]string(nil), before...), Metrics: opts.Metrics,
			Logger: logger.With("route", route.ID, "policy", spec.Name)}
		before = append(before, spec.Name)

		cond, cerr := c.condition(route, spec, conds)
		if cerr != nil {
			errs = append(errs, cerr)
		}
		inst, reused := Instance{}, false
		shared := false
		if inst, shared = opts.shared[key]; shared {
			// Another route of the scope runs this instance.
		} else if opts.Reuse != nil {
			inst, reused = opts.Reuse[key]
		}
		// Every policy is decoded and validated in its new place, even one
		// whose state is carried over: what comes before it may have
		// changed (an expression reads a value only a policy before it
		// provides).
		p := reg.New()
		if err := decodeInto(spec, p); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := p.Validate(env); err != nil {
			errs = append(errs, at(spec, err))
			continue
		}
		if cerr != nil {
			continue
		}
		switch {
		case shared:
		case reused:
			delete(opts.Reuse, key)
			taken = append(taken, inst)
		default:
			if opts.Provision {
				if err := p.Provision(env); err != nil {
					errs = append(errs, at(spec, err))
					continue
				}
				fresh = append(fresh, p)
			}
			inst = Instance{Name: spec.Name, Key: key, Policy: p, credentials: env.credentials}
		}
		c.add(inst, cond)
		if f := newFormCheck(env, inst.credentials, cfg, route); f != nil {
			// After the policy's own step, which has then passed, and
			// after every step that reads no body (see formCheck).
			step := RequestStep{Fn: f.check, Index: len(c.Policies) - 1, Cond: cond}
			if c.HeadSteps == len(c.Request) {
				headForms = append(headForms, step)
			} else {
				c.Request = append(c.Request, step)
			}
		}
	}
	c.Request = slices.Insert(c.Request, c.HeadSteps, headForms...)
	if len(errs) > 0 {
		for _, p := range fresh {
			_ = p.Close()
		}
		for _, inst := range taken {
			opts.Reuse[inst.Key] = inst
		}
		return nil, errors.Join(errs...)
	}
	if route.ReverseResponse {
		slices.Reverse(c.Response)
	}
	if opts.shared != nil && route.PolicyScope != "" {
		for _, inst := range c.Policies {
			opts.shared[inst.Key] = inst
		}
	}
	return c, nil
}

// RunOrder returns the positions of policies in the order a chain runs
// them: those registered First, then the others, each in the order
// written. An unknown name keeps its place (it is an error anyway).
func RunOrder(policies []config.PolicySpec) []int {
	order := make([]int, 0, len(policies))
	for pass := range 2 {
		for i := range policies {
			reg, _ := Lookup(policies[i].Name)
			if reg.First == (pass == 0) {
				order = append(order, i)
			}
		}
	}
	return order
}

// scopeOf names what a route's policy instances belong to (Env.Scope):
// its PolicyScope, shared with other routes, or the route alone. A scope's
// name starts with "scope" and a NUL, so that a scope is not taken for a
// route of the same name (only a route ID holding a NUL could be).
func scopeOf(r *config.Route) string {
	if r.PolicyScope != "" {
		return "scope\x00" + r.PolicyScope
	}
	return r.ID
}

func (c *Chain) add(inst Instance, cond int) {
	idx := len(c.Policies)
	c.Policies = append(c.Policies, inst)
	if pa, ok := inst.Policy.(PreflightAnswerer); ok && pa.AnswersPreflight() {
		c.Preflight = true
	}
	if h, ok := inst.Policy.(RequestHandler); ok {
		if br, ok := inst.Policy.(BodyReader); (!ok || !br.ReadsRequestBody()) && c.HeadSteps == len(c.Request) {
			c.HeadSteps++
		}
		c.Request = append(c.Request, RequestStep{Fn: h.HandleRequest, Index: idx, Cond: cond})
	}
	if h, ok := inst.Policy.(ResponseHandler); ok {
		c.Response = append(c.Response, ResponseStep{Fn: h.HandleResponse, Index: idx, Cond: cond})
	}
}

// condition compiles the rules that limit spec to some requests, matched
// on the path after the route's StripPrefix as the route's own rules are,
// and returns the position its steps name (see RequestStep.Cond): 0 when
// it applies to every request. Policies with the same rules share one
// condition, which Select evaluates once; seen maps rules to positions.
func (c *Chain) condition(route *config.Route, spec *config.PolicySpec, seen map[string]int) (int, error) {
	if len(spec.When) == 0 {
		return 0, nil
	}
	var errs []error
	for _, r := range spec.When {
		if err := config.CheckMatchRule(r); err != nil {
			errs = append(errs, fmt.Errorf("%s: %s: rule: %w", r.Pos, spec.Name, err))
		}
	}
	if len(errs) > 0 {
		return 0, errors.Join(errs...)
	}
	s := match.Spec{StripPrefix: route.StripPrefix, Rules: config.RuleSpecs(spec.When)}
	key := fmt.Sprintf("%#v", s.Rules)
	if i, ok := seen[key]; ok {
		return i, nil
	}
	cond, err := match.Compile(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %s: %w", spec.Pos, spec.Name, err)
	}
	c.Conds = append(c.Conds, cond)
	seen[key] = len(c.Conds)
	return len(c.Conds), nil
}

// Close closes every policy of the chain.
func (c *Chain) Close() error {
	var errs []error
	for _, inst := range c.Policies {
		if err := inst.Policy.Close(); err != nil {
			errs = append(errs, fmt.Errorf("route %q: policy %s: %w", c.RouteID, inst.Name, err))
		}
	}
	return errors.Join(errs...)
}

// decodeInto decodes spec's parameters into p when p accepts parameters.
// A policy that takes no parameters is a struct with no yaml fields; Decode
// then rejects any parameter given.
func decodeInto(spec *config.PolicySpec, p Policy) error {
	if err := Decode(spec.Params, p); err != nil {
		return at(spec, err)
	}
	return nil
}

// at places err at the policy's file: a ParamError gains the file name, any
// other error the policy's own position. Policies quote their parameters,
// $env values among them, so a URL's password is masked.
func at(spec *config.PolicySpec, err error) error {
	if errs := flatten(err); len(errs) > 1 {
		// Decode reports every parameter that is wrong: each at its place.
		placed := make([]error, len(errs))
		for i, e := range errs {
			placed[i] = at(spec, e)
		}
		return errors.Join(placed...)
	}
	var pe *ParamError
	if errors.As(err, &pe) && pe.Line > 0 {
		line, col := pe.Line, pe.Col
		if pe.node != nil {
			line, col = ValuePos(spec.Pos.File, pe.node, pe.offset)
		}
		return fmt.Errorf("%s:%d:%d: %s: %s", spec.Pos.File, line, col, spec.Name, config.RedactURLPasswords(pe.Msg))
	}
	var ve ValueError
	if errors.As(err, &ve) {
		// A policy that returns an expression's error as it is: place
		// it at the value it is about.
		if src, off := ve.ValueOffset(); findScalar(spec.Params, src) != nil {
			line, col := ValuePos(spec.Pos.File, findScalar(spec.Params, src), off)
			return fmt.Errorf("%s:%d:%d: %s: %s", spec.Pos.File, line, col, spec.Name, config.RedactURLPasswords(err.Error()))
		}
	}
	if msg := err.Error(); config.RedactURLPasswords(msg) != msg {
		return fmt.Errorf("%s: %s: %s", spec.Pos, spec.Name, config.RedactURLPasswords(msg))
	}
	return fmt.Errorf("%s: %s: %w", spec.Pos, spec.Name, err)
}

// findScalar returns the first scalar under n whose value is v, or nil.
func findScalar(n *yaml.Node, v string) *yaml.Node {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.ScalarNode && n.Value == v {
		return n
	}
	for _, c := range n.Content {
		if f := findScalar(c, v); f != nil {
			return f
		}
	}
	return nil
}

// countOf is how many of names are name.
func countOf(names []string, name string) int {
	n := 0
	for _, x := range names {
		if x == name {
			n++
		}
	}
	return n
}

func instanceKey(routeID string, spec *config.PolicySpec) string {
	params := ""
	// Parameters whose aliases are out of bounds get no key of their
	// own: Decode refuses them before the key is used.
	if spec.Params != nil && config.CheckAliases(spec.Params) == nil {
		b, err := yaml.Marshal(stripPositions(spec.Params))
		if err == nil {
			params = string(b)
		}
	}
	return routeID + "\x00" + spec.Name + "\x00" + params
}

// stripPositions copies a node tree without comments or style, so that
// moving, commenting or reformatting a policy (a flow mapping written as a
// block) does not change its key, and with its aliases
// expanded, so that changing the value of an anchor does (the caller bounds
// the expansion with config.CheckAliases).
func stripPositions(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return stripPositions(n.Alias)
	}
	// The tag keeps what quoting meant: "100" is !!str, 100 is !!int.
	c := &yaml.Node{Kind: n.Kind, Tag: n.Tag, Value: n.Value}
	for _, k := range n.Content {
		c.Content = append(c.Content, stripPositions(k))
	}
	return c
}
