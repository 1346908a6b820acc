package chain

import (
	"fmt"
	"slices"
	"strings"

	"github.com/valyala/fasthttp"
)

// MaxHeaderSeparators bounds the '-' and '_' of a header name that
// HeaderSpellings expands: each doubles the spellings a request is searched
// for.
const MaxHeaderSeparators = 6

// HeaderSpellings returns every spelling of a header name with its '-' and
// '_' exchanged, as fasthttp stores names (the name itself first). CGI-style
// upstreams (PHP, WSGI, nginx with underscores_in_headers) turn both into
// '_', so X-User and X_User reach them as one header: a policy that checks,
// removes or sets a header must treat every spelling as the header. A name
// with more than MaxHeaderSeparators of them is an error. Safe for
// concurrent use.
func HeaderSpellings(name string) ([]string, error) {
	var seps []int
	for i := 0; i < len(name); i++ {
		if name[i] == '-' || name[i] == '_' {
			seps = append(seps, i)
		}
	}
	if len(seps) > MaxHeaderSeparators {
		return nil, fmt.Errorf("header name %q has more than %d '-' and '_'; the gateway treats '-' and '_' "+
			"alike (as CGI-style upstreams do) and looks for every spelling, so it bounds them: use a shorter name", name, MaxHeaderSeparators)
	}
	out := []string{string(fasthttp.AppendNormalizedHeaderKey(nil, name))}
	b := []byte(name)
	for mask := 0; mask < 1<<len(seps); mask++ {
		for j, i := range seps {
			b[i] = "-_"[mask>>j&1]
		}
		s := string(fasthttp.AppendNormalizedHeaderKey(nil, string(b)))
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// Credentials are the request headers and query parameters a policy reads
// credentials (or an identity) from, declared at provision. A request that
// carries one of them more than once is refused: the policy reads one
// copy, the upstream may read another that nobody checked. Headers count in
// any of their spellings (see HeaderSpellings); query parameters by their
// decoded name, in any name an upstream reads as theirs (see
// QueryName). A provisioned Credentials is safe for concurrent use.
type Credentials struct {
	headers []credentialHeader
	query   []credentialParam
}

type credentialHeader struct {
	spellings []string
	dup       *Rejection
}

type credentialParam struct {
	name QueryName
	dup  *Rejection
}

// Credentials declares the request headers and query parameters the policy
// reads credentials from and builds, for each, its 400
// duplicate_credentials rejection. Call it at provision time.
func (e *Env) Credentials(headers, query []string) (*Credentials, error) {
	c := &Credentials{}
	for _, name := range headers {
		sp, err := HeaderSpellings(name)
		if err != nil {
			return nil, err
		}
		msg := "the request carries the " + name + " header more than once"
		if len(sp) > 1 {
			msg += " (" + otherSpelling(name) + " counts as the same header: many upstreams read '-' and '_' alike)"
		}
		c.headers = append(c.headers, credentialHeader{spellings: sp, dup: e.duplicate(msg)})
	}
	for _, name := range query {
		c.query = append(c.query, credentialParam{name: NewQueryName(name),
			dup: e.duplicate("the request carries the " + name + " query parameter more than once")})
	}
	return c, nil
}

func (e *Env) duplicate(msg string) *Rejection {
	return e.Reject(fasthttp.StatusBadRequest, "duplicate_credentials", msg+"; send it once")
}

// otherSpelling is name with its '_' written '-', or when it has none, its
// '-' written '_'.
func otherSpelling(name string) string {
	if s := strings.ReplaceAll(name, "_", "-"); s != name {
		return s
	}
	return strings.ReplaceAll(name, "-", "_")
}

// Check returns the rejection of the first declared header or query
// parameter that the request carries more than once, or nil. It does not
// allocate.
func (c *Credentials) Check(ctx *fasthttp.RequestCtx) *Rejection {
	h := &ctx.Request.Header
	for i := range c.headers {
		ch := &c.headers[i]
		n := 0
		for _, s := range ch.spellings {
			// PeekAll fills a buffer the header reuses: no allocation.
			n += len(h.PeekAll(s))
		}
		if n > 1 {
			return ch.dup
		}
	}
	if len(c.query) == 0 {
		return nil
	}
	args := ctx.QueryArgs()
	for i := range c.query {
		cp := &c.query[i]
		n := 0
		for k := range args.All() {
			if cp.name.Matches(k) {
				n++
			}
		}
		if n > 1 {
			return cp.dup
		}
	}
	return nil
}

// QueryName is a query parameter's name with every name an upstream may
// read as it: the name itself; any name PHP reads as it (PHP, and Laravel,
// Symfony or WordPress on it, drops a name's leading spaces, ends it at a
// NUL, reads "param[...]" as an array named param and turns ' ', '.' and
// '[' into '_': "access.token", "access token" and "access[token" are all
// access_token to it, and the last one sent wins); and any of these in
// other ASCII case, as ASP.NET and ASP.NET Core read query names
// ("ACCESS_TOKEN" is access_token to them). A policy that looks for one
// copy of a parameter must count these too. Build it at load time with
// NewQueryName; it is immutable and safe for concurrent use.
type QueryName struct {
	name string
	// folded is the name as PHP reads it, lower-cased: what Matches
	// compares a request's name with once it has folded it the same way.
	folded string
}

// NewQueryName returns param as a QueryName.
func NewQueryName(param string) QueryName {
	b := []byte(phpName(param))
	for i, c := range b {
		b[i] = foldByte(c)
	}
	return QueryName{name: param, folded: string(b)}
}

// String returns the parameter's name as configured.
func (q *QueryName) String() string { return q.name }

// Matches reports whether an upstream may read the query parameter named
// name (decoded, as fasthttp's Args gives it) as q. It does not allocate.
func (q *QueryName) Matches(name []byte) bool {
	if string(name) == q.name {
		return true
	}
	a := phpName(name)
	if len(a) == 0 || len(a) != len(q.folded) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if foldByte(a[i]) != q.folded[i] {
			return false
		}
	}
	return true
}

// HasQueryParam reports whether args has a parameter an upstream may read
// as q (see QueryName). It does not allocate.
func HasQueryParam(args *fasthttp.Args, q *QueryName) bool {
	for k := range args.All() {
		if q.Matches(k) {
			return true
		}
	}
	return false
}

// phpName is the part of a query parameter's name that PHP names a
// variable with, before it replaces characters (phpByte).
func phpName[T ~string | ~[]byte](s T) T {
	for len(s) > 0 && s[0] == ' ' {
		s = s[1:]
	}
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			s = s[:i]
			break
		}
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '[' {
			continue
		}
		// With a ']' after it, "name[...]" is an array named name;
		// without, the '[' is a character of the name.
		for j := i + 1; j < len(s); j++ {
			if s[j] == ']' {
				return s[:i]
			}
		}
		break
	}
	return s
}

// foldByte is c as PHP replaces it in a name, in ASCII lower case.
func foldByte(c byte) byte {
	switch {
	case c == ' ' || c == '.' || c == '[':
		return '_'
	case 'A' <= c && c <= 'Z':
		return c + 'a' - 'A'
	}
	return c
}
