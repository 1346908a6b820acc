package chain

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/internal/ascii"
	"github.com/flexgate/flexgate/internal/match"
	"github.com/flexgate/flexgate/internal/namefold"
)

// MaxHeaderSeparators bounds the '-' and '_' of a header name that
// HeaderSpellings expands: each doubles the spellings a request is searched
// for.
const MaxHeaderSeparators = match.MaxHeaderSeparators

// HeaderSpellings returns every spelling of a header name with its '-' and
// '_' exchanged, as fasthttp stores names (the name itself first): see
// match.HeaderSpellings. Safe for concurrent use.
func HeaderSpellings(name string) ([]string, error) { return match.HeaderSpellings(name) }

// HeaderName is a request header's name with every spelling an upstream
// reads as it (see HeaderSpellings). Build it at load time with
// NewHeaderName; it is immutable and safe for concurrent use.
type HeaderName struct {
	name      string
	spellings []string
}

// NewHeaderName returns name with its spellings; a name with more than
// MaxHeaderSeparators '-' and '_' is an error.
func NewHeaderName(name string) (HeaderName, error) {
	sp, err := HeaderSpellings(name)
	if err != nil {
		return HeaderName{}, err
	}
	return HeaderName{name: name, spellings: sp}, nil
}

// String returns the header's name as configured.
func (n *HeaderName) String() string { return n.name }

// Spellings returns every spelling of the header, as fasthttp stores
// names, the name as written first (see HeaderSpellings).
func (n *HeaderName) Spellings() []string { return slices.Clone(n.spellings) }

// Peek returns the value of the header in the first of its spellings that
// the request carries with a value, the name as written first; nil when
// none. After Credentials.Check has passed the request carries at most one,
// so Peek reads the copy the check counted. It does not allocate.
func (n *HeaderName) Peek(h *fasthttp.RequestHeader) []byte {
	for _, s := range n.spellings {
		if v := h.Peek(s); len(v) > 0 {
			return v
		}
	}
	return nil
}

// Count returns how many copies of the header the request carries, in all
// its spellings. It does not allocate.
func (n *HeaderName) Count(h *fasthttp.RequestHeader) int {
	c := 0
	for _, s := range n.spellings {
		// PeekAll fills a buffer the header reuses: no allocation.
		c += len(h.PeekAll(s))
	}
	return c
}

// Unambiguous reports whether the request carries the header at most once,
// and then in the name as written (in any case): what a reader of that
// name alone sees (an expression compiled without CompileCredential, a
// Vary) is then what every upstream reads. A copy in another spelling
// (X_Lang for X-Lang), which CGI-style upstreams read and others do not,
// or a second copy, of which upstreams read the first, the last or all,
// make it ambiguous. It does not allocate.
func (n *HeaderName) Unambiguous(h *fasthttp.RequestHeader) bool {
	return n.Other(h) == "" && len(h.PeekAll(n.spellings[0])) <= 1
}

// Other returns the first spelling of the header other than its name (in
// any case) that the request carries, as fasthttp stores it ("X_request_id"
// for X-Request-Id); "" when it carries none. It does not allocate.
func (n *HeaderName) Other(h *fasthttp.RequestHeader) string {
	for _, s := range n.spellings[1:] {
		if len(h.PeekAll(s)) > 0 {
			return s
		}
	}
	return ""
}

// Del removes the header in every spelling. It does not allocate.
func (n *HeaderName) Del(h *fasthttp.RequestHeader) {
	for _, s := range n.spellings {
		h.Del(s)
	}
}

