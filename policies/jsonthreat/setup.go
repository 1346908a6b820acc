package jsonthreat

import (
	"fmt"
	"strconv"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/config"
)

func init() {
	chain.Register(chain.Registration{Name: "json-threat-protection", New: func() chain.Policy { return new(Protector) }, KeyFrom: bodyLimitKey})
	chain.Register(chain.Registration{Name: "json-threat-protection-flex", New: func() chain.Policy { return new(FlexProtector) }, KeyFrom: bodyLimitKey})
}

// bodyLimitKey is the body size limit a protector takes from its route
// and the gateway (see provision): a reload that changes it builds the
// policy anew.
func bodyLimitKey(cfg *config.Config, route *config.Route) string {
	return fmt.Sprintf("%d/%d", route.MaxRequestBodySize, cfg.Limits.MaxRequestBodySize)
}

// Content types a Protector checks (ContentTypes).
const (
	// CheckAll checks every request body as JSON, whatever its
	// Content-Type says.
	CheckAll = "all"
	// CheckJSON checks bodies sent as JSON (application/json or any
	// +json type) or without a Content-Type, as Flex Gateway does.
	CheckJSON = "json"
)

// FlexLimits are Flex Gateway's parameters of json-threat-protection-flex,
// each -1 (the default) for no limit.
type FlexLimits struct {
	MaxContainerDepth        *int64 `yaml:"maxContainerDepth" min:"-1" max:"10000" note:"-1: no limit, but the gateway reads no body nested deeper than 10000"`
	MaxStringValueLength     *int64 `yaml:"maxStringValueLength" min:"-1" max:"2147483647" note:"-1: no limit"`
	MaxArrayElementCount     *int64 `yaml:"maxArrayElementCount" min:"-1" max:"2147483647" note:"-1: no limit"`
	MaxObjectEntryCount      *int64 `yaml:"maxObjectEntryCount" min:"-1" max:"2147483647" note:"-1: no limit"`
	MaxObjectEntryNameLength *int64 `yaml:"maxObjectEntryNameLength" min:"-1" max:"2147483647" note:"-1: no limit"`
}

// FlexProtector is json-threat-protection-flex: Flex Gateway's parameters,
// and its choice of bodies to check (JSON or no Content-Type). Once
// provisioned it is safe for concurrent use.
type FlexProtector struct {
	FlexLimits `yaml:",inline"`

	protector `yaml:"-"`
}

// Protector is json-threat-protection: the limits of the Flex policy, and
// which bodies to check. Once provisioned it is safe for concurrent use.
type Protector struct {
	FlexLimits `yaml:",inline"`
	// ContentTypes is "all" (the default: every non-empty body is JSON
	// to this route, as an upstream may parse JSON whatever the
	// Content-Type says) or "json" (JSON types and none, as Flex Gateway).
	ContentTypes string `yaml:"contentTypes"`

	protector `yaml:"-"`
}

// protector is the runtime state both names share.
type protector struct {
	lim      Limits
	all      bool
	maxBody  int64
	rejects  [numVerdicts]*chain.Rejection
	details  [numVerdicts][]byte
	tooLarge *chain.Rejection
	encoded  *chain.Rejection
	broken   *chain.Rejection
}

// Validate has nothing to check: the limits' bounds are their tags, which
// chain.Decode checks.
func (f *FlexProtector) Validate(*chain.Env) error { return nil }

// Provision builds the rejections.
func (f *FlexProtector) Provision(env *chain.Env) error {
	return f.provision(env, &f.FlexLimits, false)
}

// Validate checks contentTypes; the limits' bounds are their tags, which
// chain.Decode checks.
func (p *Protector) Validate(env *chain.Env) error {
	switch p.ContentTypes {
	case "", CheckAll, CheckJSON:
	default:
		return chain.Errorf(chain.Field(env.Spec.Params, "contentTypes"),
			"contentTypes %q is unknown: use %s (every body, the default) or %s (bodies sent as JSON or without a Content-Type)",
			p.ContentTypes, CheckAll, CheckJSON)
	}
	return nil
}

// Provision builds the rejections.
func (p *Protector) Provision(env *chain.Env) error {
	return p.provision(env, &p.FlexLimits, p.ContentTypes != CheckJSON)
}

