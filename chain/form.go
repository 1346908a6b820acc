package chain

import (
	"bytes"
	"fmt"
	"io"
	"slices"

	"github.com/valyala/bytebufferpool"
	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/config"
	"github.com/flexgate/flexgate/internal/ascii"
)

// MaxFormBodySize bounds the form body the gateway reads, on a route with a
// policy that declares credentials, to look in it for them (see
// CheckForm): a larger one is refused with 413. A route's own smaller
// maxRequestBodySize bounds it too.
const MaxFormBodySize = 1 << 20

// formType is the media type of a body that upstreams read as parameters.
const formType = "application/x-www-form-urlencoded"

// IsFormType reports whether ct, a request's Content-Type, is
// application/x-www-form-urlencoded, in any case and with any parameters.
// The media type ends at the first ';', ',', space or tab, where PHP and
// Rack end it. It does not allocate.
func IsFormType(ct []byte) bool {
	if len(ct) < len(formType) {
		return false
	}
	if len(ct) > len(formType) {
		switch ct[len(formType)] {
		case ';', ',', ' ', '\t':
		default:
			return false
		}
	}
	return ascii.EqualLower(ct[:len(formType)], formType)
}

// asciiCharset reports whether ct, a form's Content-Type, names no charset
// or one that writes ASCII as ASCII, as the check reads the body. ASP.NET
// decodes a form by its charset: names in ibm037 or utf-16 would be read
// there and missed here. It does not allocate.
func asciiCharset(ct []byte) bool {
	for len(ct) > 0 {
		i := bytes.IndexByte(ct, ';')
		if i < 0 {
			return true
		}
		ct = ct[i+1:]
		p := bytes.TrimLeft(ct, " \t")
		if len(p) < 8 || !ascii.EqualLower(p[:8], "charset=") {
			continue
		}
		v := p[8:]
		if j := bytes.IndexAny(v, "; \t"); j >= 0 {
			v = v[:j]
		}
		v = bytes.Trim(v, `"`)
		for _, ok := range asciiCharsets {
			if len(v) == len(ok) && ascii.EqualLower(v, ok) {
				return true
			}
		}
		return false
	}
	return true
}

// asciiCharsets are the charsets a form may name: those that write ASCII
// as ASCII.
var asciiCharsets = []string{"utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin1", "windows-1252", "iso-8859-15"}

// formParam is a parameter refused in a form body that the policy does not
// read itself.
type formParam struct {
	name    QueryName
	refused *Rejection
}

// RefuseInForm adds name, a parameter the policy does not read but that an
// upstream reads in a form body as a credential the policy checks (RFC
// 6750 §2.2's access_token beside a bearer token in Authorization), to what
// a form body may not carry; msg says why, in the 400
// duplicate_credentials. Call it at provision time.
func (c *Credentials) RefuseInForm(e *Env, name, msg string) {
	q := NewQueryName(name)
	c.formOnly = append(c.formOnly, formParam{name: q, refused: e.duplicate(msg)})
	c.shortest = min(c.shortest, len(q.folded), len(q.name))
}

// SetChallenge sets the WWW-Authenticate value that a refusal of a form
// body carries (an invalid_request challenge of a bearer token's policy).
// Call it at provision time.
func (c *Credentials) SetChallenge(v []byte) { c.challenge = v }

// inForm reports whether there is anything a form body may not carry.
func (c *Credentials) inForm() bool {
	if len(c.query) > 0 || len(c.formOnly) > 0 {
		return true
	}
	for i := range c.headers {
		if c.headers[i].asQuery != "" {
			return true
		}
	}
	return false
}

// CheckForm returns the rejection of the first credential that the form
// body args, parsed from body, carries, or nil: a header credential under
// a name the query may not carry it in, a query credential in any name an
// upstream reads as it, or a parameter added by RefuseInForm; after a ';'
// inside another parameter too. Upstreams merge a form body's parameters
// with the query's (Rails params, PHP $_REQUEST, Spring's request
// parameters), several letting the body win: a copy there is one nobody
// checked. It does not allocate.
func (c *Credentials) CheckForm(args *fasthttp.Args, body []byte) *Rejection {
	if len(body) == 0 {
		return nil
	}
	return c.checkParams(args, body, true)
}

// formCheck is the request step that looks in a form body for the
// credentials one policy declared. It runs after the steps that read no
// body, so that a client waiting for "100 Continue" is answered before it
// sends its body, and after its own policy's step, which has then passed.
type formCheck struct {
	creds []*Credentials
	// limit bounds the body read: MaxFormBodySize, or the route's
	// maxRequestBodySize when smaller.
	limit            int64
	tooLarge, broken *Rejection
	// charset refuses a form in a charset that does not write ASCII as
	// ASCII (see asciiCharset).
	charset *Rejection
}