// Credentials are the request headers and query parameters a policy reads
// credentials (or an identity) from, declared at provision. A request that
// carries one of them more than once is refused: the policy reads one
// copy, the upstream may read another that nobody checked. Headers count in
// any of their spellings (see HeaderName); query parameters by their
// decoded name, in any name an upstream reads as theirs (see QueryName),
// and one sent inside another parameter after a ';', which upstreams that
// split a query at ';' read and the policy does not, is refused (see
// QueryParams).
// A request that carries one of them in the other place is refused too: a
// header's name as a query parameter, a query parameter's name as a header.
// Many upstreams read a credential from either (a Mule app's
// attributes.queryParams.client_id beside its client_id header, an API key
// taken from the header or the query), and would read the copy nobody
// checked. A query parameter named like a header that nearly every request
// carries for its own purpose (Host, Accept, …; see everyRequest) is not
// looked for among the headers, nor the query parameter named like a
// standard header that carries no credential (?origin=, ?date=; see
// ownPurpose). The chain looks for them in a form body too (see CheckForm).
// A provisioned Credentials is safe for concurrent use.
type Credentials struct {
	headers []credentialHeader
	query   []credentialParam
	// shortest is the length of the shortest name a parameter must have
	// to be read as one of them: PHP's reading only shortens a name.
	shortest int
	// formOnly are parameters the policy does not read that an upstream
	// reads, in a form body, as a credential the policy checks (see
	// RefuseInForm).
	formOnly []formParam
	// challenge is the WWW-Authenticate value of a refusal of a form body
	// (see SetChallenge).
	challenge []byte
}

type credentialHeader struct {
	name HeaderName
	dup  *Rejection
	// asQuery is the header's name as a query parameter: folded as
	// QueryName folds it, with '-' read as '_' (its spellings differ
	// there alone), so that one comparison covers every spelling; ""
	// for a header of its own purpose (see ownPurpose). inQuery refuses
	// a request that carries one.
	asQuery string
	inQuery *Rejection
	// inForm refuses a request whose form body carries a parameter of
	// the asQuery name (see CheckForm).
	inForm *Rejection
}

type credentialParam struct {
	name QueryName
	dup  *Rejection
	// hidden refuses a request that carries the parameter inside
	// another after a ';' (see QueryParams): the policy does not read
	// that copy, an upstream that splits at ';' does.
	hidden *Rejection
	// asHeader is the parameter's name as a header (nil: one that
	// nearly every request carries); inHeader refuses a request that
	// carries it.
	asHeader *HeaderName
	inHeader *Rejection
	// inForm refuses a request whose form body carries the parameter.
	inForm *Rejection
}

// everyRequest are headers that nearly every request carries for their own
// purpose: a query parameter of their name is not refused beside them, or
// every request would be.
var everyRequest = []string{"Host", "User-Agent", "Accept", "Accept-Encoding", "Accept-Language",
	"Connection", "Content-Type", "Content-Length"}

// ownPurpose are the standard request headers that carry no credential, and
// whose names APIs use as query parameters of their own (?origin=JFK,
// ?date=, ?range=, ?from=): a policy reading one of these headers (a
// condition on Origin) does not refuse the query parameter of its name.
// Authorization and the X- headers stay checked.
var ownPurpose = append([]string{"Origin", "Referer", "From", "Date", "Range", "Via", "Forwarded", "Cookie",
	"Expect", "Te", "Upgrade", "Priority", "Cache-Control", "Pragma", "If-Match", "If-None-Match", "If-Modified-Since",
	"If-Unmodified-Since", "If-Range", "Max-Forwards", "Dnt", "Accept-Charset", "Warning"}, everyRequest...)

