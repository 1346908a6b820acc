// Package spikecontrol is the spike-control policy: it smooths bursts so
// that the route's upstream serves at most a number of requests in any
// period (a sliding window over the whole route, not per client), holding
// requests over it in a bounded queue and trying them again before it
// answers 429.
package spikecontrol

import (
	"fmt"
	"sync/atomic"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/chain"
)

func init() {
	chain.Register(chain.Registration{Name: "spike-control", New: func() chain.Policy { return new(Spike) }})
	chain.Register(chain.Registration{Name: "spike-control-flex", New: func() chain.Policy { return new(FlexSpike) }})
}

// Bounds of the parameters.
const (
	// MaxPeriod is Flex Gateway's bound of timePeriodInMilliseconds.
	MaxPeriod = 5 * time.Second
	// MaxLimit bounds the requests of a window: the window keeps one
	// timestamp (8 bytes) per request of the limit.
	MaxLimit = 1_000_000
	// MaxQueue bounds queueLimit: each request waiting in the queue holds
	// a connection and a worker goroutine of the gateway.
	MaxQueue = 10_000
	// MaxWait bounds what a request may wait in the queue in all
	// (delay × delayAttempts).
	MaxWait = time.Minute
)

// Spike is the spike-control policy. Once provisioned it is safe for
// concurrent use.
type Spike struct {
	// Limit is the most requests the route forwards in any Period.
	Limit int `yaml:"limit" min:"1" max:"1000000"`
	// Period is the sliding window, a duration up to 5s; default 1s.
	Period string `yaml:"period"`
	// Delay is how long a request over the limit waits before it is tried
	// again; default 1s.
	Delay string `yaml:"delay"`
	// DelayAttempts is how often a waiting request is tried again before
	// it is refused; default 1.
	DelayAttempts *int `yaml:"delayAttempts" min:"0" max:"60000"`
	// QueueLimit is the most requests that wait at once; one over it is
	// refused at once. Default 0: no request waits.
	QueueLimit int `yaml:"queueLimit" min:"0" max:"10000" note:"each waiting request holds a connection and a worker"`
	// ExposeHeaders adds X-Ratelimit-Limit, -Remaining and -Reset (ms) to
	// the route's responses; default false.
	ExposeHeaders bool `yaml:"exposeHeaders"`

	p params
	w *window
	// queued counts the requests waiting now; peak is the most that ever
	// did (tests).
	queued, peak atomic.Int64
	reject       *chain.Rejection
	clock        func() int64
	sleep        func(time.Duration)
	route        string
	series       *series
	// flex: the policy is spike-control-flex, whose 429 says what Flex
	// Gateway's does.
	flex bool
}

// params are the parameters in the policy's units, whichever form it
// was written in.
type params struct {
	limit         int
	period, delay time.Duration
	attempts      int
	queue         int
	expose        bool
	// nodes name where each was written, for errors.
	limitNode, periodNode, delayNode, attemptsNode, queueNode *yaml.Node
}

// Validate checks the parameters.
func (s *Spike) Validate(env *chain.Env) error {
	params := env.Spec.Params
	s.p = defaultParams()
	s.p.limit, s.p.queue, s.p.expose = s.Limit, s.QueueLimit, s.ExposeHeaders
	s.p.limitNode, s.p.queueNode = chain.Field(params, "limit"), chain.Field(params, "queueLimit")
	s.p.periodNode, s.p.delayNode, s.p.attemptsNode = chain.Field(params, "period"), chain.Field(params, "delay"), chain.Field(params, "delayAttempts")
	if s.p.limitNode == nil {
		return chain.Errorf(params, "limit is required: the most requests the route forwards in any period, e.g. limit: 100, period: 1s")
	}
	// The bounds are those of spike-control-flex's tags.
	for _, d := range []struct {
		text string
		node *yaml.Node
		dst  *time.Duration
		name string
		max  time.Duration
		note string
	}{
		{s.Period, s.p.periodNode, &s.p.period, "period", MaxPeriod, "spike control smooths bursts; for quotas use rate-limiting"},
		{s.Delay, s.p.delayNode, &s.p.delay, "delay", MaxWait, ""},
	} {
		if d.node == nil {
			continue
		}
		v, err := chain.ParseDuration(d.node, d.name, d.text, time.Millisecond, d.max, d.note)
		if err != nil {
			return err
		}
		*d.dst = v
	}
	if s.DelayAttempts != nil {
		s.p.attempts = *s.DelayAttempts
	}
	return s.p.check(params)
}

// defaultParams are the defaults of both forms (Flex Gateway's).
func defaultParams() params {
	return params{limit: 1, period: time.Second, delay: time.Second, attempts: 1}
}

// check validates p; at is where to report what has no node.
func (p *params) check(at *yaml.Node) error {
	node := func(n *yaml.Node) *yaml.Node {
		if n != nil {
			return n
		}
		return at
	}
	// Each parameter's own bounds are its tags, which Decode checks, or
	// for period and delay those chain.ParseDuration checked.
	switch {
	case p.queue > 0 && p.attempts > 0 && p.delay > MaxWait/time.Duration(p.attempts):
		// Divided, not multiplied: a delay of years times the attempts
		// would wrap around to a short wait.
		return chain.Errorf(node(p.attemptsNode), "a queued request would wait %d × %s, longer than %s; lower the delay or the attempts",
			p.attempts, p.delay, MaxWait)
	}
	return nil
}

// Provision builds the window and the rejection.
func (s *Spike) Provision(env *chain.Env) error {
	if s.clock == nil {
		s.clock = monoClock
	}
	if s.sleep == nil {
		s.sleep = time.Sleep
	}
	s.route = env.Owner()
	s.w = newWindow(s.p.limit, int64(s.p.period))
	msg := fmt.Sprintf("too many requests: the route forwards at most %d in any %s; retry shortly", s.p.limit, s.p.period)
	if s.flex {
		msg = FlexTooManyRequests
	}
	s.reject = env.Reject(429, "spike_control", msg)
	s.series = newSeries(env, s.route, &s.queued)
	return nil
}

// Close has nothing to release: a request still waiting finishes on its
// own within delay × delayAttempts.
func (s *Spike) Close() error { return nil }

var processStart = time.Now()

// monoClock is nanoseconds on the monotonic clock.
func monoClock() int64 { return int64(time.Since(processStart)) }

var _ chain.Policy = (*Spike)(nil)
