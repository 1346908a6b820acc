// Package iplist holds the ip-allowlist and ip-blocklist policies: a
// request passes or is refused by its client address, looked up in a set of
// addresses and ranges compiled when the config loads.
package iplist

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/expr"
	"github.com/flexgate/flexgate/internal/ascii"
)

func init() {
	for _, r := range []struct {
		name        string
		block, flex bool
	}{
		{"ip-allowlist", false, false}, {"ip-blocklist", true, false},
		{"ip-allowlist-flex", false, true}, {"ip-blocklist-flex", true, true},
	} {
		block, flex := r.block, r.flex
		chain.Register(chain.Registration{Name: r.name, New: func() chain.Policy { return &List{block: block, flex: flex} }})
	}
}

// DefaultExpression is where the address is read when ipExpression is not
// given: the client address the gateway verified, which is the TCP peer, or
// the right-most address of X-Forwarded-For not in spec.trustedProxies when
// the peer is a trusted proxy. Flex Gateway reads X-Forwarded-For itself,
// which any client can write.
const DefaultExpression = "$request.remoteAddress"

// maxWarnings bounds the warnings of entries another entry covers.
const maxWarnings = 3

type source uint8

const (
	fromRemote   source = iota // the verified client address
	fromHeader                 // every address in every copy of one header
	fromTemplate               // the text an expression expands to
)

// List is ip-allowlist and ip-blocklist (and their -flex names, which take
// the same parameters). Once provisioned it is safe for concurrent use.
type List struct {
	// IPs are the addresses (192.168.1.1), CIDRs (192.168.3.1/30) and
	// leading IPv4 octets (192.168) of the list, IPv4 or IPv6.
	IPs []string `yaml:"ips"`
	// IPExpression reads the address to check; default
	// $request.remoteAddress. Its result may be a comma-separated list,
	// every address of which is checked.
	IPExpression chain.Expression `yaml:"ipExpression"`

	block bool
	// flex: the policy is named as in Flex Gateway, whose users expect
	// its default ipExpression (see warnFlexDefault).
	flex     bool
	set      *Set
	src      source
	header   string // the header's name, lower case with '-' for '_', with fromHeader
	tmpl     *expr.Template
	creds    *chain.Credentials
	alts     *chain.Alternatives // what the expression reads in turn: one at most
	denied   *chain.Rejection
	unknown  *chain.Rejection
	prefixes []netip.Prefix
}

// headerRef matches an expression that is one request header, in the forms
// of flexgate and of Flex Gateway.
var headerRef = regexp.MustCompile(`^(?:\$request\.header\.([!#$%&'*+^_|~0-9A-Za-z.-]*[!#$%&'*+^_|~0-9A-Za-z-])|\$\{request\.header\.([^}]+)\}|` +
	`#\[\s*attributes\.headers\s*(?:\[\s*'([^']+)'\s*\]|\[\s*"([^"]+)"\s*\]|\.\s*'([^']+)'|\.([A-Za-z_][A-Za-z0-9_-]*))\s*\])$`)

// remoteRef matches Flex Gateway's expressions of the client's address.
var remoteRef = regexp.MustCompile(`^#\[\s*attributes\.(?:remoteAddress|clientAddress\.ip)\s*\]$`)

// Validate parses every entry and the expression.
func (l *List) Validate(env *chain.Env) error {
	params := env.Spec.Params
	node := chain.Field(params, "ips")
	if len(l.IPs) == 0 {
		at := node
		if at == nil {
			at = params
		}
		return chain.Errorf(at, "ips is required: list addresses, CIDRs or leading octets, e.g. ips: [\"192.168.1.1\", \"10.0.0.0/8\", \"172.16\"]")
	}
	l.prefixes = l.prefixes[:0]
	for i, s := range l.IPs {
		p, err := ParseEntry(s)
		if err != nil {
			return chain.Errorf(item(node, i), "ips: %v", err)
		}
		l.prefixes = append(l.prefixes, p)
	}
	l.warnCovered(env, node)
	return l.compileExpression(env)
}

func item(n *yaml.Node, i int) *yaml.Node {
	if n != nil && n.Kind == yaml.SequenceNode && i < len(n.Content) {
		return n.Content[i]
	}
	return n
}

// warnCovered warns of entries that another entry already holds: harmless,
// but a sign the list is not what its author thinks.
func (l *List) warnCovered(env *chain.Env, node *yaml.Node) {
	type span struct {
		r  range6
		v4 bool
		i  int
	}
	spans := make([]span, len(l.prefixes))
	for i, p := range l.prefixes {
		spans[i] = span{prefixRange(p), p.Addr().Is4(), i}
	}
	// By family, then start; of equal starts the widest first.
	slices.SortStableFunc(spans, func(a, b span) int {
		switch {
		case a.v4 != b.v4 && a.v4:
			return -1
		case a.v4 != b.v4:
			return 1
		case a.r.lo.less(b.r.lo):
			return -1
		case b.r.lo.less(a.r.lo):
			return 1
		case b.r.hi.less(a.r.hi):
			return -1
		case a.r.hi.less(b.r.hi):
			return 1
		}
		return 0
	})
	warned, more := 0, 0
	// best is the entry reaching furthest so far: if any earlier entry
	// holds the next one, it does.
	var best *span
	for k := range spans {
		s := &spans[k]
		if best != nil && best.v4 == s.v4 && !best.r.hi.less(s.r.hi) {
			if warned < maxWarnings {
				env.Warn(item(node, s.i), "ips: %q is already in %q; remove it", l.IPs[s.i], l.IPs[best.i])
				warned++
			} else {
				more++
			}
			continue
		}
		best = s
	}
	if more > 0 {
		env.Warn(node, "ips: %d more entries are already in other entries", more)
	}
}