// Credentials declares the request headers and query parameters the policy
// reads credentials from and builds, for each, its 400
// duplicate_credentials rejections; the chain adds a step that looks for
// them in a form body (see CheckForm). Call it at provision time. A header
// name with more than MaxHeaderSeparators '-' and '_', and a query
// parameter name that ParseQueryName refuses, are errors.
func (e *Env) Credentials(headers, query []string) (*Credentials, error) {
	c := &Credentials{}
	for _, name := range headers {
		hn, err := NewHeaderName(name)
		if err != nil {
			return nil, err
		}
		msg := "the request carries the " + name + " header more than once"
		if len(hn.spellings) > 1 {
			msg += " (" + OtherSpelling(name) + " counts as the same header: many upstreams read '-' and '_' alike)"
		}
		ch := credentialHeader{name: hn, dup: e.duplicate(msg + "; send it once"),
			inQuery: e.duplicate("the request carries " + name + " as a query parameter, and " + e.Name + " reads it from the " + name +
				" header: an upstream that reads the query would get a value nobody checked; send it only in the header")}
		if !slices.ContainsFunc(ownPurpose, func(h string) bool { return slices.Contains(hn.spellings, h) }) {
			ch.asQuery = strings.ReplaceAll(NewQueryName(name).folded, "-", "_")
			ch.inForm = e.duplicate("the request carries " + name + " in the form body, and " + e.Name + " reads it from the " + name +
				" header: an upstream that reads form parameters (Rails params, PHP $_POST or $_REQUEST, Spring's request parameters) " +
				"would get a value nobody checked; send it only in the header")
		}
		c.headers = append(c.headers, ch)
	}
	for _, name := range query {
		qn, err := ParseQueryName(name)
		if err != nil {
			return nil, err
		}
		cp := credentialParam{name: qn, dup: e.duplicate("the request carries the " + name + " query parameter more than once; send it once"),
			hidden: e.duplicate("the request carries the " + name + " query parameter after a ';' inside another parameter, where " + e.Name +
				" does not read it: " + semicolonHint),
			inForm: e.duplicate("the request carries " + name + " in the form body, and " + e.Name + " reads it from the query: " +
				"upstreams that merge form and query parameters (Rails params, PHP $_REQUEST, Spring's request parameters), " +
				"several letting the body win, would read a value nobody checked; send it only in the query")}
		hn, err := NewHeaderName(name)
		if err != nil {
			return nil, fmt.Errorf("query parameter %q is read as a credential, so a header of that name is refused beside it "+
				"(an upstream may read either), and %w", name, err)
		}
		if !slices.ContainsFunc(everyRequest, func(h string) bool { return slices.Contains(hn.spellings, h) }) {
			cp.asHeader = &hn
			msg := "the request carries a header named " + name
			if len(hn.spellings) > 1 {
				msg += " (or " + OtherSpelling(name) + ")"
			}
			cp.inHeader = e.duplicate(msg + ", and " + e.Name + " reads " + name + " from the query: an upstream that reads the header " +
				"would get a value nobody checked; send it only as a query parameter")
		}
		c.query = append(c.query, cp)
	}
	e.credentials = append(e.credentials, c)
	c.shortest = math.MaxInt
	for _, ch := range c.headers {
		if ch.asQuery != "" {
			c.shortest = min(c.shortest, len(ch.asQuery))
		}
	}
	for _, cp := range c.query {
		c.shortest = min(c.shortest, len(cp.name.folded), len(cp.name.name))
	}
	return c, nil
}

func (e *Env) duplicate(msg string) *Rejection {
	return e.Reject(fasthttp.StatusBadRequest, "duplicate_credentials", msg)
}

// OtherSpelling is name with its '_' written '-', or when it has none, its
// '-' written '_': the spelling a message names beside name.
func OtherSpelling(name string) string {
	if s := strings.ReplaceAll(name, "_", "-"); s != name {
		return s
	}
	return strings.ReplaceAll(name, "-", "_")
}

// Check returns the rejection of the first declared header or query
// parameter that the request carries more than once, or in the other
// place, or inside another query parameter after a ';' (see QueryParams),
// or nil. It does not allocate.
func (c *Credentials) Check(ctx *fasthttp.RequestCtx) *Rejection {
	if len(c.headers) == 0 && len(c.query) == 0 {
		return nil
	}
	h := &ctx.Request.Header
	for i := range c.headers {
		if ch := &c.headers[i]; ch.name.Count(h) > 1 {
			return ch.dup
		}
	}
	for i := range c.query {
		if cp := &c.query[i]; cp.asHeader != nil && cp.asHeader.Count(h) > 0 {
			return cp.inHeader
		}
	}
	qs := ctx.URI().QueryString()
	if len(qs) == 0 {
		return nil
	}
	return c.checkParams(ctx.QueryArgs(), qs, false)
}

