package cors

import (
	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/chain"
)

func init() {
	chain.Register(chain.Registration{Name: "cors-flex", New: func() chain.Policy { return new(FlexPolicy) }, First: true})
}

// FlexPolicy is cors-flex: Flex Gateway's CORS policy, with its
// parameters. Once provisioned it is safe for concurrent use.
type FlexPolicy struct {
	// PublicResource allows every origin (but "null"). Default true.
	PublicResource *bool `yaml:"publicResource"`
	// SupportCredentials lets requests carry cookies and HTTP
	// authentication. Not with publicResource.
	SupportCredentials bool `yaml:"supportCredentials"`
	// OriginGroups are the origins allowed, each group with its settings.
	OriginGroups []OriginGroup `yaml:"originGroups"`

	engine
}

// OriginGroup is one group of cors-flex's originGroups.
type OriginGroup struct {
	// OriginGroupName labels the group (Flex's UI names them).
	OriginGroupName string `yaml:"originGroupName"`
	// Origins of the group. In a public resource, a group without origins
	// sets what every other origin may do.
	Origins []string `yaml:"origins"`
	// AccessControlMaxAge is how long, in seconds, a browser may cache a
	// preflight's answer. Default 30.
	AccessControlMaxAge *int `yaml:"accessControlMaxAge" min:"0" max:"2147483647"`
	// AllowedMethods; default every method Flex lists: CONNECT, DELETE,
	// GET, OPTIONS, PATCH, POST, PUT, TRACE (and HEAD with GET).
	AllowedMethods []AllowedMethod `yaml:"allowedMethods"`
	// Headers are the request headers the group's origins may send.
	Headers []string `yaml:"headers"`
	// ExposedHeaders are the response headers their pages may read.
	ExposedHeaders []string `yaml:"exposedHeaders"`
}

// AllowedMethod is one entry of allowedMethods.
type AllowedMethod struct {
	MethodName string `yaml:"methodName"`
	// IsAllowed: false leaves the method out. Default true.
	IsAllowed *bool `yaml:"isAllowed"`
}

// Validate maps Flex's parameters onto the engine's groups.
func (f *FlexPolicy) Validate(env *chain.Env) error {
	params := env.Spec.Params
	public := f.PublicResource == nil || *f.PublicResource
	publicNode := chain.Field(params, "publicResource")
	if public && f.SupportCredentials {
		at := publicNode
		if at == nil {
			at = chain.Field(params, "supportCredentials")
		}
		return chain.Errorf(at, "supportCredentials: true with publicResource: true (its default) would let every website read answers "+
			"made with its visitors' cookies; set publicResource: false and list the origins in originGroups")
	}
	groupsNode := chain.Field(params, "originGroups")
	if !public && len(f.OriginGroups) == 0 {
		return chain.Errorf(orParams(publicNode, env), "publicResource: false allows only the origins of originGroups, and there are none; "+
			"list them, e.g. originGroups: [{origins: [\"https://app.example.com\"]}]")
	}
	var specs []groupSpec
	every := -1
	for i, og := range f.OriginGroups {
		gn := item(groupsNode, i)
		s := groupSpec{origins: og.Origins, originsNode: chain.Field(gn, "origins"),
			headers: og.Headers, headersNode: chain.Field(gn, "headers"),
			exposed: og.ExposedHeaders, exposedNode: chain.Field(gn, "exposedHeaders"),
			maxAge: DefaultMaxAge}
		if og.AccessControlMaxAge != nil {
			s.maxAge = *og.AccessControlMaxAge
		}
		if len(og.Origins) == 0 {
			switch {
			case !public:
				return chain.Errorf(gn, "origin group %d lists no origins, so it applies to none; list them in origins", i+1)
			case every >= 0:
				return chain.Errorf(gn, "origin groups %d and %d both list no origins; in a public resource one such group says what every other origin may do", every+1, i+1)
			}
			every = i
			s.everyOrigin = true
		}
		methodsNode := chain.Field(gn, "allowedMethods")
		if og.AllowedMethods == nil {
			s.methods = allMethods()
		}
		for j, m := range og.AllowedMethods {
			mn := item(methodsNode, j)
			if m.MethodName == "" {
				return chain.Errorf(mn, "allowedMethods entry has no methodName: write {methodName: POST, isAllowed: true}")
			}
			if m.IsAllowed != nil && !*m.IsAllowed {
				continue
			}
			s.methods = append(s.methods, methodSpec{name: m.MethodName, node: orNode(chain.Field(mn, "methodName"), mn)})
		}
		specs = append(specs, s)
	}
	return f.compile(env, specs, public, f.SupportCredentials, chain.Field(params, "supportCredentials"))
}

func orNode(n, or *yaml.Node) *yaml.Node {
	if n != nil {
		return n
	}
	return or
}

var (
	_ chain.Policy            = (*FlexPolicy)(nil)
	_ chain.RequestHandler    = (*FlexPolicy)(nil)
	_ chain.ResponseHandler   = (*FlexPolicy)(nil)
	_ chain.PreflightAnswerer = (*FlexPolicy)(nil)
)
