// Package specvalidation is the spec-validation policy (and Flex Gateway's
// spec-validation-flex): each request is validated against the operation
// of an OpenAPI 3.0 or 3.1 spec it matches — its path, query, header and
// cookie parameters and its JSON body — and a request that matches no
// operation is refused.
//
// The spec is read with kin-openapi when the config loads; its path
// templates are compiled into a matcher and its schemas into the
// request-validation package's validators (its allocation-free fast path
// where the schema allows, the JSON Schema library elsewhere).
package specvalidation

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/config"
	"github.com/flexgate/flexgate/internal/metriclabel"
	"github.com/flexgate/flexgate/internal/userfile"
	"github.com/flexgate/flexgate/policies/validation"
)

func init() {
	chain.Register(chain.Registration{Name: "spec-validation", New: func() chain.Policy { return new(Validator) }, KeyFrom: specFilesKey})
}

// Validator is the spec-validation policy. Its fields are the policy's
// parameters; a provisioned Validator is safe for concurrent use.
type Validator struct {
	// Spec is the OpenAPI 3.0 or 3.1 document, JSON or YAML, written
	// inline (usually as a block: spec: |). Spec or SpecFile is required.
	Spec string `yaml:"spec"`
	// SpecFile names a file holding the spec, relative to the config
	// file's directory. It is read when the config loads (and reloads).
	SpecFile string `yaml:"specFile"`
	// BasePath is the path the spec's paths are under ("/api/v1"); a
	// request outside it matches no operation. Default "/".
	BasePath string `yaml:"basePath"`
	// StrictParams refuses query parameters the operation does not
	// describe. Default false.
	StrictParams bool `yaml:"strictParams"`
	// Block refuses requests that do not match (400); false logs them
	// and lets them through. Default true.
	Block *bool `yaml:"block"`
	// MaxBodySize is the largest body read and validated, in bytes; a
	// larger one is answered 413. Default 1 MiB.
	MaxBodySize int64 `yaml:"maxBodySize" min:"0" max:"1073741824" note:"bytes; 0: the default, 1 MiB"`
	// MaxDepth is the deepest nesting a JSON body may have. Default 64.
	MaxDepth int `yaml:"maxDepth" min:"0" max:"10000" note:"0: the default, 64"`

	spec   *spec
	route  string
	logger *slog.Logger
	// basePathParam names the base path's parameter: basePath, or Flex's
	// apiBasePath.
	basePathParam string

	unknown, failed, tooLarge, tooDeep, invalidJSON, unsupported, missingBody, unexpectedBody *chain.Rejection
	passed, refused, logged                                                                   *metrics.Counter
	// lastLog and quiet bound the log of a policy that only logs: a line a
	// second, saying how many were left out.
	lastLog atomic.Int64
	quiet   atomic.Int64
}