// checkParams is Check's pass over the parameters of args, parsed from raw:
// the query's, or with form a form body's, where any credential is
// refused.
func (c *Credentials) checkParams(args *fasthttp.Args, raw []byte, form bool) *Rejection {
	// One pass over the parameters, each name read as PHP reads it once:
	// a request may carry thousands of them.
	var seen [maxCountedParams]uint8
	for k, hidden := range params(args, raw) {
		if len(k) < c.shortest {
			continue
		}
		a, index := phpSplit(k)
		if ch := c.headerNamed(a); ch != nil {
			if form {
				return ch.inForm
			}
			return ch.inQuery
		}
		if form {
			for i := range c.formOnly {
				if fp := &c.formOnly[i]; string(k) == fp.name.name || fp.name.matchesSplit(a, index) || fp.name.matchesRack(k) {
					return fp.refused
				}
			}
		}
		for i := range c.query {
			cp := &c.query[i]
			if string(k) != cp.name.name && !cp.name.matchesSplit(a, index) && !cp.name.matchesRack(k) {
				continue
			}
			if form {
				return cp.inForm
			}
			if hidden {
				return cp.hidden
			}
			if i >= len(seen) {
				// Beyond the counted ones (no policy declares so many),
				// a second copy is found by a pass of its own.
				if countParam(args, &cp.name) > 1 {
					return cp.dup
				}
				continue
			}
			if seen[i]++; seen[i] > 1 {
				return cp.dup
			}
		}
	}
	return nil
}

// headerNamed returns the declared header whose name a parameter's name
// is, as phpSplit gives its base (a), or nil. Apart from checkParams, so
// that the loop over the parameters stays small enough to be inlined in
// their iterator.
func (c *Credentials) headerNamed(a []byte) *credentialHeader {
	for i := range c.headers {
		// Told apart by length, or by mayFoldLonger, inlined: most names
		// without a call.
		if ch := &c.headers[i]; len(a) == len(ch.asQuery) && foldedEqual(a, ch.asQuery, true) ||
			mayFoldLonger(a, ch.asQuery) && foldedLonger(a, ch.asQuery, true) {
			return ch
		}
	}
	return nil
}

// maxCountedParams is how many query credentials Check counts in its one
// pass over the parameters.
const maxCountedParams = 16

func countParam(args *fasthttp.Args, q *QueryName) int {
	n := 0
	for k := range args.All() {
		if q.Matches(k) {
			n++
		}
	}
	return n
}

// foldedEqual reports whether a, a parameter's name as phpSplit gives its
// base, folds (foldByte; with dash, '-' read as '_' too) byte for byte to
// folded. folded holds none of the letters namefold reads (they were
// folded), and a name that holds one folds shorter than it is: such a
// name is foldedLonger's to compare. Kept apart, foldedEqual calls
// nothing, and tells most names by their length alone. It does not
// allocate.
func foldedEqual(a []byte, folded string, dash bool) bool {
	if len(a) == 0 || len(a) != len(folded) {
		return false
	}
	t := &foldTables[0]
	if dash {
		t = &foldTables[1]
	}
	for i := 0; i < len(a); i++ {
		if t[a[i]] != folded[i] {
			return false
		}
	}
	return true
}

// mayFoldLonger reports whether a, a name as phpSplit gives its base, is
// longer than folded and, by its first and last bytes, may fold to it
// (foldedLonger): a first byte that begins no letter namefold reads, and
// an ASCII last byte, fold to folded's, with dash or without (then they
// fold with dash to one byte).
// Inlined, it tells most names apart without a call, and without a look at
// their other bytes.
func mayFoldLonger(a []byte, folded string) bool {
	if len(a) <= len(folded) || len(folded) == 0 {
		return false
	}
	f, l := a[0], a[len(a)-1]
	return (namefold.Lead(f) || foldTables[1][f] == foldTables[1][folded[0]]) &&
		(l >= utf8.RuneSelf || foldTables[1][l] == foldTables[1][folded[len(folded)-1]])
}

// foldedLonger reports whether a, longer than folded, folds to it (foldAt;
// with dash, '-' read as '_' too) with letters namefold reads. It does not
// allocate.
func foldedLonger(a []byte, folded string, dash bool) bool {
	j := 0
	for i := 0; i < len(a); j++ {
		c, n := foldAt(a, i)
		if dash && c == '-' {
			c = '_'
		}
		if j == len(folded) || c != folded[j] {
			return false
		}
		i += n
	}
	return j == len(folded)
}

// foldDash is foldByte(c), with dash '-' read as '_' too.
func foldDash(c byte, dash bool) byte {
	c = foldByte(c)
	if dash && c == '-' {
		c = '_'
	}
	return c
}

