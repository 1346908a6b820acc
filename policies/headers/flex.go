package headers

import (
	"bytes"
	"regexp"
	"strings"

	"github.com/valyala/fasthttp"
	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/expr"
)

func init() {
	chain.Register(chain.Registration{Name: "header-injection-flex", New: func() chain.Policy { return new(Injection) }})
	chain.Register(chain.Registration{Name: "header-removal-flex", New: func() chain.Policy { return new(Removal) }})
}

// Injection is header-injection-flex: Flex Gateway's header injection.
// inboundHeaders are set on the request to the upstream, outboundHeaders
// on every response of the route, each as request-headers-set and
// response-headers-set set them (replacing a copy already there). Once
// provisioned it is safe for concurrent use.
type Injection struct {
	InboundHeaders  []HeaderValue `yaml:"inboundHeaders"`
	OutboundHeaders []HeaderValue `yaml:"outboundHeaders"`

	in  RequestSet
	out ResponseSet
}

// HeaderValue is one header of header-injection-flex: a name and a value,
// literal text or an expression.
type HeaderValue struct {
	Key   string           `yaml:"key"`
	Value chain.Expression `yaml:"value"`
}

// Validate checks both lists and compiles every value.
func (in *Injection) Validate(env *chain.Env) error {
	params := env.Spec.Params
	if len(in.InboundHeaders) == 0 && len(in.OutboundHeaders) == 0 {
		return chain.Errorf(params, "inboundHeaders and outboundHeaders are both empty: list the headers to add, e.g. inboundHeaders: [{key: x-source, value: gateway}]")
	}
	for _, l := range []struct {
		param string
		list  []HeaderValue
		set   *Set
		// phase: outbound values are evaluated on the response, as in
		// Flex Gateway.
		phase expr.Phase
	}{{"inboundHeaders", in.InboundHeaders, &in.in.Set, expr.Request}, {"outboundHeaders", in.OutboundHeaders, &in.out.Set, expr.Response}} {
		node := chain.Field(params, l.param)
		var entries []headerEntry
		seen := map[string]int{}
		for i, h := range l.list {
			e := item(node, i)
			key, val := chain.Field(e, "key"), chain.Field(e, "value")
			switch {
			case key == nil || h.Key == "":
				return chain.Errorf(e, "%s entry has no key: write {key: <header name>, value: <value>}", l.param)
			case strings.Contains(h.Key, "#["):
				return chain.Errorf(key, "a header name written as an expression is not supported yet; write the name")
			case val == nil:
				return chain.Errorf(e, "%s entry %s has no value: write {key: %s, value: <value>}", l.param, h.Key, h.Key)
			}
			lower := strings.ToLower(h.Key)
			if first, dup := seen[lower]; dup {
				return chain.Errorf(key, "header %s is listed twice in %s (first at line %d); keep one", h.Key, l.param, first)
			}
			seen[lower] = key.Line
			entries = append(entries, headerEntry{name: h.Key, value: string(h.Value), key: key, val: val})
		}
		if err := l.set.compile(env, entries, l.phase, "header-removal-flex ("+l.param+")"); err != nil {
			return err
		}
	}
	return nil
}

// Provision has nothing to build beyond what Validate decided.
func (in *Injection) Provision(*chain.Env) error { return nil }

// Close releases nothing.
func (in *Injection) Close() error { return nil }

// HandleRequest sets the inbound headers.
func (in *Injection) HandleRequest(ctx *fasthttp.RequestCtx, ex *chain.Exchange) *chain.Rejection {
	return in.in.HandleRequest(ctx, ex)
}

// HandleResponse sets the outbound headers.
func (in *Injection) HandleResponse(ctx *fasthttp.RequestCtx, ex *chain.Exchange) {
	in.out.HandleResponse(ctx, ex)
}

// Removal is header-removal-flex: Flex Gateway's header removal. Each
// entry of inboundHeaders (the request to the upstream) and outboundHeaders
// (every response of the route) is a header name or a regular expression a
// whole name must match, without regard to case. Once provisioned it is
// safe for concurrent use.
type Removal struct {
	InboundHeaders  []string `yaml:"inboundHeaders"`
	OutboundHeaders []string `yaml:"outboundHeaders"`

	in, out remover
}

// remover removes the headers one list names: names are looked up, a
// name followed by .* is a prefix, anything else is matched as a regular
// expression against each header's name.
type remover struct {
	exact    []string
	prefixes [][]byte // lower case, '_' written '-'
	patterns []*regexp.Regexp
}

func (r *remover) any() bool { return len(r.prefixes) > 0 || len(r.patterns) > 0 }

