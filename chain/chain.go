// Package chain compiles a route's policies into flat slices of request and
// response steps, and holds the registry that policy packages add themselves
// to by name.
//
// A policy's life: New (from the registry) → Decode its parameters → Validate
// (fast, no side effects) → Provision (build runtime state) → serve → Close.
// A whole new config is provisioned before it replaces the old one; an
// instance whose route, name and parameters did not change is carried over
// to the new config with its state (see Reuse).
//
// Policies hand values to the steps after them: the client a policy
// authenticated, the claims of a token. A policy declares the values it
// provides, by name, in its Registration (ValueSpec); several policies may
// provide the same name, and RegisterAlias gives a value another name. The
// registry gives each name a place in every Exchange and a handle, Value,
// by which providers set it and consumers read it on the request path
// without a lookup. Expressions ($client.id, $token.claims.email) find a
// value through LookupValue when the config loads, and check there that a
// policy providing it runs before them.
package chain

import (
	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/internal/match"
)

// Policy is the contract every policy implements. A provisioned Policy is
// used by many goroutines at once: its request and response methods must be
// safe for concurrent use.
type Policy interface {
	// Validate checks the decoded parameters. It must be fast and have no
	// side effects: `flexgate validate` calls it without provisioning.
	Validate(env *Env) error
	// Provision builds the runtime state (buckets, clients, compiled
	// schemas). It runs once, before the config serves.
	Provision(env *Env) error
	// Close releases what Provision built. It runs once no request can
	// reach the policy any more.
	Close() error
}

// RequestHandler is implemented by policies with a request phase.
//
// HandleRequest returns nil to pass the request on, or a Rejection to stop
// the chain: the gateway then answers with the rejection's status and
// nothing reaches the upstream. A policy may set response headers on
// ctx.Response (Retry-After, WWW-Authenticate) before it rejects; the error
// renderer keeps them. It must not allocate on the common path.
type RequestHandler interface {
	HandleRequest(ctx *fasthttp.RequestCtx, ex *Exchange) *Rejection
}

// BodyReader is implemented by policies whose request phase reads the
// request body. A client that sends "Expect: 100-continue" waits for the
// gateway's 100 before it sends its body: the request steps before the
// first BodyReader run while it waits, so that a request they refuse is
// answered before its body is sent, and the rest run once the body comes.
type BodyReader interface {
	ReadsRequestBody() bool
}

// PreflightAnswerer is implemented by policies that answer CORS preflight
// requests themselves (an OPTIONS request with Origin and
// Access-Control-Request-Method). The gateway routes a preflight as the
// request it announces (its path and the method it names) when that
// route's chain has such a policy, so that the route's CORS settings
// answer it even if the route does not list OPTIONS among its methods.
type PreflightAnswerer interface {
	AnswersPreflight() bool
}

// BodyRejection is the error a policy's reader of the request body returns
// when the body breaks the policy while it streams to the upstream (a
// policy that checks a body too large to hold puts such a reader in front
// of the client's stream with Request.SetBodyStream). The gateway stops
// sending the body, so the upstream never has the request whole, and
// answers with the rejection instead of the upstream's answer.
type BodyRejection interface {
	error
	Rejection() *Rejection
}

// ResponseHandler is implemented by policies with a response phase. It runs
// on every response the route sends: the upstream's and the gateway's own
// rejections alike, after ctx.Response holds the final status and headers.
type ResponseHandler interface {
	HandleResponse(ctx *fasthttp.RequestCtx, ex *Exchange)
}

// RequestFunc is one compiled request step.
type RequestFunc func(ctx *fasthttp.RequestCtx, ex *Exchange) *Rejection

// ResponseFunc is one compiled response step.
type ResponseFunc func(ctx *fasthttp.RequestCtx, ex *Exchange)