// QueryName is a query parameter's name with every name an upstream may
// read as it: the name itself; any name PHP reads as it (PHP, and Laravel,
// Symfony or WordPress on it, drops a name's leading spaces, ends it at a
// NUL, reads "param[...]" as an array named param and turns ' ', '.' and
// '[' into '_': "access.token", "access token" and "access[token" are all
// access_token to it, and the last one sent wins); and any of these in
// other ASCII case, as ASP.NET and ASP.NET Core read query names
// ("ACCESS_TOKEN" is access_token to them); and any of these with the
// non-ASCII letters that other case-insensitive readers take for ASCII
// ones (see namefold: Go's strings.EqualFold, in Echo's Bind and
// gorilla/schema, reads "ſize" as size; Java's equalsIgnoreCase
// "client_ıd" as client_id). A policy that looks for one
// copy of a parameter must count these too. Build it at load time with
// NewQueryName; it is immutable and safe for concurrent use.
//
// A name PHP reads as an element of an array ("page[size]", JSON:API's
// style) is matched by the names PHP or ASP.NET read as that element, or
// as an array in it ("PAGE.X[Size]" for page_x[size], "page[size][]"),
// not by its array's other elements (page[number]); an element pushed on
// a list ("ids[]") stands for the whole list, ids.
type QueryName struct {
	name string
	// folded is the name as PHP reads it, lower-cased, with the letters
	// namefold reads written as theirs (foldAt): what Matches compares a
	// request's name with once it has folded it the same way.
	folded string
	// elem is, for an element of an array, its keys ("[size]"), in lower
	// case, up to the first "[]": a name PHP reads as the array folded
	// must have them first.
	elem string
}

// NewQueryName returns param as a QueryName. Use it for names known to be
// plain; ParseQueryName checks a name written in the config.
func NewQueryName(param string) QueryName {
	base, index := phpSplit(param)
	b := make([]byte, 0, len(base))
	for i := 0; i < len(base); {
		c, n := foldAt([]byte(base), i)
		b = append(b, c)
		i += n
	}
	// index is whole groups, each ending at its first ']'.
	for i := 0; i < len(index); {
		j := i + strings.IndexByte(index[i:], ']')
		if j == i+1 {
			index = index[:i]
			break
		}
		i = j + 1
	}
	return QueryName{name: param, folded: string(b), elem: strings.ToLower(index)}
}

// ParseQueryName returns param as a QueryName, or an error when PHP reads
// param as something else than one parameter: an element of an array
// ("api[key]", "ids[]"), or a name cut at a NUL. A credential must be one
// plain parameter: PHP reads an array element by more names than a
// QueryName counts (?api=x replaces the array api).
func ParseQueryName(param string) (QueryName, error) {
	if p := phpName(param); len(strings.TrimLeft(param, " ")) != len(p) {
		return QueryName{}, fmt.Errorf("query parameter %q: PHP reads this name as %q (an array element, or a name cut at a NUL), "+
			"and the gateway does not tell such parameters apart: name a plain parameter, without '[...]' or NUL", param, p)
	}
	return NewQueryName(param), nil
}

// String returns the parameter's name as configured.
func (q *QueryName) String() string { return q.name }

// Peek returns the value of the parameter named q, or else of the first
// one an upstream may read as q; nil when there is none. After
// Credentials.Check has passed the request carries at most one, so Peek
// reads the copy the check counted. It does not allocate.
func (q *QueryName) Peek(args *fasthttp.Args) []byte {
	var v []byte
	found := false
	for k, val := range args.All() {
		if string(k) == q.name {
			return val
		}
		if !found && q.Matches(k) {
			v, found = val, true
		}
	}
	return v
}

// Matches reports whether an upstream may read the query parameter named
// name (decoded, as fasthttp's Args gives it) as q. It does not allocate.
func (q *QueryName) Matches(name []byte) bool {
	if string(name) == q.name {
		return true
	}
	a, index := phpSplit(name)
	return q.matchesSplit(a, index) || q.matchesRack(name)
}

// matchesRack reports whether Rack 2 (Rails before 7.1) reads name as q:
// it drops the brackets before a name and reads it up to the next one
// ("[limit]", "limit]", "]limit" are limit), in the case written.
func (q *QueryName) matchesRack(name []byte) bool {
	r := rackName(name)
	return len(r) < len(name) && string(r) == q.name
}