// newFormCheck returns the form check of a policy that declared creds, on
// route; nil when none of them can be in a form body.
func newFormCheck(env *Env, creds []*Credentials, cfg *config.Config, route *config.Route) *formCheck {
	f := &formCheck{limit: MaxFormBodySize}
	for _, c := range creds {
		if c.inForm() {
			f.creds = append(f.creds, c)
		}
	}
	if len(f.creds) == 0 {
		return nil
	}
	limit := route.MaxRequestBodySize
	if limit <= 0 && cfg != nil {
		limit = cfg.Limits.MaxRequestBodySize
	}
	if limit > 0 {
		f.limit = min(f.limit, limit)
	}
	f.tooLarge = env.Reject(fasthttp.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf(
		"the request's form body is larger than %d bytes, the most the gateway reads on %s to look in it for the credentials "+
			"%s checks (an upstream may read them from it); send a smaller body", f.limit, env.Whose(), env.Name))
	f.broken = env.Reject(fasthttp.StatusBadRequest, ClientBodyIncomplete, ClientBodyIncompleteMessage)
	f.charset = env.Reject(fasthttp.StatusUnsupportedMediaType, "unsupported_charset",
		"the request's form body is in a charset that does not write parameter names as ASCII (such as ibm037 or utf-16), "+
			"where an upstream that decodes it (ASP.NET) would read names "+env.Name+" cannot check; send it in UTF-8")
	return f
}

// check refuses a request whose form body carries a declared credential.
// A POST without a Content-Type is a form too: Rack (and so Rails params
// and Sinatra) reads its body as one. A request that is not a form pays
// one look at its Content-Type. A
// streamed body is read once, up to the limit, and set back as the
// request's body, which the gateway then forwards as it is; the other
// checks of the request find it so. It does not allocate.
func (f *formCheck) check(ctx *fasthttp.RequestCtx, _ *Exchange) *Rejection {
	req := &ctx.Request
	ct := req.Header.ContentType()
	untyped := len(ct) == 0 && req.Header.IsPost()
	if !untyped && !IsFormType(ct) {
		return nil
	}
	if !asciiCharset(ct) {
		return f.charset
	}
	if cl := req.Header.ContentLength(); cl > 0 && int64(cl) > f.limit {
		return f.tooLarge
	}
	if req.IsBodyStream() {
		if r := f.read(req); r != nil {
			return r
		}
	}
	body := req.Body()
	if int64(len(body)) > f.limit {
		return f.tooLarge
	}
	if len(body) == 0 {
		return nil
	}
	// Parsed once per request, whatever the number of checks: fasthttp
	// keeps the arguments with the request. It parses only a body typed
	// as a form: an untyped one is parsed here, each time.
	args := req.PostArgs()
	if untyped {
		a := fasthttp.AcquireArgs()
		defer fasthttp.ReleaseArgs(a)
		a.ParseBytes(body)
		args = a
	}
	for _, c := range f.creds {
		if r := c.CheckForm(args, body); r != nil {
			if c.challenge != nil {
				ctx.Response.Header.SetBytesV(fasthttp.HeaderWWWAuthenticate, c.challenge)
			}
			return r
		}
	}
	return nil
}

// read reads a streamed body, up to one byte past the limit, and sets it as
// the request's body.
func (f *formCheck) read(req *fasthttp.Request) *Rejection {
	buf := bytebufferpool.Get()
	defer bytebufferpool.Put(buf)
	// Read into the pooled buffer's spare room, not through an
	// io.LimitedReader, which would escape to the heap.
	r := req.BodyStream()
	for int64(len(buf.B)) <= f.limit {
		buf.B = slices.Grow(buf.B, 4<<10)
		n, err := r.Read(buf.B[len(buf.B):min(cap(buf.B), len(buf.B)+int(f.limit+1-int64(len(buf.B))))])
		buf.B = buf.B[:len(buf.B)+n]
		if err == io.EOF {
			break
		}
		if br, ok := err.(BodyRejection); ok {
			// A policy before this one refused what it passed on.
			return br.Rejection()
		}
		if err != nil {
			return f.broken
		}
	}
	if int64(len(buf.B)) > f.limit {
		return f.tooLarge
	}
	req.SetBody(buf.B)
	return nil
}
