package specvalidation

import (
	"github.com/flexgate/flexgate/chain"
)

func init() {
	chain.Register(chain.Registration{Name: "spec-validation-flex", New: func() chain.Policy { return new(FlexValidator) }})
}

// FlexValidator is spec-validation-flex: Flex Gateway's schema validation,
// with its parameters. Once provisioned it is safe for concurrent use.
type FlexValidator struct {
	// Source is where the spec comes from: inline (the spec parameter),
	// the only source in local mode. Left out, spec is read inline.
	Source string `yaml:"source"`
	// Spec is the OpenAPI 3.0 or 3.1 document, JSON or YAML.
	Spec string `yaml:"spec"`
	// APIBasePath is the path the spec's paths are under. Default "/".
	APIBasePath string `yaml:"apiBasePath"`
	// BlockOperation refuses requests that do not match; false logs them.
	// Default true.
	BlockOperation *bool `yaml:"blockOperation"`
	// StrictParamsValidation refuses query parameters the operation does
	// not describe. Default false.
	StrictParamsValidation bool `yaml:"strictParamsValidation"`

	Validator `yaml:"-"`
}

// Validate maps Flex's parameters onto the Validator's.
func (f *FlexValidator) Validate(env *chain.Env) error {
	params := env.Spec.Params
	switch f.Source {
	case "", "inline":
	case "context":
		return chain.Errorf(chain.Field(params, "source"), "source: context reads the spec from Anypoint Exchange, which local mode has not; "+
			"write source: inline and the spec under spec: |")
	default:
		return chain.Errorf(chain.Field(params, "source"), "source %q is unknown; write source: inline", f.Source)
	}
	f.Validator.Spec = f.Spec
	f.BasePath, f.basePathParam = f.APIBasePath, "apiBasePath"
	f.Block = f.BlockOperation
	f.StrictParams = f.StrictParamsValidation
	return f.Validator.Validate(env)
}

var _ chain.Policy = (*FlexValidator)(nil)