// rackName is the name Rack 2 gives the query parameter name: what follows
// any leading '[' and ']', up to the next of them.
func rackName(name []byte) []byte {
	i := 0
	for i < len(name) && (name[i] == '[' || name[i] == ']') {
		i++
	}
	j := i
	for j < len(name) && name[j] != '[' && name[j] != ']' {
		j++
	}
	return name[i:j]
}

// matchesSplit is Matches for a name phpSplit has split into a and index.
func (q *QueryName) matchesSplit(a, index []byte) bool {
	return (len(a) == len(q.folded) && foldedEqual(a, q.folded, false) || mayFoldLonger(a, q.folded) && foldedLonger(a, q.folded, false)) && len(index) >= len(q.elem) && ascii.EqualLower(index[:len(q.elem)], q.elem)
}

// Unambiguous reports whether the request's query carries the parameter
// at most once, and then under the name as written: what a reader of that
// name alone sees (an expression compiled without CompileCredential) is
// then what every upstream reads. A copy under another name an upstream
// reads as q (API_KEY, api.key), a copy inside another parameter after a
// ';' (see QueryParams), or a second copy, of which upstreams read the
// first (ASP.NET), the last (PHP) or all, make it ambiguous. It does not
// allocate.
func (q *QueryName) Unambiguous(ctx *fasthttp.RequestCtx) bool {
	n := 0
	for k, hidden := range QueryParams(ctx) {
		if q.Matches(k) {
			if n++; n > 1 || hidden || string(k) != q.name {
				return false
			}
		}
	}
	return true
}

// HasQueryParam reports whether the request's query has a parameter an
// upstream may read as q (see QueryName), inside another after a ';' too
// (see QueryParams). It does not allocate.
func HasQueryParam(ctx *fasthttp.RequestCtx, q *QueryName) bool {
	for k := range QueryParams(ctx) {
		if q.Matches(k) {
			return true
		}
	}
	return false
}

// phpName is the part of a query parameter's name that PHP names a
// variable with, before it replaces characters (foldByte).
func phpName[T ~string | ~[]byte](s T) T {
	base, _ := phpSplit(s)
	return base
}

// phpSplit splits a query parameter's name as PHP reads it: base names the
// variable (before foldByte), index is the "[...]" groups that follow it,
// the keys of the array base names; PHP drops what follows a group unless
// it is another ("a[b]c" is a[b]).
func phpSplit[T ~string | ~[]byte](s T) (base, index T) {
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
				return s[:i], indexPath(s[i:])
			}
		}
		break
	}
	return s, s[len(s):]
}

// indexPath is the leading "[...]" groups of s.
func indexPath[T ~string | ~[]byte](s T) T {
	n := 0
	for n < len(s) && s[n] == '[' {
		j := n + 1
		for j < len(s) && s[j] != ']' {
			j++
		}
		if j == len(s) {
			break
		}
		n = j + 1
	}
	return s[:n]
}

// QueryNames is a set of query parameters' names, each with the names an
// upstream reads as it (see QueryName), indexed so that finding which of
// them a request's parameter is read as costs the length of its name, not
// the size of the set. Build it at load time with NewQueryNames; it is
// immutable and safe for concurrent use.
type QueryNames struct {
	names []QueryName
	// index holds the numbers of the names under their key (queryKeys):
	// a plain name's plain key, an element's elem key.
	index map[uint64][]int32
	// exact numbers the names as written, for the common request that
	// sends them so.
	exact map[string]int32
}

// NewQueryNames returns the set of names, numbered in their order.
func NewQueryNames(names ...string) *QueryNames {
	s := &QueryNames{index: map[uint64][]int32{}, exact: map[string]int32{}}
	for i, n := range names {
		if _, dup := s.exact[n]; !dup {
			s.exact[n] = int32(i)
		}
		q := NewQueryName(n)
		s.names = append(s.names, q)
		key, elem, _ := queryKeys(n)
		if q.elem != "" {
			key = elem
		}
		s.index[key] = append(s.index[key], int32(i))
	}
	return s
}