// limitParams names each parameter, its value and the verdict it decides.
func (fl *FlexLimits) params() []struct {
	name    string
	v       *int64
	verdict Verdict
} {
	return []struct {
		name    string
		v       *int64
		verdict Verdict
	}{
		{"maxContainerDepth", fl.MaxContainerDepth, TooDeep},
		{"maxStringValueLength", fl.MaxStringValueLength, StringTooLong},
		{"maxArrayElementCount", fl.MaxArrayElementCount, ArrayTooLong},
		{"maxObjectEntryCount", fl.MaxObjectEntryCount, ObjectTooLong},
		{"maxObjectEntryNameLength", fl.MaxObjectEntryNameLength, NameTooLong},
	}
}

func value(v *int64) int64 {
	if v == nil {
		return -1
	}
	return *v
}

func (p *protector) provision(env *chain.Env, fl *FlexLimits, all bool) error {
	p.lim = Limits{Depth: value(fl.MaxContainerDepth), String: value(fl.MaxStringValueLength),
		Array: value(fl.MaxArrayElementCount), Object: value(fl.MaxObjectEntryCount), Name: value(fl.MaxObjectEntryNameLength)}
	p.all = all
	p.maxBody = env.Route.MaxRequestBodySize
	if p.maxBody <= 0 {
		p.maxBody = env.Config.Limits.MaxRequestBodySize
	}
	messages := map[Verdict]string{
		TooDeep:       "the JSON body nests objects and arrays deeper than maxContainerDepth (%d levels)",
		StringTooLong: "a string in the JSON body is longer than maxStringValueLength (%d characters)",
		ArrayTooLong:  "an array in the JSON body has more elements than maxArrayElementCount (%d)",
		ObjectTooLong: "an object in the JSON body has more entries than maxObjectEntryCount (%d)",
		NameTooLong:   "an object entry name in the JSON body is longer than maxObjectEntryNameLength (%d characters)",
	}
	reasons := map[Verdict]string{
		TooDeep: "json_too_deep", TooNested: "json_too_deep", StringTooLong: "json_string_too_long",
		ArrayTooLong: "json_array_too_long", ObjectTooLong: "json_object_too_long", NameTooLong: "json_name_too_long",
	}
	for _, prm := range fl.params() {
		v := value(prm.v)
		r := env.Reject(400, reasons[prm.verdict], fmt.Sprintf(messages[prm.verdict], v))
		r.DetailKey = "limit"
		p.rejects[prm.verdict] = r
		p.details[prm.verdict] = []byte(`{"parameter":"` + prm.name + `","value":` + strconv.FormatInt(v, 10) + `}`)
	}
	nested := env.Reject(400, reasons[TooNested], fmt.Sprintf(
		"the JSON body nests objects and arrays deeper than %d levels, the most the gateway reads (maxContainerDepth is not set)", MaxNesting))
	nested.DetailKey = "limit"
	p.rejects[TooNested] = nested
	p.details[TooNested] = []byte(`{"parameter":"maxContainerDepth","value":-1,"gatewayLimit":` + strconv.Itoa(MaxNesting) + `}`)
	p.rejects[Invalid] = env.Reject(400, "invalid_json", "the request body is not valid JSON text in UTF-8")
	p.tooLarge = env.Reject(413, "body_too_large",
		fmt.Sprintf("the request body is larger than %d bytes, the limit of %s", p.maxBody, env.Whose()))
	p.encoded = env.Reject(415, "unsupported_content_encoding",
		"the JSON body is sent with a Content-Encoding, which the gateway cannot check: send it without one")
	p.broken = env.Reject(400, chain.ClientBodyIncomplete, chain.ClientBodyIncompleteMessage)
	return nil
}

// Close releases nothing: the policy holds no goroutines or connections.
func (p *protector) Close() error { return nil }

var (
	_ chain.Policy         = (*Protector)(nil)
	_ chain.RequestHandler = (*Protector)(nil)
	_ chain.BodyReader     = (*Protector)(nil)
	_ chain.Policy         = (*FlexProtector)(nil)
	_ chain.RequestHandler = (*FlexProtector)(nil)
	_ chain.BodyReader     = (*FlexProtector)(nil)
)
