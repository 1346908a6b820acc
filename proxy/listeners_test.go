package proxy_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/config"
	"github.com/flexgate/flexgate/proxy"
	"github.com/flexgate/flexgate/proxy/proxytest"
)

// listenersYAML is a Gateway with the given spec.listeners entries and one
// route sending everything to upstream.
func listenersYAML(listeners, upstream string) string {
	return preamble + "  listeners:\n" + listeners +
		fmt.Sprintf("  routes:\n    - id: r\n      path: [\"/*\"]\n      upstream: {url: %q}\n", upstream)
}

// slowUpstream answers /slow only once release is called, and reports on
// arrived when a /slow request has reached it; other paths answer at once.
func slowUpstream(t *testing.T) (up *proxytest.Upstream, arrived <-chan struct{}, release func()) {
	up = proxytest.StartUpstream(t)
	in := make(chan struct{}, 4)
	gate := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	up.Handler = func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/slow" {
			in <- struct{}{}
			<-gate
		}
		ctx.SetBodyString("ok")
	}
	// Before the upstream's own cleanup, which waits for its requests.
	t.Cleanup(release)
	return up, in, release
}

// receive waits for ch, failing the test after 10 seconds.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10 seconds", what)
		panic("unreachable")
	}
}

type result struct {
	status int
	body   string
	err    error
}

// getAsync sends GET url with its own client (own connections) and reports on
// the channel it returns.
func getAsync(url string, c *fasthttp.Client) <-chan result {
	out := make(chan result, 1)
	go func() {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI(url)
		err := c.DoTimeout(req, resp, 10*time.Second)
		out <- result{resp.StatusCode(), string(resp.Body()), err}
	}()
	return out
}

// rawConn is a keep-alive HTTP/1.1 connection written by hand, to see what
// happens to one connection across a reload.
type rawConn struct {
	net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{Conn: c, br: bufio.NewReader(c)}
}

// roundTrip sends one request on the connection and returns the status, or
// the error reading the answer.
func (c *rawConn) roundTrip(path string) (int, error) {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: gw\r\n\r\n", path); err != nil {
		return 0, err
	}
	var resp fasthttp.Response
	if err := resp.Read(c.br); err != nil {
		return 0, err
	}
	return resp.StatusCode(), nil
}

// TestReloadAddsAndRemovesListeners: a reload opens a new listener, closes
// a removed one's port at once while its request in flight finishes and its
// idle keep-alive connection is closed, and leaves an unchanged listener and
// its connections alone.
func TestReloadAddsAndRemovesListeners(t *testing.T) {
	up, arrived, release := slowUpstream(t)
	gw := proxytest.Start(t, listenersYAML("    - {name: a, port: 8081}\n    - {name: b, port: 8082}\n", up.URL))
	before := gw.GW.Addrs()
	keptConn := dialRaw(t, before["a"])
	if st, err := keptConn.roundTrip("/x"); st != 200 {
		t.Fatalf("listener a: %d %v", st, err)
	}
	idleOnB := dialRaw(t, before["b"])
	if st, err := idleOnB.roundTrip("/x"); st != 200 {
		t.Fatalf("listener b: %d %v", st, err)
	}
	inFlight := getAsync("http://"+before["b"]+"/slow", proxytest.Client())
	receive(t, arrived, "request at the upstream")

	if err := gw.Reload(t, listenersYAML("    - {name: a, port: 8081}\n    - {name: c, port: 8083}\n", up.URL)); err != nil {
		t.Fatal(err)
	}
	after := gw.GW.Addrs()
	if after["a"] != before["a"] || after["c"] == "" || after["b"] != "" {
		t.Fatalf("listeners after the reload: %v (before: %v)", after, before)
	}
	if r := receive(t, getAsync("http://"+after["c"]+"/x", proxytest.Client()), "answer on the new listener"); r.status != 200 {
		t.Errorf("new listener c: %d %v", r.status, r.err)
	}
	if st, err := keptConn.roundTrip("/x"); st != 200 {
		t.Errorf("a connection to the unchanged listener a, open across the reload: %d %v", st, err)
	}
	if c, err := net.DialTimeout("tcp", before["b"], 5*time.Second); err == nil {
		c.Close()
		t.Error("the removed listener's port still accepts connections")
	}
	// The idle keep-alive connection on b is closed by the drain.
	_ = idleOnB.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := idleOnB.br.ReadByte(); err == nil {
		t.Errorf("the idle connection on the removed listener got %q instead of being closed", n)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Error("the idle connection on the removed listener was not closed")
	}
	release()
	if r := receive(t, inFlight, "answer to the request in flight"); r.err != nil || r.status != 200 || r.body != "ok" {
		t.Errorf("the request in flight on the removed listener: %d %q %v", r.status, r.body, r.err)
	}
}