// Validate reads every name and compiles every expression.
func (rm *Removal) Validate(env *chain.Env) error {
	params := env.Spec.Params
	if len(rm.InboundHeaders) == 0 && len(rm.OutboundHeaders) == 0 {
		return chain.Errorf(params, "inboundHeaders and outboundHeaders are both empty: list the header names (or regular expressions) to remove")
	}
	for _, l := range []struct {
		param   string
		list    []string
		r       *remover
		request bool
	}{{"inboundHeaders", rm.InboundHeaders, &rm.in, true}, {"outboundHeaders", rm.OutboundHeaders, &rm.out, false}} {
		node := chain.Field(params, l.param)
		*l.r = remover{}
		for i, h := range l.list {
			if err := l.r.add(h, item(node, i), l.request); err != nil {
				return err
			}
		}
	}
	return nil
}

// plainName matches an entry that is a header name, not a pattern: '.'
// and '*' are allowed in names but mean "any" in an expression.
var plainName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func (r *remover) add(h string, at *yaml.Node, request bool) error {
	switch {
	case h == "":
		return chain.Errorf(at, "an empty entry names no header; remove it")
	case plainName.MatchString(h):
		if isOneOf(h, framing) {
			return chain.Errorf(at, "%s cannot be removed: the gateway sets it for the connection", h)
		}
		if !request {
			r.exact = append(r.exact, h)
			return nil
		}
		spellings, err := chain.HeaderSpellings(h)
		if err != nil {
			return chain.Errorf(at, "%v", err)
		}
		r.exact = append(r.exact, spellings...)
		return nil
	}
	if p, ok := strings.CutSuffix(h, ".*"); ok && plainName.MatchString(p) {
		r.prefixes = append(r.prefixes, []byte(strings.ReplaceAll(strings.ToLower(p), "_", "-")))
		return nil
	}
	re, err := regexp.Compile("(?i)^(?:" + h + ")$")
	if err != nil {
		return chain.Errorf(at, "%q is neither a header name nor a regular expression flexgate can run: %v", h,
			strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
	r.patterns = append(r.patterns, re)
	return nil
}

// matches reports whether a header name, not a framing one, is one the
// prefixes or expressions select.
func (r *remover) matches(name []byte) bool {
	if isFraming(name) {
		return false
	}
	for _, p := range r.prefixes {
		if hasPrefixFold(name, p) {
			return true
		}
	}
	for _, re := range r.patterns {
		if re.Match(name) {
			return true
		}
	}
	return false
}

// deleter is what removal needs of a request's or response's headers.
type deleter interface {
	Del(key string)
	DelBytes(key []byte)
}

// removeExact deletes the headers named exactly.
func (r *remover) removeExact(h deleter) {
	for _, name := range r.exact {
		h.Del(name)
	}
}

// gather appends the name k, NUL-terminated, to buf when it is selected.
func (r *remover) gather(buf, k []byte) []byte {
	if r.matches(k) {
		buf = append(buf, k...)
		buf = append(buf, 0)
	}
	return buf
}

// removeGathered deletes the NUL-separated names of buf from h.
func removeGathered(h deleter, buf []byte) {
	for rest := buf; len(rest) > 0; {
		i := bytes.IndexByte(rest, 0)
		h.DelBytes(rest[:i])
		rest = rest[i+1:]
	}
}

// Provision has nothing to build beyond what Validate decided.
func (rm *Removal) Provision(*chain.Env) error { return nil }

// Close releases nothing.
func (rm *Removal) Close() error { return nil }

// HandleRequest removes the inbound headers. Deleting while iterating is
// undefined in fasthttp: the names a pattern selects are gathered first,
// NUL-separated, in the policy's scratch.
func (rm *Removal) HandleRequest(ctx *fasthttp.RequestCtx, ex *chain.Exchange) *chain.Rejection {
	h := &ctx.Request.Header
	rm.in.removeExact(h)
	if rm.in.any() {
		slot := ex.Slot()
		buf := slot.Buf[:0]
		for k := range h.All() {
			buf = rm.in.gather(buf, k)
		}
		removeGathered(h, buf)
		slot.Buf = buf[:0]
	}
	return nil
}

// HandleResponse removes the outbound headers, as HandleRequest does.
func (rm *Removal) HandleResponse(ctx *fasthttp.RequestCtx, ex *chain.Exchange) {
	h := &ctx.Response.Header
	rm.out.removeExact(h)
	if rm.out.any() {
		slot := ex.Slot()
		buf := slot.Buf[:0]
		for k := range h.All() {
			buf = rm.out.gather(buf, k)
		}
		removeGathered(h, buf)
		slot.Buf = buf[:0]
	}
}

var (
	_ chain.Policy          = (*Injection)(nil)
	_ chain.RequestHandler  = (*Injection)(nil)
	_ chain.ResponseHandler = (*Injection)(nil)
	_ chain.Policy          = (*Removal)(nil)
	_ chain.RequestHandler  = (*Removal)(nil)
	_ chain.ResponseHandler = (*Removal)(nil)
)