// compileExpression decides where the address comes from.
func (l *List) compileExpression(env *chain.Env) error {
	s := strings.TrimSpace(string(l.IPExpression))
	at := chain.Field(env.Spec.Params, "ipExpression")
	l.src, l.header, l.tmpl = fromRemote, "", nil
	if s == "" && l.flex {
		l.warnFlexDefault(env)
	}
	if s == "" || s == DefaultExpression || s == "${request.remoteAddress}" || remoteRef.MatchString(s) {
		return nil
	}
	if m := headerRef.FindStringSubmatch(s); m != nil {
		name := strings.Join(m[1:], "")
		if !ascii.IsToken(name) {
			return chain.Errorf(at, "ipExpression %q: %q is not a header name", s, name)
		}
		l.src, l.header = fromHeader, strings.ReplaceAll(strings.ToLower(name), "_", "-")
		return nil
	}
	t, err := expr.CompileCredential(s, env)
	if err != nil {
		return chain.Errorf(at, "ipExpression: %v", err)
	}
	switch {
	case t.IsRemoteAddress():
		return nil
	case t.IsConstant():
		return chain.Errorf(at, "ipExpression %q reads nothing of the request: write $request.remoteAddress (the default), "+
			"$request.header.NAME or #[attributes.headers['name']]", s)
	}
	l.src, l.tmpl = fromTemplate, t
	return nil
}

// FlexDefaultExpression is Flex Gateway's ipExpression when config leaves
// it out.
const FlexDefaultExpression = "#[attributes.headers['x-forwarded-for']]"

// warnFlexDefault says, for a -flex policy without ipExpression, that
// flexgate does not read what Flex Gateway would: a user behind a load
// balancer would otherwise find a blocklist blocking no one and an
// allowlist refusing everyone, with nothing said.
func (l *List) warnFlexDefault(env *chain.Env) {
	here := "no spec.trustedProxies are configured, so that is the connection's address: behind a load balancer the balancer's, " +
		"and the allowlist refuses every client (or, with the balancer on it, lets every one through). "
	if l.block {
		here = "no spec.trustedProxies are configured, so that is the connection's address: behind a load balancer the balancer's, " +
			"and the blocklist blocks no client. "
	}
	here += "To check the clients behind a load balancer without believing what they write, list the balancer's addresses " +
		"in spec.trustedProxies of a kind: Gateway document in the config directory " +
		"(apiVersion: gateway.mulesoft.com/v1alpha1, kind: Gateway, metadata: {name: proxies}, spec: {trustedProxies: [10.0.0.0/8]})"
	if n := len(env.Config.TrustedProxies); n > 0 {
		here = fmt.Sprintf("X-Forwarded-For is believed from the %d entries of spec.trustedProxies only", n)
		if n == 1 {
			here = "X-Forwarded-For is believed from the 1 entry of spec.trustedProxies only"
		}
	}
	env.Warn(nil, "ipExpression is not written, so flexgate checks the client address it verified: the connection's address or, "+
		"when the connection comes from one of spec.trustedProxies, the right-most address of X-Forwarded-For that is not a trusted proxy. "+
		"It does not read Flex Gateway's default, %s, which any client can write to pass an allowlist or slip past a blocklist. Here %s. "+
		"For Flex Gateway's behaviour write ipExpression: \"%s\" (safe only when a proxy in front overwrites that header); "+
		"to keep flexgate's and silence this warning write ipExpression: \"#[attributes.remoteAddress]\"",
		FlexDefaultExpression, here, FlexDefaultExpression)
}

// Provision compiles the set and builds the rejections.
func (l *List) Provision(env *chain.Env) error {
	l.set = NewSet(l.prefixes)
	l.prefixes = nil
	what := DefaultExpression
	if l.IPExpression != "" {
		what = strings.TrimSpace(string(l.IPExpression))
	}
	if l.block {
		l.denied = env.Reject(403, "ip_blocked", "the client address is on the route's IP blocklist")
	} else {
		l.denied = env.Reject(403, "ip_not_allowed", "the client address is not on the route's IP allowlist")
	}
	l.unknown = env.Reject(403, "ip_unknown", fmt.Sprintf("the client address could not be read from %s", what))
	if l.src == fromTemplate {
		headers, query := l.tmpl.Reads()
		var err error
		if l.creds, err = env.Credentials(headers, query); err != nil {
			return err
		}
		if l.alts, err = env.Alternatives(l.tmpl.Alternatives()); err != nil {
			return err
		}
	}
	return nil
}

// Close releases nothing: the policy holds no goroutines or connections.
func (l *List) Close() error { return nil }

var (
	_ chain.Policy         = (*List)(nil)
	_ chain.RequestHandler = (*List)(nil)
)
