package iplist

import (
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

// from is a request from peer (an IP address) with the headers (name,
// value pairs, each added, so a name may repeat).
func from(peer string, headers ...string) *fasthttp.RequestCtx {
	var req fasthttp.Request
	req.SetRequestURI("http://gw/api/x")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	ctx := new(fasthttp.RequestCtx)
	ctx.Init(&req, &net.TCPAddr{IP: net.ParseIP(peer), Port: 4444}, nil)
	return ctx
}

func verdict(c *chain.Chain, ctx *fasthttp.RequestCtx) string {
	rej := chaintest.Run(c, ctx)
	if rej == nil {
		return "pass"
	}
	if rej.Status != 403 && rej.Reason != "duplicate_credentials" {
		return "bad status"
	}
	return rej.Reason
}

const ips = `ips: ["192.168.1.1", "10.0.0.0/8", "172.16", "2001:db8::/32", "::ffff:100.64.0.0/106"]`

func TestAllowAndBlock(t *testing.T) {
	for _, name := range []string{"ip-allowlist", "ip-allowlist-flex", "ip-blocklist", "ip-blocklist-flex"} {
		c := chaintest.MustChain(t, "- "+name+": {"+ips+"}")
		block := strings.HasPrefix(name, "ip-blocklist")
		for peer, listed := range map[string]bool{
			"192.168.1.1": true, "192.168.1.2": false, "10.200.0.1": true, "11.0.0.1": false,
			"172.16.44.1": true, "172.17.0.1": false, "2001:db8::5": true, "2001:db9::5": false,
			"::ffff:10.1.1.1": true, "::ffff:192.168.1.2": false, "100.64.1.1": true, "100.128.0.1": false,
		} {
			want := "pass"
			switch {
			case listed && block:
				want = "ip_blocked"
			case !listed && !block:
				want = "ip_not_allowed"
			}
			if got := verdict(c, from(peer)); got != want {
				t.Errorf("%s, from %s: %s, want %s", name, peer, got, want)
			}
		}
	}
}

// TestForwardedForIsNotBelieved: by default the address is the verified
// client address, so a client that writes X-Forwarded-For gains nothing
// (the gateway believes the header only from spec.trustedProxies, tested end
// to end).
func TestForwardedForIsNotBelieved(t *testing.T) {
	allow := chaintest.MustChain(t, `- ip-allowlist-flex: {ips: ["10.0.0.0/8"]}`)
	block := chaintest.MustChain(t, `- ip-blocklist-flex: {ips: ["203.0.113.9"]}`)
	if got := verdict(allow, from("203.0.113.9", "X-Forwarded-For", "10.0.0.1")); got != "ip_not_allowed" {
		t.Errorf("allowlist, forged X-Forwarded-For: %s", got)
	}
	if got := verdict(block, from("203.0.113.9", "X-Forwarded-For", "10.0.0.1")); got != "ip_blocked" {
		t.Errorf("blocklist, forged X-Forwarded-For: %s", got)
	}
}

// TestHeaderExpression: an address read from a header is every address of
// every copy: an allowlist needs all of them on it, a blocklist none; one
// that cannot be read refuses the request on either list.
func TestHeaderExpression(t *testing.T) {
	for _, expr := range []string{`"#[attributes.headers['x-forwarded-for']]"`, `'#[attributes.headers["X-Forwarded-For"]]'`,
		`"#[attributes.headers.'x-forwarded-for']"`, `$request.header.X-Forwarded-For`, `"${request.header.x-forwarded-for}"`} {
		allow := chaintest.MustChain(t, `- ip-allowlist-flex: {ips: ["10.0.0.0/8"], ipExpression: `+expr+`}`)
		block := chaintest.MustChain(t, `- ip-blocklist: {ips: ["10.0.0.0/8"], ipExpression: `+expr+`}`)
		f := func(wantAllow, wantBlock string, headers ...string) {
			t.Helper()
			if got := verdict(allow, from("192.0.2.1", headers...)); got != wantAllow {
				t.Errorf("%s allowlist %q: %s, want %s", expr, headers, got, wantAllow)
			}
			if got := verdict(block, from("192.0.2.1", headers...)); got != wantBlock {
				t.Errorf("%s blocklist %q: %s, want %s", expr, headers, got, wantBlock)
			}
		}
		f("pass", "ip_blocked", "X-Forwarded-For", "10.1.2.3")
		f("ip_not_allowed", "pass", "X-Forwarded-For", "192.0.2.7")
		f("pass", "ip_blocked", "X-Forwarded-For", "10.1.2.3, 10.4.5.6")
		f("ip_not_allowed", "ip_blocked", "X-Forwarded-For", "10.1.2.3, 192.0.2.7")
		f("ip_not_allowed", "ip_blocked", "X-Forwarded-For", "192.0.2.7,10.1.2.3")
		f("ip_not_allowed", "ip_blocked", "X-Forwarded-For", "10.1.2.3", "X-Forwarded-For", "192.0.2.7")
		f("ip_not_allowed", "ip_blocked", "X-Forwarded-For", "192.0.2.7", "X-Forwarded-For", "10.1.2.3")
		f("pass", "ip_blocked", "X-Forwarded-For", "::ffff:10.9.9.9")
		f("pass", "ip_blocked", "X-Forwarded-For", "10.9.9.9:5123")
		f("pass", "ip_blocked", "X-Forwarded-For", " 10.9.9.9 ,, ")
		// Unreadable: nothing, garbage, a zone, leading zeros.
		f("ip_unknown", "ip_unknown")
		f("ip_unknown", "ip_unknown", "X-Forwarded-For", "")
		f("ip_unknown", "ip_unknown", "X-Forwarded-For", " , ")
		f("ip_unknown", "ip_blocked", "X-Forwarded-For", "10.1.2.3, unknown")
		f("ip_unknown", "ip_unknown", "X-Forwarded-For", "unknown, 10.1.2.3")
		f("ip_unknown", "ip_unknown", "X-Forwarded-For", "fe80::1%eth0")
		f("ip_unknown", "ip_unknown", "X-Forwarded-For", "010.1.2.3")
		f("ip_unknown", "ip_unknown", "X-Forwarded-For", "10.1.2.3 10.1.2.4")
	}
	// A header of another name, in its '_' spelling too.
	c := chaintest.MustChain(t, `- ip-allowlist: {ips: ["10.0.0.0/8"], ipExpression: $request.header.X-Real-Client}`)
	if got := verdict(c, from("192.0.2.1", "X-Real-Client", "10.0.0.1", "X_Real_Client", "192.0.2.1")); got != "ip_not_allowed" {
		t.Errorf("X_Real_Client beside X-Real-Client: %s", got)
	}
}

// TestTemplateExpression: an expression other than one header is expanded
// and read as a list; the headers it reads may not come twice.
func TestTemplateExpression(t *testing.T) {
	c := chaintest.MustChain(t, `- ip-allowlist: {ips: ["10.0.0.0/8"], ipExpression: "$request.header.X-A,$request.header.X-B"}`)
	f := func(want string, headers ...string) {
		t.Helper()
		if got := verdict(c, from("192.0.2.1", headers...)); got != want {
			t.Errorf("%q: %s, want %s", headers, got, want)
		}
	}
	f("pass", "X-A", "10.0.0.1", "X-B", "10.0.0.2")
	f("pass", "X-A", "10.0.0.1")
	f("ip_not_allowed", "X-A", "10.0.0.1", "X-B", "192.0.2.1")
	f("ip_unknown")
	f("duplicate_credentials", "X-A", "10.0.0.1", "X-A", "192.0.2.1")

	// Flex Gateway's expressions compile the same way.
	c = chaintest.MustChain(t, `- ip-allowlist-flex: {ips: ["10.0.0.0/8"], ipExpression: "#[attributes.headers['x-a'] ++ ',' ++ attributes.headers['x-b']]"}`)
	f("pass", "X-A", "10.0.0.1", "X-B", "10.0.0.2")
	f("ip_not_allowed", "X-A", "10.0.0.1", "X-B", "192.0.2.1")
	f("ip_unknown", "X-A", "10.0.0.1", "X-B", "unknown")
}

// TestTemplateReadsEveryName: an expression reads a header in the spelling
// the request sends it in (X_B for X-B: an upstream reads it as X-B), and a
// query parameter in any name an upstream reads as it; a header's name in
// the query, or a query parameter's name as a header, is refused.
func TestTemplateReadsEveryName(t *testing.T) {
	block := chaintest.MustChain(t, `- ip-blocklist: {ips: ["192.0.2.0/24"], ipExpression: "$request.header.X-A,$request.header.X-B"}`)
	allow := chaintest.MustChain(t, `- ip-allowlist-flex: {ips: ["10.0.0.0/8"], ipExpression: "#[attributes.queryParams.client_ip]"}`)
	f := func(c *chain.Chain, want, uri string, headers ...string) {
		t.Helper()
		ctx := from("10.0.0.7", headers...)
		ctx.Request.SetRequestURI(uri)
		if got := verdict(c, ctx); got != want {
			t.Errorf("%s %q: %s, want %s", uri, headers, got, want)
		}
	}
	f(block, "pass", "http://gw/api/x", "X-A", "10.0.0.1", "X-B", "10.0.0.2")
	f(block, "ip_blocked", "http://gw/api/x", "X-A", "10.0.0.1", "X_B", "192.0.2.1")
	f(block, "ip_blocked", "http://gw/api/x", "x_a", "192.0.2.1")
	f(block, "duplicate_credentials", "http://gw/api/x?x-b=192.0.2.1", "X-A", "10.0.0.1", "X-B", "10.0.0.2")
	f(allow, "pass", "http://gw/api/x?client_ip=10.0.0.1")
	f(allow, "pass", "http://gw/api/x?CLIENT_IP=10.0.0.1")
	f(allow, "ip_not_allowed", "http://gw/api/x?client.ip=192.0.2.1")
	f(allow, "duplicate_credentials", "http://gw/api/x?client_ip=10.0.0.1&Client.Ip=192.0.2.1")
	f(allow, "duplicate_credentials", "http://gw/api/x?client_ip=10.0.0.1", "Client-Ip", "192.0.2.1")
	// Read in turn: the list would check the first, an upstream may read
	// the other.
	either := chaintest.MustChain(t, `- ip-blocklist-flex: {ips: ["192.0.2.0/24"], ipExpression: "#[attributes.headers['x-real-ip'] default attributes.headers['x-client-ip']]"}`)
	f(either, "pass", "http://gw/api/x", "X-Client-Ip", "10.0.0.1")
	f(either, "ip_blocked", "http://gw/api/x", "X-Client-Ip", "192.0.2.1")
	f(either, "duplicate_credentials", "http://gw/api/x", "X-Real-Ip", "10.0.0.1", "X-Client-Ip", "192.0.2.1")
}

func TestValidate(t *testing.T) {
	f := func(policy string, want ...string) {
		t.Helper()
		_, _, err := chaintest.Compile(t, chaintest.Gateway(policy))
		for _, w := range want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v, want %q", policy, err, w)
			}
		}
	}
	f("        - ip-allowlist-flex", "gw.yaml:12:11: ip-allowlist-flex: ips is required")
	f("        - ip-allowlist: {ips: []}", "gw.yaml:12:31: ip-allowlist: ips is required")
	f(`        - ip-blocklist: {ips: ["10.0.0.1", "10.0.0.0/33"]}`, `gw.yaml:12:44: ip-blocklist: ips: "10.0.0.0/33" is not a CIDR: prefix length out of range`)
	f(`        - ip-blocklist: {ips: ["fe80::1%eth0"]}`, "has an IPv6 zone")
	f(`        - ip-blocklist: {ips: "10.0.0.1"}`, "gw.yaml:12:31:", `ips must be a list, not "10.0.0.1"`)
	f(`        - ip-allowlist-flex: {ips: ["10.0.0.1"], ipExpression: "#['10.0.0.1']"}`,
		"gw.yaml:12:64: ip-allowlist-flex: ipExpression", "reads nothing of the request", "#[attributes.headers['name']]")
	f(`        - ip-allowlist-flex: {ips: ["10.0.0.1"], ipExpression: "10.0.0.1"}`, "reads nothing of the request")
	f(`        - ip-allowlist: {ips: ["10.0.0.1"], ipExpression: "$request.nope"}`, "unknown expression $request.nope")
	f(`        - ip-allowlist: {ips: ["10.0.0.1"], ipExpression: "$client.id"}`, "gw.yaml:12:60: ip-allowlist: ipExpression:", "$client.id")
	// A Flex policy's value is text, unless it is all one #[...].
	f(`        - ip-allowlist-flex: {ips: ["10.0.0.1"], ipExpression: "$request.nope"}`, "reads nothing of the request")
	f(`        - ip-allowlist: {ips: ["10.0.0.1"], ipExpression: "#[attributes.headers['a b']]"}`, `"a b" is not a header name`)
	f(`        - ip-allowlist: {ips: ["10.0.0.1"], address: x}`, `unknown parameter "address"; known parameters: ipExpression, ips`)
}