// Len returns the number of names in the set.
func (s *QueryNames) Len() int { return len(s.names) }

// Name returns the i-th name of the set.
func (s *QueryNames) Name(i int) *QueryName { return &s.names[i] }

// Find returns the number of the name of the set that an upstream may read
// the request's parameter name as, and whether name is it exactly: the
// name itself when the set has it, else the first that matches (see
// QueryName.Matches); -1 when none does. It does not allocate.
func (s *QueryNames) Find(name []byte) (i int, exact bool) {
	i = -1
	if s == nil {
		return i, false
	}
	if j, ok := s.exact[string(name)]; ok {
		return int(j), true
	}
	plain, elem, indexed := queryKeys(name)
	for _, key := range [2]uint64{plain, elem} {
		for _, j := range s.index[key] {
			if (i < 0 || int(j) < i) && s.names[j].Matches(name) {
				i = int(j)
			}
		}
		if !indexed {
			break
		}
	}
	if i < 0 {
		if j, ok := s.exact[string(rackName(name))]; ok {
			i = int(j)
		}
	}
	return i, false
}

// Overlapping returns the numbers of two names of the set that an upstream
// may read as one parameter ("limit" and "Limit", "page_size" and
// "page.size", "ids" and "ids[]"), and ok when there are such.
func (s *QueryNames) Overlapping() (a, b int, ok bool) {
	for i := range s.names {
		plain, elem, indexed := queryKeys(s.names[i].name)
		for k, key := range [2]uint64{plain, elem} {
			if k == 1 && !indexed {
				break
			}
			for _, j := range s.index[key] {
				if int(j) != i && (s.names[i].Matches([]byte(s.names[j].name)) || s.names[j].Matches([]byte(s.names[i].name))) {
					return min(i, int(j)), max(i, int(j)), true
				}
			}
		}
	}
	return 0, 0, false
}

// queryKeys returns the FNV-1a hash of name's base (phpName) folded as
// QueryName folds it, plain, and when name has an index (indexed), elem:
// the hash continued over its first "[...]" in lower case. The names a
// plain QueryName matches have its plain key; those an element's matches
// have its elem key.
func queryKeys[T ~string | ~[]byte](name T) (plain, elem uint64, indexed bool) {
	const prime = 1099511628211
	base, index := phpSplit(name)
	plain = 14695981039346656037
	for i := 0; i < len(base); i++ {
		// foldAt, written out for T.
		c := base[i]
		if namefold.Lead(c) {
			var n int
			c, n = foldLead([]byte(base[i:]))
			i += n - 1
		} else {
			c = foldTables[0][c]
		}
		plain = (plain ^ uint64(c)) * prime
	}
	if len(index) == 0 {
		return plain, 0, false
	}
	elem = plain
	for i := 0; i < len(index); i++ {
		c := index[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		elem = (elem ^ uint64(c)) * prime
		if c == ']' {
			break
		}
	}
	return plain, elem, true
}

// foldAt returns the byte that the name s has at i as QueryName folds it
// (foldByte), or the ASCII letter that a non-ASCII one at i is read as
// (namefold), and how many bytes of s it takes. PHP replaces ' ', '.' and
// '[' and folds no case; ASP.NET folds ASCII case only; Go's and Java's
// case-insensitive comparisons fold the non-ASCII letters too: a name is
// folded as all of them read it at once, so that one comparison covers
// every reader.
func foldAt(s []byte, i int) (byte, int) {
	if c := s[i]; !namefold.Lead(c) {
		return foldByte(c), 1
	}
	return foldLead(s[i:])
}

// foldLead is foldAt for a name whose first byte may begin a letter
// namefold reads: apart, and not inlined, so that foldAt, and the loops
// that fold ASCII bytes, inline the rest.
//
//go:noinline
func foldLead(s []byte) (byte, int) {
	if l, n := namefold.Letter(s); n > 0 {
		return l, n
	}
	return s[0], 1
}

// foldTables are foldByte, and foldDash with dash, as tables: the loops
// over a name's bytes look them up.
var foldTables = func() (t [2][256]byte) {
	for i := range 256 {
		t[0][i], t[1][i] = foldDash(byte(i), false), foldDash(byte(i), true)
	}
	return t
}()

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