// TestRemovedListenerDrainIsBounded: a request that outlasts the drain
// timeout has its connection closed, so a removed listener goes away.
func TestRemovedListenerDrainIsBounded(t *testing.T) {
	up, arrived, release := slowUpstream(t)
	gw := proxytest.Start(t, listenersYAML("    - {name: a, port: 8081}\n    - {name: b, port: 8082}\n", up.URL),
		func(o *proxy.Options) { o.DrainTimeout = 100 * time.Millisecond })
	inFlight := getAsync("http://"+gw.GW.Addrs()["b"]+"/slow", proxytest.Client())
	receive(t, arrived, "request at the upstream")
	if err := gw.Reload(t, listenersYAML("    - {name: a, port: 8081}\n", up.URL)); err != nil {
		t.Fatal(err)
	}
	if r := receive(t, inFlight, "end of the request in flight"); r.err == nil {
		t.Errorf("a request held past the drain timeout was answered %d", r.status)
	}
	release()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(gw.Logs.String(), "listener drained with requests still running") {
		if time.Now().After(deadline) {
			t.Fatalf("no log line about the cut-off drain:\n%s", gw.Logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReloadWithPortInUseKeepsEveryListener: a reload whose new listener
// cannot bind fails, names the listener and the address, and leaves every
// listener serving as before, including one the reload would have removed.
func TestReloadWithPortInUseKeepsEveryListener(t *testing.T) {
	up := proxytest.StartUpstream(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	gw := proxytest.Start(t, listenersYAML("    - {name: a, port: 8081}\n    - {name: b, port: 8082}\n", up.URL),
		func(o *proxy.Options) {
			o.ListenerAddr = func(l config.Listener) string {
				if l.Name == "blocked" {
					return busy.Addr().String()
				}
				return "127.0.0.1:0"
			}
		})
	before, hash := gw.GW.Addrs(), gw.GW.Config().Hash
	err = gw.Reload(t, listenersYAML("    - {name: a, port: 8081}\n    - {name: c, port: 8083}\n    - {name: blocked, port: 9000}\n", up.URL))
	if err == nil || !strings.Contains(err.Error(), `listener "blocked"`) || !strings.Contains(err.Error(), busy.Addr().String()) ||
		!strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("reload onto a busy port: %v", err)
	}
	if after := gw.GW.Addrs(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("listeners after the failed reload: %v, before: %v", after, before)
	}
	if gw.GW.Config().Hash != hash {
		t.Error("the failed reload changed the config in force")
	}
	for _, name := range []string{"a", "b"} {
		if r := receive(t, getAsync("http://"+before[name]+"/x", proxytest.Client()), "answer"); r.status != 200 {
			t.Errorf("listener %s after the failed reload: %d %v", name, r.status, r.err)
		}
	}
	if !strings.Contains(gw.Logs.String(), "the previous config keeps serving") {
		t.Error("the failed reload was not logged")
	}
}

// TestReloadSwitchesProtocolOnTheSamePort: a listener that becomes HTTPS
// keeps its port, which never closes, and speaks TLS from the reload on.
func TestReloadSwitchesProtocolOnTheSamePort(t *testing.T) {
	up := proxytest.StartUpstream(t)
	certFile, keyFile := proxytest.WriteCert(t, t.TempDir(), "edge")
	gw := proxytest.Start(t, listenersYAML("    - {name: edge, port: 8443}\n", up.URL))
	addr := gw.GW.Addrs()["edge"]
	err := gw.Reload(t, listenersYAML(fmt.Sprintf("    - name: edge\n      port: 8443\n      tls:\n        certificates: [{certFile: %s, keyFile: %s}]\n",
		certFile, keyFile), up.URL))
	if err != nil {
		t.Fatal(err)
	}
	if got := gw.GW.Addrs()["edge"]; got != addr {
		t.Fatalf("the listener moved from %s to %s", addr, got)
	}
	if r := receive(t, getAsync("https://"+addr+"/x", proxytest.Client()), "answer over TLS"); r.status != 200 {
		t.Errorf("HTTPS after the reload: %d %v", r.status, r.err)
	}
	if got := up.Last(t).Header["X-Forwarded-Proto"]; got != "https" {
		t.Errorf("X-Forwarded-Proto = %q", got)
	}
}

func tlsListenerYAML(name, port, tlsFields string) string {
	return fmt.Sprintf("    - name: %s\n      port: %s\n      tls:\n%s", name, port, tlsFields)
}

func certsYAML(certFile, keyFile string) string {
	return fmt.Sprintf("        certificates: [{certFile: %s, keyFile: %s}]\n", certFile, keyFile)
}

// TestReloadChangesCertificateForNewHandshakes: a reload that names other
// certificate files serves them to the next handshake (not at the next
// poll), while a connection made before keeps working.
func TestReloadChangesCertificateForNewHandshakes(t *testing.T) {
	up := proxytest.StartUpstream(t)
	c1, k1 := proxytest.WriteCert(t, t.TempDir(), "first")
	c2, k2 := proxytest.WriteCert(t, t.TempDir(), "second")
	gw := proxytest.Start(t, listenersYAML(tlsListenerYAML("edge", "8443", certsYAML(c1, k1)), up.URL),
		func(o *proxy.Options) { o.CertPollInterval = time.Hour })
	if cn, _, _ := serverCert(t, gw.URL); cn != "first" {
		t.Fatalf("certificate %q", cn)
	}
	old, err := tls.Dial("tcp", strings.TrimPrefix(gw.URL, "https://"), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // test certificate
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := gw.Reload(t, listenersYAML(tlsListenerYAML("edge", "8443", certsYAML(c2, k2)), up.URL)); err != nil {
		t.Fatal(err)
	}
	if cn, _, _ := serverCert(t, gw.URL); cn != "second" {
		t.Errorf("after the reload a new handshake sees %q", cn)
	}
	if _, err := fmt.Fprint(old, "GET /x HTTP/1.1\r\nHost: gw\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	var resp fasthttp.Response
	_ = old.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := resp.Read(bufio.NewReader(old)); err != nil || resp.StatusCode() != 200 {
		t.Errorf("a connection made before the reload: %d %v", resp.StatusCode(), err)
	}
}

// TestInlineCertificates: a listener whose certificate is PEM text (a Flex
// tls policy) serves it, a reload with another one serves that to new
// handshakes, and /config shows its subject, never its key.
func TestInlineCertificates(t *testing.T) {
	up := proxytest.StartUpstream(t)
	ca := proxytest.NewCA(t, "test CA")
	dir := t.TempDir()
	load := func(cn string) *config.Config {
		c, k := proxytest.WriteCert(t, t.TempDir(), "placeholder")
		path := proxytest.WriteFile(t, dir, "gateway.yaml", []byte(listenersYAML(tlsListenerYAML("secure", "8443", certsYAML(c, k)), up.URL)))
		cfg, err := config.Load([]string{path})
		if err != nil {
			t.Fatal(err)
		}
		// What the Flex loader makes of a tls policy's certificate.
		crt, key := ca.Issue(t, cn)
		tl := *cfg.Listeners[0].TLS
		tl.Certificates = []config.Certificate{{CertPEM: crt, KeyPEM: key}}
		cfg.Listeners[0].TLS = &tl
		return cfg
	}
	gw := proxytest.StartConfig(t, load("inline-one"), dir)
	if cn, _, _ := serverCert(t, gw.URL); cn != "inline-one" {
		t.Fatalf("certificate %q", cn)
	}
	if err := gw.GW.Apply(load("inline-two")); err != nil {
		t.Fatal(err)
	}
	if cn, _, _ := serverCert(t, gw.URL); cn != "inline-two" {
		t.Errorf("after the reload a new handshake sees %q", cn)
	}
	resp := proxytest.Do(t, "GET", gw.AdminURL+"/config", nil, nil)
	defer fasthttp.ReleaseResponse(resp)
	if body := string(resp.Body()); strings.Contains(body, "PRIVATE KEY") || !strings.Contains(body, "CN=inline-two") ||
		!strings.Contains(body, `"key": "[redacted]"`) {
		t.Errorf("/config shows the inline certificate as:\n%s", body)
	}
}

// TestMutualTLS: with a client CA, a client certificate from another CA is
// refused; with requireClientCertificate a client without one is refused
// too, without it such a client is served.
func TestMutualTLS(t *testing.T) {
	up := proxytest.StartUpstream(t)
	dir := t.TempDir()
	ca, other := proxytest.NewCA(t, "clients"), proxytest.NewCA(t, "strangers")
	caFile := proxytest.WriteFile(t, dir, "clients-ca.crt", ca.PEM)
	certFile, keyFile := proxytest.WriteCert(t, dir, "gateway")
	tlsFields := certsYAML(certFile, keyFile) + "        clientCAFile: " + caFile + "\n"
	gw := proxytest.Start(t, listenersYAML(
		tlsListenerYAML("required", "8443", tlsFields+"        requireClientCertificate: true\n")+
			tlsListenerYAML("optional", "8444", tlsFields), up.URL))
	clients := map[string]*fasthttp.Client{"none": proxytest.Client(), "stranger": proxytest.Client(), "client": proxytest.Client()}
	// Sent whatever CAs the gateway asks for (Go's client would send none).
	stranger := other.ClientCert(t, "stranger")
	clients["stranger"].TLSConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return &stranger, nil
	}
	clients["client"].TLSConfig.Certificates = []tls.Certificate{ca.ClientCert(t, "client")}
	for _, c := range []struct {
		listener, client string
		served           bool
	}{
		{"required", "none", false}, {"required", "stranger", false}, {"required", "client", true},
		{"optional", "none", true}, {"optional", "stranger", false}, {"optional", "client", true},
	} {
		r := receive(t, getAsync(gw.URLs[c.listener]+"/x", clients[c.client]), "answer")
		if served := r.err == nil && r.status == 200; served != c.served {
			t.Errorf("listener %s, client certificate %s: served %v (%d %v), want %v", c.listener, c.client, served, r.status, r.err, c.served)
		}
	}
}

// TestTLSVersionsALPNAndCiphers: minVersion and maxVersion bound the
// version, ciphers the TLS 1.2 suites, and ALPN offers http/1.1 even when
// h2 is listed first.
func TestTLSVersionsALPNAndCiphers(t *testing.T) {
	up := proxytest.StartUpstream(t)
	certFile, keyFile := proxytest.WriteCert(t, t.TempDir(), "gateway") // ECDSA
	gw := proxytest.Start(t, listenersYAML(
		tlsListenerYAML("modern", "8443", certsYAML(certFile, keyFile)+"        minVersion: \"1.3\"\n")+
			tlsListenerYAML("legacy", "8444", certsYAML(certFile, keyFile)+
				"        maxVersion: \"1.2\"\n        alpn: [h2, http/1.1]\n        ciphers: [TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]\n"),
		up.URL))
	dial := func(listener string, conf *tls.Config) (tls.ConnectionState, error) {
		conf.InsecureSkipVerify = true
		c, err := tls.Dial("tcp", strings.TrimPrefix(gw.URLs[listener], "https://"), conf)
		if err != nil {
			return tls.ConnectionState{}, err
		}
		defer c.Close()
		return c.ConnectionState(), nil
	}
	if _, err := dial("modern", &tls.Config{MaxVersion: tls.VersionTLS12}); err == nil {
		t.Error("a TLS 1.2 client got through minVersion 1.3")
	}
	if st, err := dial("modern", &tls.Config{}); err != nil || st.Version != tls.VersionTLS13 {
		t.Errorf("a TLS 1.3 client: version %x, %v", st.Version, err)
	}
	st, err := dial("legacy", &tls.Config{NextProtos: []string{"h2", "http/1.1"}})
	if err != nil || st.Version != tls.VersionTLS12 || st.CipherSuite != tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 ||
		st.NegotiatedProtocol != "http/1.1" {
		t.Errorf("legacy listener: version %x, cipher %s, ALPN %q, %v", st.Version, tls.CipherSuiteName(st.CipherSuite), st.NegotiatedProtocol, err)
	}
	if _, err := dial("legacy", &tls.Config{CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}); err == nil {
		t.Error("a client without the configured cipher suite got through")
	}
	if r := receive(t, getAsync(gw.URLs["legacy"]+"/x", proxytest.Client()), "answer"); r.status != 200 {
		t.Errorf("request on the legacy listener: %d %v", r.status, r.err)
	}
}

// TestReloadOfServerLimitsApplies: the limits the listening servers are
// built with reload too: the listeners are rebuilt on their sockets, and
// new connections get the new limits.
func TestReloadOfServerLimitsApplies(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, routeYAML("r", up.URL))
	big := map[string]string{"X-Big": strings.Repeat("b", 20<<10)}
	resp := proxytest.Do(t, "GET", gw.URL+"/x", big, nil)
	if resp.StatusCode() != 200 {
		t.Fatalf("a 20 KiB header under the default maxHeaderSize: %d", resp.StatusCode())
	}
	fasthttp.ReleaseResponse(resp)
	addr := gw.GW.Addrs()["http"]
	if err := gw.Reload(t, routeYAML("r", up.URL)+"  limits: {readTimeout: 5s, maxHeaderSize: 16KiB}\n"); err != nil {
		t.Fatal(err)
	}
	if got := gw.GW.Config().Limits.ReadTimeout; got != 5*time.Second {
		t.Errorf("the config in force has readTimeout %s", got)
	}
	if got := gw.GW.Addrs()["http"]; got != addr {
		t.Errorf("the listener moved from %s to %s", addr, got)
	}
	resp = proxytest.Do(t, "GET", gw.URL+"/x", big, nil)
	if resp.StatusCode() != 431 {
		t.Errorf("a 20 KiB header after reloading maxHeaderSize 16KiB: %d", resp.StatusCode())
	}
	fasthttp.ReleaseResponse(resp)
	// Limits read per request reload live.
	if err := gw.Reload(t, routeYAML("r", up.URL)+"  limits: {readTimeout: 5s, maxHeaderSize: 16KiB, maxRequestBodySize: 1KiB}\n"); err != nil {
		t.Fatal(err)
	}
	resp = proxytest.Do(t, "POST", gw.URL+"/x", nil, make([]byte, 2048))
	defer fasthttp.ReleaseResponse(resp)
	if resp.StatusCode() != 413 {
		t.Errorf("after reloading maxRequestBodySize 1KiB, a 2 KiB body: %d", resp.StatusCode())
	}
}

// TestReloadOntoAPortItGivesUpSaysSo: an address written differently that
// binds the port a listener of the gateway holds cannot open in the same
// reload; the error says which listener holds it and what to do.
func TestReloadOntoAPortItGivesUpSaysSo(t *testing.T) {
	up := proxytest.StartUpstream(t)
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := free.Addr().(*net.TCPAddr).Port
	free.Close()
	gw := proxytest.Start(t, listenersYAML(fmt.Sprintf("    - {name: a, port: %d, address: 127.0.0.1}\n", port), up.URL),
		func(o *proxy.Options) { o.ListenerAddr = nil })
	err = gw.Reload(t, listenersYAML(fmt.Sprintf("    - {name: a, port: %d}\n", port), up.URL))
	if err == nil || !strings.Contains(err.Error(), `listener "a" of this gateway holds that port`) ||
		!strings.Contains(err.Error(), "two reloads") {
		t.Fatalf("reload onto the port the gateway holds: %v", err)
	}
	if r := receive(t, getAsync(fmt.Sprintf("http://127.0.0.1:%d/x", port), proxytest.Client()), "answer"); r.status != 200 {
		t.Errorf("listener a after the failed reload: %d %v", r.status, r.err)
	}
}

// TestMutualTLSResumptionFollowsClientCAs: a session resumes with the
// client certificate verified when it began; once clientCAFile no longer
// trusts that certificate's CA, the session does not resume (tickets live
// for days, and on every replica that shares their keys), while a CA
// bundle that still trusts it lets it resume. crypto/tls checks a resumed
// session's chains against the config's current ClientCAs, which a reload
// replaces.
func TestMutualTLSResumptionFollowsClientCAs(t *testing.T) {
	up := proxytest.StartUpstream(t)
	dir := t.TempDir()
	ca, other := proxytest.NewCA(t, "clients"), proxytest.NewCA(t, "others")
	certFile, keyFile := proxytest.WriteCert(t, dir, "gateway")
	caFile := proxytest.WriteFile(t, dir, "clients-ca.crt", ca.PEM)
	cfg := func(caFile string) string {
		return listenersYAML(tlsListenerYAML("edge", "8443", certsYAML(certFile, keyFile)+
			"        clientCAFile: "+caFile+"\n        requireClientCertificate: true\n"), up.URL)
	}
	gw := proxytest.Start(t, cfg(caFile), func(o *proxy.Options) { o.CertPollInterval = time.Hour })
	cert := ca.ClientCert(t, "client")
	for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		cache := tls.NewLRUClientSessionCache(4)
		dial := func() (resumed bool, err error) {
			conn, err := tls.Dial("tcp", strings.TrimPrefix(gw.URLs["edge"], "https://"), &tls.Config{
				InsecureSkipVerify: true, ClientSessionCache: cache, MaxVersion: v, //nolint:gosec // self-signed test certificate
				Certificates: []tls.Certificate{cert},
			})
			if err != nil {
				return false, err
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(conn, "GET /x HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n"); err != nil {
				return false, err
			}
			answer, err := io.ReadAll(conn)
			if err != nil || !strings.HasPrefix(string(answer), "HTTP/1.1 200") {
				return false, fmt.Errorf("answer %q: %v", answer, err)
			}
			return conn.ConnectionState().DidResume, nil
		}
		if err := gw.Reload(t, cfg(caFile)); err != nil {
			t.Fatal(err)
		}
		if resumed, err := dial(); err != nil || resumed {
			t.Fatalf("TLS %x: first handshake: resumed %v, %v", v, resumed, err)
		}
		if resumed, err := dial(); err != nil || !resumed {
			t.Fatalf("TLS %x: second handshake: resumed %v, %v", v, resumed, err)
		}
		both := proxytest.WriteFile(t, dir, "both-ca.crt", append(append([]byte{}, ca.PEM...), other.PEM...))
		if err := gw.Reload(t, cfg(both)); err != nil {
			t.Fatal(err)
		}
		if resumed, err := dial(); err != nil || !resumed {
			t.Errorf("TLS %x: with the client's CA still trusted: resumed %v, %v", v, resumed, err)
		}
		if err := gw.Reload(t, cfg(proxytest.WriteFile(t, dir, "others-ca.crt", other.PEM))); err != nil {
			t.Fatal(err)
		}
		if resumed, err := dial(); err == nil {
			t.Errorf("TLS %x: with the client's CA no longer trusted, the client was served (resumed %v)", v, resumed)
		}
	}
}