// specFilesKey digests the spec files the route's spec-validation policies
// read, so that a reload after the file changed builds them anew.
func specFilesKey(_ *config.Config, route *config.Route) string {
	h := sha256.New()
	for _, p := range route.Policies {
		if p.Name != "spec-validation" {
			continue
		}
		if f := chain.Field(p.Params, "specFile"); f != nil {
			// The name as the policy reads it: $env.NAME expanded.
			c := *f
			if config.ExpandEnv(&c) != nil {
				continue
			}
			b, err := userfile.Read(config.ResolveFile(p.Pos.File, strings.TrimSpace(c.Value)))
			fmt.Fprintf(h, "%q %v %d:", c.Value, err == nil, len(b))
			h.Write(b)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Validate checks the parameters and loads the spec, so that a spec that
// does not load fails `flexgate validate` at its line.
func (v *Validator) Validate(env *chain.Env) error {
	params := env.Spec.Params
	src := &source{text: []byte(v.Spec)}
	switch {
	case v.Spec != "" && v.SpecFile != "":
		return chain.Errorf(chain.Field(params, "specFile"), "spec and specFile are both given; keep one")
	case v.SpecFile != "":
		src.key, src.val = keyAndValue(params, "specFile")
		src.file = config.ResolveFile(env.Spec.Pos.File, v.SpecFile)
		b, err := userfile.Read(src.file)
		if err != nil {
			return chain.Errorf(src.val, "specFile %s cannot be read: %v", v.SpecFile, errors.Unwrap(err))
		}
		src.text = b
	case strings.TrimSpace(v.Spec) == "":
		return chain.Errorf(orParams(chain.Field(params, "spec"), env), "spec is required: write the OpenAPI document under spec: | (or name its file in specFile)")
	default:
		src.key, src.val = keyAndValue(params, "spec")
	}
	if v.basePathParam == "" {
		v.basePathParam = "basePath"
	}
	if err := checkBasePath(v.BasePath); err != nil {
		return chain.Errorf(chain.Field(params, v.basePathParam), "%s %v", v.basePathParam, err)
	}
	sp, err := loadSpec(src)
	if err != nil {
		return err
	}
	v.spec = sp
	return nil
}

func checkBasePath(p string) error {
	switch {
	case p == "":
		return nil
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("%q must start with /", p)
	case strings.ContainsAny(p, "?#{}*") || strings.Contains(p, "//"):
		return fmt.Errorf("%q must be a plain path (no query, template or wildcard)", p)
	}
	return nil
}

func keyAndValue(params *yaml.Node, name string) (key, val *yaml.Node) {
	for i := 0; params != nil && i+1 < len(params.Content); i += 2 {
		if params.Content[i].Value == name {
			return params.Content[i], params.Content[i+1]
		}
	}
	return nil, nil
}

func orParams(node *yaml.Node, env *chain.Env) *yaml.Node {
	if node != nil {
		return node
	}
	return env.Spec.Params
}

// Provision builds the rejections and counters.
func (v *Validator) Provision(env *chain.Env) error {
	if v.spec == nil {
		if err := v.Validate(env); err != nil {
			return err
		}
	}
	if v.MaxBodySize == 0 {
		v.MaxBodySize = validation.DefaultMaxBodySize
	}
	if v.MaxDepth == 0 {
		v.MaxDepth = validation.DefaultMaxDepth
	}
	v.BasePath = strings.TrimSuffix(v.BasePath, "/")
	v.route = env.Owner()
	v.logger = env.Logger
	r := env.Whose()
	v.unknown = env.Reject(400, "unknown_operation",
		fmt.Sprintf("no operation of the OpenAPI spec of %s matches the request's method and path", r))
	v.failed = env.Reject(400, "validation_failed", fmt.Sprintf("request does not match the OpenAPI spec of %s", r))
	v.failed.DetailKey = "violations"
	v.tooLarge = env.Reject(413, "body_too_large",
		fmt.Sprintf("request body is larger than %d bytes, the limit of %s", v.MaxBodySize, r))
	v.tooDeep = env.Reject(400, "json_too_deep",
		fmt.Sprintf("request body nests arrays and objects deeper than %d levels, the limit of %s", v.MaxDepth, r))
	v.invalidJSON = env.Reject(400, "invalid_json", "request body is not valid JSON (UTF-8, every object member named once)")
	v.unsupported = env.Reject(415, "unsupported_media_type",
		"the request body's Content-Type is not one the operation takes")
	v.missingBody = env.Reject(400, "missing_body", "the operation requires a request body")
	v.unexpectedBody = env.Reject(400, "unexpected_body", "the operation takes no request body, and the request has one")
	label := `{route=` + metriclabel.Quote(v.route)
	v.passed = env.Metrics.GetOrCreateCounter(`flexgate_spec_validation_total` + label + `,result="valid"}`)
	v.refused = env.Metrics.GetOrCreateCounter(`flexgate_spec_validation_total` + label + `,result="refused"}`)
	v.logged = env.Metrics.GetOrCreateCounter(`flexgate_spec_validation_total` + label + `,result="logged"}`)
	env.Logger.Info("OpenAPI spec loaded", "operations", v.spec.ops, "operationsOffFastPath", v.spec.slow)
	return nil
}

// Close releases nothing.
func (v *Validator) Close() error { return nil }

func (v *Validator) block() bool { return v.Block == nil || *v.Block }

// logFailure logs a request let through by a policy that only logs, at
// most once a second.
func (v *Validator) logFailure(method, path []byte, rej *chain.Rejection, details []byte) {
	now := time.Now().Unix()
	last := v.lastLog.Load()
	if now == last || !v.lastLog.CompareAndSwap(last, now) {
		v.quiet.Add(1)
		return
	}
	args := []any{"route", v.route, "method", string(method), "path", string(path), "reason", rej.Reason}
	if len(details) > 0 && rej.DetailKey != "" {
		args = append(args, "violations", string(details))
	}
	if n := v.quiet.Swap(0); n > 0 {
		args = append(args, "notLogged", n)
	}
	v.logger.Warn("request does not match the OpenAPI spec; let through (block: false)", args...)
}

var (
	_ chain.Policy         = (*Validator)(nil)
	_ chain.RequestHandler = (*Validator)(nil)
	_ chain.BodyReader     = (*Validator)(nil)
)
