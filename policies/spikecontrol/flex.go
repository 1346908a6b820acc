package spikecontrol

import (
	"time"

	"github.com/flexgate/flexgate/chain"
)

// FlexTooManyRequests is the message of spike-control-flex's 429, as Flex
// Gateway words its rate limits' ({"error":"Too Many Requests", ...}).
const FlexTooManyRequests = "Too Many Requests"

// FlexSpike is spike-control-flex: Flex Gateway's spike control, with its
// parameters (each with Flex's default when left out) and answers,
// counted by the Spike. Once provisioned it is safe for concurrent use.
type FlexSpike struct {
	MaximumRequests          *int  `yaml:"maximumRequests" min:"1" max:"1000000"`
	TimePeriodInMilliseconds *int  `yaml:"timePeriodInMilliseconds" min:"1" max:"5000" note:"spike control smooths bursts; for quotas use rate-limiting"`
	DelayTimeInMillis        *int  `yaml:"delayTimeInMillis" min:"1" max:"60000"`
	DelayAttempts            *int  `yaml:"delayAttempts" min:"0" max:"60000"`
	QueuingLimit             *int  `yaml:"queuingLimit" min:"0" max:"10000" note:"each waiting request holds a connection and a worker"`
	ExposeHeaders            *bool `yaml:"exposeHeaders"`

	Spike `yaml:"-"`
}

// Validate checks Flex Gateway's parameters and sets up the Spike.
func (f *FlexSpike) Validate(env *chain.Env) error {
	params := env.Spec.Params
	p := defaultParams()
	p.limitNode, p.periodNode = chain.Field(params, "maximumRequests"), chain.Field(params, "timePeriodInMilliseconds")
	p.delayNode, p.attemptsNode, p.queueNode = chain.Field(params, "delayTimeInMillis"), chain.Field(params, "delayAttempts"), chain.Field(params, "queuingLimit")
	if f.MaximumRequests != nil {
		p.limit = *f.MaximumRequests
	}
	if f.TimePeriodInMilliseconds != nil {
		p.period = time.Duration(*f.TimePeriodInMilliseconds) * time.Millisecond
	}
	if f.DelayTimeInMillis != nil {
		p.delay = time.Duration(*f.DelayTimeInMillis) * time.Millisecond
	}
	if f.DelayAttempts != nil {
		p.attempts = *f.DelayAttempts
	}
	if f.QueuingLimit != nil {
		p.queue = *f.QueuingLimit
	}
	p.expose = f.ExposeHeaders != nil && *f.ExposeHeaders
	f.p, f.flex = p, true
	return f.p.check(params)
}

var _ chain.Policy = (*FlexSpike)(nil)