// Chain is a route's compiled policies. It is immutable and safe for
// concurrent use.
type Chain struct {
	// RouteID names the route in errors and metrics.
	RouteID string
	// Request steps in the order written.
	Request []RequestStep
	// HeadSteps is how many of the first Request steps read no body (no
	// BodyReader is among them or before them). The steps that look in
	// a form body for the credentials of a policy (see Credentials) come
	// after them.
	HeadSteps int
	// Response steps in the order written, or last to first when the
	// route says so (config.Route.ReverseResponse).
	Response []ResponseStep
	// Policies are the provisioned instances, in order.
	Policies []Instance
	// Preflight: a policy of the chain answers CORS preflights (see
	// PreflightAnswerer).
	Preflight bool
	// Conds are the distinct conditions of the policies that apply only
	// to some requests (a Flex binding's rules). Select evaluates each
	// once per request; a step names its policy's by position.
	Conds []*match.Cond
}

// RequestStep is a compiled request step and the position of its policy in
// the chain.
type RequestStep struct {
	Fn    RequestFunc
	Index int
	// Cond is 0 for a policy that applies to every request, else i when
	// it applies only to the requests that meet Conds[i-1].
	Cond int
}

// ResponseStep is a compiled response step and the position of its policy
// in the chain.
type ResponseStep struct {
	Fn    ResponseFunc
	Index int
	// Cond is as in RequestStep.
	Cond int
}

// Select evaluates the chain's conditions on the request, once each, so
// that the policies whose conditions the request does not meet run neither
// their request nor their response step. The gateway calls it after
// Prepare, before any step runs: conditions see the request as the client
// sent it (its path normalised), as routing does. Without Select every
// policy runs. It does not allocate.
func (c *Chain) Select(ex *Exchange, req *match.Request) {
	for i, cond := range c.Conds {
		ex.conds[i] = cond.Match(req, nil)
	}
}

// Instance is one provisioned policy of a chain.
type Instance struct {
	// Name is the registered policy name.
	Name string
	// Key identifies the route, name and parameters; an instance with the
	// same key in the next config is carried over with its state.
	Key    string
	Policy Policy

	// credentials are what the policy declared with Env.Credentials, kept
	// with the instance for the chains it is carried over to.
	credentials []*Credentials
}

// RunRequest runs the request steps in order and returns the first
// rejection, or nil when every step passed.
func (c *Chain) RunRequest(ctx *fasthttp.RequestCtx, ex *Exchange) *Rejection {
	return runRequest(ctx, ex, c.Request)
}

// applies reports whether a step with condition cond runs on this request.
func (ex *Exchange) applies(cond int) bool {
	return cond == 0 || ex.conds[cond-1]
}

// RunRequestHead runs the request steps that read no body,
// Request[:HeadSteps]; RunRequestTail runs the others. One after the other
// they do what RunRequest does.
func (c *Chain) RunRequestHead(ctx *fasthttp.RequestCtx, ex *Exchange) *Rejection {
	return runRequest(ctx, ex, c.Request[:c.HeadSteps])
}

// RunRequestTail runs the request steps after the head, the first of them
// a BodyReader or a check of a form body.
func (c *Chain) RunRequestTail(ctx *fasthttp.RequestCtx, ex *Exchange) *Rejection {
	return runRequest(ctx, ex, c.Request[c.HeadSteps:])
}

func runRequest(ctx *fasthttp.RequestCtx, ex *Exchange, steps []RequestStep) *Rejection {
	for _, step := range steps {
		if !ex.applies(step.Cond) {
			continue
		}
		ex.cur = step.Index
		if r := step.Fn(ctx, ex); r != nil {
			if r != Answered {
				ex.Rejected = r
			}
			return r
		}
	}
	return nil
}

// RunResponse runs every response step in order.
func (c *Chain) RunResponse(ctx *fasthttp.RequestCtx, ex *Exchange) {
	for _, step := range c.Response {
		if !ex.applies(step.Cond) {
			continue
		}
		ex.cur = step.Index
		step.Fn(ctx, ex)
	}
}
