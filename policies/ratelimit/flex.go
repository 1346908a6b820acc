package ratelimit

import (
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/config"
	"github.com/flexgate/flexgate/internal/redisopt"
)

func init() {
	chain.Register(chain.Registration{Name: "rate-limiting-flex", New: func() chain.Policy { return new(FlexLimiter) }, ByPlace: true,
		KeyFrom: func(cfg *config.Config, _ *config.Route) string {
			if cfg.SharedStorage == nil || cfg.SharedStorage.Redis == nil {
				return ""
			}
			return redisopt.SettingsKey(cfg.SharedStorage.Redis)
		}})
}

// FlexTooManyRequests is the message of rate-limiting-flex's 429, as Flex
// Gateway words it: its body is {"error":"Too Many Requests", ...}.
const FlexTooManyRequests = "Too Many Requests"

// FlexLimiter is rate-limiting-flex: Flex Gateway's rate limiting, with
// its parameters, responses and fixed windows (see NewFixedWindow), counted
// by the Limiter. keySelector, exposeHeaders and clusterizable are accepted
// at the top level, as Flex Gateway documents them, and in each rateLimits
// item, where some users write them; wherever written they must agree. Once provisioned it is safe
// for concurrent use.
type FlexLimiter struct {
	// RateLimits must all have quota left for a request to pass.
	RateLimits []FlexWindow `yaml:"rateLimits"`
	// KeySelector is an expression naming whose budget a request uses;
	// left out, every request shares one budget (as in Flex Gateway).
	KeySelector *chain.Expression `yaml:"keySelector"`
	// ExposeHeaders adds X-Ratelimit-Limit, -Remaining and -Reset (in
	// milliseconds) to the route's responses; default false.
	ExposeHeaders *bool `yaml:"exposeHeaders"`
	// Clusterizable keeps the budgets in the shared storage when one is
	// configured; default true (Flex Gateway's).
	Clusterizable *bool `yaml:"clusterizable"`

	Limiter `yaml:"-"`
}

// FlexWindow is one item of rateLimits.
type FlexWindow struct {
	MaximumRequests          int64 `yaml:"maximumRequests" min:"1" max:"31622400000000"`
	TimePeriodInMilliseconds int64 `yaml:"timePeriodInMilliseconds" min:"1" max:"31622400000"`
	// The knobs some users write per item (see FlexLimiter).
	KeySelector   *chain.Expression `yaml:"keySelector"`
	ExposeHeaders *bool             `yaml:"exposeHeaders"`
	Clusterizable *bool             `yaml:"clusterizable"`
}

// Validate checks Flex Gateway's parameters and sets up the Limiter.
func (f *FlexLimiter) Validate(env *chain.Env) error {
	params := env.Spec.Params
	limitsNode := chain.Field(params, "rateLimits")
	if len(f.RateLimits) == 0 {
		at := limitsNode
		if at == nil {
			at = params
		}
		return chain.Errorf(at, "rateLimits is required: list the limits, e.g. rateLimits: [{maximumRequests: 100, timePeriodInMilliseconds: 60000}]")
	}
	if len(f.RateLimits) > maxRules {
		return chain.Errorf(limitsNode, "%d rateLimits given; at most %d are supported", len(f.RateLimits), maxRules)
	}
	f.rules = f.rules[:0]
	keys := []knob[chain.Expression]{{f.KeySelector, chain.Field(params, "keySelector")}}
	exposes := []knob[bool]{{f.ExposeHeaders, chain.Field(params, "exposeHeaders")}}
	clusters := []knob[bool]{{f.Clusterizable, chain.Field(params, "clusterizable")}}
	for i, w := range f.RateLimits {
		item := limitsNode.Content[i]
		at := func(key string) *yaml.Node {
			if n := chain.Field(item, key); n != nil {
				return n
			}
			return item
		}
		period := time.Duration(w.TimePeriodInMilliseconds) * time.Millisecond
		// Left out, either is 0; one written is within its tags'
		// bounds.
		switch {
		case w.MaximumRequests <= 0:
			return chain.Errorf(at("maximumRequests"), "maximumRequests must be a whole number of requests above 0, e.g. maximumRequests: 100")
		case w.TimePeriodInMilliseconds <= 0:
			return chain.Errorf(at("timePeriodInMilliseconds"), "timePeriodInMilliseconds must be above 0, e.g. 60000 for a minute")
		case w.MaximumRequests > int64(period/time.Microsecond):
			return chain.Errorf(at("maximumRequests"), "%d requests per %d ms is more than a million a second; raise the period or lower the limit",
				w.MaximumRequests, w.TimePeriodInMilliseconds)
		}
		f.rules = append(f.rules, NewFixedWindow(w.MaximumRequests, period))
		keys = append(keys, knob[chain.Expression]{w.KeySelector, chain.Field(item, "keySelector")})
		exposes = append(exposes, knob[bool]{w.ExposeHeaders, chain.Field(item, "exposeHeaders")})
		clusters = append(clusters, knob[bool]{w.Clusterizable, chain.Field(item, "clusterizable")})
	}
	key, keyNode, err := agree("keySelector", keys)
	if err != nil {
		return err
	}
	expose, _, err := agree("exposeHeaders", exposes)
	if err != nil {
		return err
	}
	cluster, clusterNode, err := agree("clusterizable", clusters)
	if err != nil {
		return err
	}
	id := ""
	if key != nil {
		id = string(*key)
	} else {
		keyNode = params
	}
	// No keySelector is one budget for every request, as in Flex Gateway.
	if err := f.compileKey(env, id, keyNode, "keySelector", true); err != nil {
		return err
	}
	f.MaxKeys = DefaultMaxKeys
	f.expose = expose != nil && *expose
	f.Limiter.Clusterizable = cluster == nil || *cluster
	f.message, f.resetMillis = FlexTooManyRequests, true
	return f.validateShared(env, id, clusterNode, false)
}

// knob is one place a parameter may be written: its value and node, nil
// when not written there.
type knob[T comparable] struct {
	v    *T
	node *yaml.Node
}

// agree returns the value of a parameter written at the top level or in
// rateLimits items, and where; an error when two places disagree.
func agree[T comparable](name string, knobs []knob[T]) (*T, *yaml.Node, error) {
	var first knob[T]
	for _, k := range knobs {
		switch {
		case k.v == nil:
		case first.v == nil:
			first = k
		case *k.v != *first.v:
			return nil, nil, chain.Errorf(k.node, "%s differs from the %s at line %d; a rate-limiting-flex policy has one %s: write it once, at the top level",
				name, name, first.node.Line, name)
		}
	}
	return first.v, first.node, nil
}

var _ chain.Policy = (*FlexLimiter)(nil)
