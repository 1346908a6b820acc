package httpcache

import (
	"time"

	"github.com/flexgate/flexgate/chain"
)

// FlexCache is http-caching-flex: Flex Gateway's HTTP caching, with its
// parameters (each with Flex's default when left out), stored by the
// Cache. cacheAuthorized and cacheSetCookie are flexgate's additions.
// Once provisioned it is safe for concurrent use.
type FlexCache struct {
	HTTPCachingKey      *chain.Expression `yaml:"httpCachingKey"`
	MaxCacheEntries     *int              `yaml:"maxCacheEntries" min:"1" max:"10000000"`
	TTL                 *int              `yaml:"ttl" min:"1" max:"31622400" note:"seconds"`
	UseHTTPCacheHeaders *bool             `yaml:"useHttpCacheHeaders"`
	InvalidationHeader  string            `yaml:"invalidationHeader"`
	RequestExpression   *chain.Expression `yaml:"requestExpression"`
	ResponseExpression  *chain.Expression `yaml:"responseExpression"`
	Distributed         bool              `yaml:"distributed"`
	PersistCache        bool              `yaml:"persistCache"`
	CacheAuthorized     bool              `yaml:"cacheAuthorized"`
	CacheSetCookie      bool              `yaml:"cacheSetCookie"`

	Cache `yaml:"-"`
}

// Validate checks Flex Gateway's parameters and sets up the Cache.
func (f *FlexCache) Validate(env *chain.Env) error {
	params := env.Spec.Params
	p := defaultParams(FlexDefaultKey)
	p.keyParam = "httpCachingKey"
	if f.HTTPCachingKey != nil && *f.HTTPCachingKey != "" {
		p.key, p.keyNode = string(*f.HTTPCachingKey), chain.Field(params, "httpCachingKey")
	}
	if f.RequestExpression != nil && *f.RequestExpression != "" {
		p.requestExpr, p.requestNode = string(*f.RequestExpression), chain.Field(params, "requestExpression")
	}
	if f.ResponseExpression != nil && *f.ResponseExpression != "" {
		p.responseExpr, p.responseNode = string(*f.ResponseExpression), chain.Field(params, "responseExpression")
	}
	if f.MaxCacheEntries != nil {
		// Within its tags' bounds, 1 to maxMaxEntries.
		p.maxEntries = *f.MaxCacheEntries
	}
	if f.TTL != nil {
		// Within its tags' bounds, 1s to maxTTL.
		p.ttl = time.Duration(*f.TTL) * time.Second
	}
	p.headers = f.UseHTTPCacheHeaders == nil || *f.UseHTTPCacheHeaders
	p.invalidation = f.InvalidationHeader
	p.authorized, p.setCookie = f.CacheAuthorized, f.CacheSetCookie
	p.distributed, p.distributedNode = f.Distributed, chain.Field(params, "distributed")
	if f.PersistCache {
		env.Warn(chain.Field(params, "persistCache"), "persistCache: true is not supported: entries are kept in memory and are lost when the gateway restarts")
	}
	if f.HTTPCachingKey == nil {
		env.Warn(nil, "httpCachingKey is left out, so the key is Flex's default #[attributes.requestPath]: requests that differ only in "+
			"their query (/items?page=1, /items?page=2) get the same answer; write httpCachingKey: \"#[attributes.requestUri]\" to keep them apart, "+
			"or \"#[attributes.requestPath]\" to keep Flex's default")
	}
	f.p = p
	return f.p.compile(env, chain.Field(params, "invalidationHeader"))
}

var _ chain.Policy = (*FlexCache)(nil)