func TestWarnsOfCoveredEntries(t *testing.T) {
	cfg, _ := chaintest.Load(t, chaintest.Gateway(`        - ip-allowlist: {ips: ["10.1.2.3", "10.0.0.0/8", "10.1.0.0/16", "2001:db8::1", "2001:db8::/64", "10.0.0.0/8", "10.1.2.4", "10.1.2.5", "1.2.3.4"]}`))
	if _, err := chain.CompileAll(cfg, nil, chain.Options{}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range cfg.Warnings {
		got = append(got, w.String()[strings.Index(w.String(), "gw.yaml"):])
	}
	want := []string{
		`gw.yaml:12:105: warning: ip-allowlist: ips: "10.0.0.0/8" is already in "10.0.0.0/8"; remove it`,
		`gw.yaml:12:58: warning: ip-allowlist: ips: "10.1.0.0/16" is already in "10.0.0.0/8"; remove it`,
		`gw.yaml:12:32: warning: ip-allowlist: ips: "10.1.2.3" is already in "10.0.0.0/8"; remove it`,
		`gw.yaml:12:31: warning: ip-allowlist: ips: 3 more entries are already in other entries`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestSuccessDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	for _, tc := range []struct{ policy, header string }{
		{`- ip-allowlist: {ips: ["10.0.0.0/8", "2001:db8::/32"]}`, ""},
		{`- ip-blocklist-flex: {ips: ["192.0.2.0/24"], ipExpression: "#[attributes.headers['x-forwarded-for']]"}`, "10.0.0.1, 2001:db8::1, 10.0.0.2"},
		{`- ip-allowlist: {ips: ["10.0.0.0/8"], ipExpression: "$request.header.X-A,$request.header.X-B"}`, ""},
	} {
		c := chaintest.MustChain(t, tc.policy)
		ctx := from("10.0.0.7", "X-Forwarded-For", tc.header, "X-A", "10.1.1.1", "X-B", "10.2.2.2")
		ex := chain.AcquireExchange()
		ex.Prepare(c)
		allocs := testing.AllocsPerRun(500, func() {
			if rej := c.RunRequest(ctx, ex); rej != nil {
				t.Fatal(rej)
			}
		})
		chain.ReleaseExchange(ex)
		if allocs != 0 {
			t.Errorf("%s: %v allocations per request, want 0", tc.policy, allocs)
		}
	}
}

// TestFlexDefaultIsWarnedOf: Flex Gateway reads X-Forwarded-For when
// ipExpression is left out, flexgate the verified client address; a -flex
// policy without ipExpression says so at its line, with what to write for
// either behaviour and how to trust a load balancer, so that a user behind
// one does not find a blocklist that blocks no one with nothing said.
func TestFlexDefaultIsWarnedOf(t *testing.T) {
	warnings := func(trusted, policies string) string {
		t.Helper()
		text := chaintest.Gateway(policies)
		if trusted != "" {
			text = strings.Replace(text, "spec:\n", "spec:\n  trustedProxies: ["+trusted+"]\n", 1)
		}
		cfg, path := chaintest.Load(t, text)
		if _, err := chain.CompileAll(cfg, nil, chain.Options{}); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, w := range cfg.Warnings {
			out = append(out, strings.TrimPrefix(w.String(), filepath.Dir(path)+string(filepath.Separator)))
		}
		return strings.Join(out, "\n")
	}
	w := warnings("", `        - ip-blocklist-flex: {ips: ["203.0.113.9"]}`)
	for _, want := range []string{
		"gw.yaml:12:11: warning: ip-blocklist-flex: ipExpression is not written, so flexgate checks the client address it verified",
		"It does not read Flex Gateway's default, #[attributes.headers['x-forwarded-for']], which any client can write",
		"no spec.trustedProxies are configured", "the blocklist blocks no client",
		"spec: {trustedProxies: [10.0.0.0/8]}",
		`For Flex Gateway's behaviour write ipExpression: "#[attributes.headers['x-forwarded-for']]"`,
		`write ipExpression: "#[attributes.remoteAddress]"`,
	} {
		if !strings.Contains(w, want) {
			t.Errorf("warnings lack %q:\n%s", want, w)
		}
	}
	if w := warnings("", `        - ip-allowlist-flex: {ips: ["10.0.0.0/8"]}`); !strings.Contains(w, "the allowlist refuses every client") {
		t.Errorf("allowlist warning:\n%s", w)
	}
	if w := warnings("10.0.0.0/8, 192.168.0.0/16", `        - ip-allowlist-flex: {ips: ["10.0.0.0/8"]}`); !strings.Contains(w,
		"Here X-Forwarded-For is believed from the 2 entries of spec.trustedProxies only.") || strings.Contains(w, "no spec.trustedProxies") {
		t.Errorf("with trusted proxies:\n%s", w)
	}
	for _, quiet := range []string{
		`        - ip-allowlist: {ips: ["10.0.0.0/8"]}`,
		`        - ip-allowlist-flex: {ips: ["10.0.0.0/8"], ipExpression: "#[attributes.remoteAddress]"}`,
		`        - ip-blocklist-flex: {ips: ["10.0.0.0/8"], ipExpression: "#[attributes.headers['x-forwarded-for']]"}`,
	} {
		if w := warnings("", quiet); w != "" {
			t.Errorf("%s: warnings:\n%s", quiet, w)
		}
	}
}
