// Package timeouts holds the policies that change, for one route, how long
// the gateway waits for its upstream: response-timeout and
// stream-idle-timeout, with Flex Gateway's response-timeout-flex and
// stream-idle-timeout-flex. Their request step sets the wait on the
// Exchange; the gateway applies it when it forwards, and answers 504
// upstream_timeout when it runs out before the answer's head.
package timeouts

import (
	"math"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
)

// Which wait a policy sets.
type kind uint8

const (
	// response: each wait while the request is sent and for the
	// answer's head (and for the body's bytes, unless a stream idle
	// timeout is set too).
	response kind = iota
	// streamIdle: each wait for the next bytes of the answer's body.
	streamIdle
)

// Flex Gateway's defaults, in seconds, when config leaves timeout out.
const (
	DefaultResponseSeconds   = 15
	DefaultStreamIdleSeconds = 300
)

// MaxTimeout bounds every timeout these policies set.
const MaxTimeout = 24 * time.Hour

func init() {
	chain.Register(chain.Registration{Name: "response-timeout", New: func() chain.Policy { return &Timeout{kind: response} }})
	chain.Register(chain.Registration{Name: "stream-idle-timeout", New: func() chain.Policy { return &Timeout{kind: streamIdle} }})
	chain.Register(chain.Registration{Name: "response-timeout-flex",
		New: func() chain.Policy { return &FlexTimeout{Timeout: Timeout{kind: response}} }})
	chain.Register(chain.Registration{Name: "stream-idle-timeout-flex",
		New: func() chain.Policy { return &FlexTimeout{Timeout: Timeout{kind: streamIdle}} }})
}

// Timeout is response-timeout or stream-idle-timeout: `timeout` is a
// duration with a unit ("10s", "500ms"). Once provisioned it is safe for
// concurrent use.
type Timeout struct {
	// Timeout is the wait, as a duration; required.
	Timeout string `yaml:"timeout"`

	kind kind
	d    time.Duration
}

// Validate parses the timeout.
func (t *Timeout) Validate(env *chain.Env) error {
	node := chain.Field(env.Spec.Params, "timeout")
	if node == nil {
		return chain.Errorf(env.Spec.Params, "timeout is required: write the wait with a unit, e.g. timeout: 10s")
	}
	d, err := chain.ParseDuration(node, "timeout", t.Timeout, time.Millisecond, MaxTimeout,
		"the gateway always bounds its waits for an upstream; 0 does not turn the timeout off")
	if err != nil {
		return err
	}
	t.d = d
	return nil
}

// Provision has nothing to build beyond what Validate decided.
func (t *Timeout) Provision(*chain.Env) error { return nil }

// Close has nothing to release.
func (t *Timeout) Close() error { return nil }

// HandleRequest sets the route's wait for this request. A later policy of
// the same kind replaces it.
func (t *Timeout) HandleRequest(_ *fasthttp.RequestCtx, ex *chain.Exchange) *chain.Rejection {
	if t.kind == response {
		ex.ResponseTimeout = t.d
	} else {
		ex.StreamIdleTimeout = t.d
	}
	return nil
}

// FlexTimeout is response-timeout-flex or stream-idle-timeout-flex:
// `timeout` in seconds, 15 and 300 when left out (Flex Gateway's
// defaults). Once provisioned it is safe for concurrent use.
type FlexTimeout struct {
	// Seconds is the wait in seconds; fractions are allowed.
	Seconds *float64 `yaml:"timeout" min:"0.001" max:"86400" note:"seconds"`

	Timeout `yaml:"-"`
}

// Validate checks the seconds.
func (f *FlexTimeout) Validate(env *chain.Env) error {
	s := float64(DefaultResponseSeconds)
	if f.kind == streamIdle {
		s = DefaultStreamIdleSeconds
	}
	if f.Seconds != nil {
		// Within its tags' bounds, 1ms to MaxTimeout.
		s = *f.Seconds
	}
	f.d = time.Duration(math.Round(s * float64(time.Second)))
	return nil
}

var (
	_ chain.Policy         = (*Timeout)(nil)
	_ chain.RequestHandler = (*Timeout)(nil)
	_ chain.Policy         = (*FlexTimeout)(nil)
)
