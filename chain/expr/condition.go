package expr

import (
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
)

// Condition is a compiled Flex expression that decides yes or no for a
// request or response: whether to cache it, whether to log it. It is
// immutable and safe for concurrent use.
type Condition struct {
	src     string
	root    *node
	isConst bool
	c       bool
}

// CompileBool compiles a condition evaluated in phase: a Flex expression
// `#[...]` whose value may be true or false, or the words true and false.
// An expression that can only be something else (text, a number) is an
// error at load time; one that turns out to be something else on a request
// (a claim that is text) is false there. env is as for CompilePhase. Safe
// for concurrent use.
func CompileBool(s string, env *chain.Env, phase Phase) (*Condition, error) {
	return compileBool(s, env, phase, false)
}

// CompileCredentialBool is CompileBool for a condition on the request that
// admits it by what it carries (a custom claim of jwt-validation-flex may
// compare a claim with a header): each header and query parameter it reads
// by name is read as CompileCredential reads them, in any name an upstream
// reads as theirs, the one copy that chain.Credentials, declared with
// Reads, lets through. Safe for concurrent use.
func CompileCredentialBool(s string, env *chain.Env) (*Condition, error) {
	return compileBool(s, env, Request, true)
}

func compileBool(s string, env *chain.Env, phase Phase, credential bool) (*Condition, error) {
	switch strings.TrimSpace(s) {
	case "true", "false":
		return &Condition{src: s, isConst: true, c: strings.TrimSpace(s) == "true"}, nil
	}
	if !IsFlex(s) {
		return nil, &Error{Src: s, Msg: "a condition is a Flex expression, e.g. #[attributes.method == 'GET'], or true or false"}
	}
	root, err := compileFlex(s, env, phase)
	if err == nil && credential {
		err = readAnyName(s, root)
	}
	if err != nil {
		return nil, err
	}
	if root.t&tBool == 0 {
		return nil, &Error{Src: s, Offset: root.at, Msg: "a condition must be true or false, but this is " + root.t.String() +
			": compare it, e.g. attributes.method == 'GET'"}
	}
	c := &Condition{src: s, root: root}
	if root.op == opConst {
		c.isConst, c.c = true, isTrue(root.c)
	}
	return c, nil
}

// Eval decides the condition for one request (in the response phase, with
// its response). It allocates nothing. ex may be nil outside a chain.
func (c *Condition) Eval(ctx *fasthttp.RequestCtx, ex *chain.Exchange) bool {
	if c.isConst {
		return c.c
	}
	r := acquireRun(ctx, ex)
	ok := isTrue(c.root.eval(r))
	releaseRun(r)
	return ok
}

// Certain reports whether the condition is true or false on every request:
// its value can only be a boolean. A condition of a type known only at run
// time (a claim, which may hold text) is false whenever it turns out to be
// something else; a caller for which that would refuse every request
// refuses such a condition at load time.
func (c *Condition) Certain() bool { return c.isConst || c.root.t&^tBool == 0 }

// String returns the condition as written.
func (c *Condition) String() string { return c.src }

// Reads returns the names of the request headers and query parameters the
// condition reads by name, in the order written (see Template.Reads); a
// response's headers are not among them.
func (c *Condition) Reads() (headers, query []string) {
	if c.root == nil {
		return nil, nil
	}
	return reads(c.root)
}

// Alternatives is Template.Alternatives for the condition.
func (c *Condition) Alternatives() [][]chain.Reads {
	if c.root == nil {
		return nil
	}
	return alternatives(c.root)
}

// IsConstant reports whether the condition is the same for every request,
// and Eval then returns its value without looking at it.
func (c *Condition) IsConstant() bool { return c.isConst }
