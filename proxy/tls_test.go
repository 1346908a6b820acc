package proxy_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/flexgate/flexgate/proxy"
	"github.com/flexgate/flexgate/proxy/proxytest"
)

func tlsConfigYAML(certFile, keyFile, upstream string) string {
	return fmt.Sprintf(`
apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata: {name: edge}
spec:
  listeners:
    - name: https-main
      port: 8443
      protocol: HTTPS
      tls:
        mode: TERMINATE
        certificates:
          - certFile: %s
            keyFile: %s
  routes:
    - id: api-v1
      path: ["/api/v1/*"]
      upstream: {url: "%s"}
`, certFile, keyFile, upstream)
}

// serverCert dials the listener and returns the certificate it presents
// and the negotiated protocol.
func serverCert(t *testing.T, url string) (commonName, alpn string, version uint16) {
	t.Helper()
	conn, err := tls.Dial("tcp", strings.TrimPrefix(url, "https://"), &tls.Config{
		InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}, //nolint:gosec // self-signed test certificate
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st := conn.ConnectionState()
	return st.PeerCertificates[0].Subject.CommonName, st.NegotiatedProtocol, st.Version
}

func TestTLSTerminationAndRotation(t *testing.T) {
	up := proxytest.StartUpstream(t)
	dir := t.TempDir()
	certFile, keyFile := proxytest.WriteCert(t, dir, "first")
	gw := proxytest.Start(t, tlsConfigYAML(certFile, keyFile, up.URL), func(o *proxy.Options) {
		o.CertPollInterval = 50 * time.Millisecond
	})
	if !strings.HasPrefix(gw.URL, "https://") {
		t.Fatalf("listener URL %s", gw.URL)
	}
	resp := proxytest.Do(t, "GET", gw.URL+"/api/v1/hello", nil, nil)
	if resp.StatusCode() != 200 {
		t.Fatalf("status %d", resp.StatusCode())
	}
	if got := up.Last(t).Header["X-Forwarded-Proto"]; got != "https" {
		t.Errorf("X-Forwarded-Proto = %q, want https", got)
	}
	cn, alpn, version := serverCert(t, gw.URL)
	if cn != "first" || alpn != "http/1.1" || version < tls.VersionTLS12 {
		t.Fatalf("got cert %q, ALPN %q, version %x", cn, alpn, version)
	}
	// TLS 1.1 is refused.
	if c, err := tls.Dial("tcp", strings.TrimPrefix(gw.URL, "https://"), &tls.Config{
		InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11, //nolint:gosec // checking that old versions are refused
	}); err == nil {
		c.Close()
		t.Error("a TLS 1.1 handshake succeeded")
	}

	// Rotate: a new certificate in the same files is served without a restart.
	proxytest.WriteCert(t, dir, "second")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if cn, _, _ := serverCert(t, gw.URL); cn == "second" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the rotated certificate was not served within 10 seconds")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMissingCertificateIsAClearError(t *testing.T) {
	cfgText := tlsConfigYAML("/nonexistent/tls.crt", "/nonexistent/tls.key", "http://127.0.0.1:1")
	tb := &fatalRecorder{TB: t}
	func() {
		defer func() { _ = recover() }()
		proxytest.Start(tb, cfgText)
	}()
	if !strings.Contains(tb.msg, "cannot read certificate file /nonexistent/tls.crt") ||
		!strings.Contains(tb.msg, "gateway.yaml:") {
		t.Fatalf("error %q does not name the file and the config position", tb.msg)
	}
}

// fatalRecorder captures a Fatalf instead of failing the test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic("fatal")
}

func (f *fatalRecorder) Helper() {}

// resumes connects with the client session cache, sends one request and
// reads the answer (a TLS 1.3 ticket arrives after the handshake), and
// says whether the handshake resumed a session.
func resumes(t *testing.T, url string, cache tls.ClientSessionCache, maxVersion uint16) bool {
	t.Helper()
	conn, err := tls.Dial("tcp", strings.TrimPrefix(url, "https://"), &tls.Config{
		InsecureSkipVerify: true, ClientSessionCache: cache, MaxVersion: maxVersion, //nolint:gosec // self-signed test certificate
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, "GET /api/v1/hello HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(conn); err != nil {
		t.Fatal(err)
	}
	return conn.ConnectionState().DidResume
}

// TestTLSSessionsResume checks that a client's second handshake resumes its
// session (TLS 1.3 tickets and TLS 1.2 session tickets), and that sessions
// keep resuming after the certificate is rotated: the session ticket keys
// outlive the listener's TLS settings.
func TestTLSSessionsResume(t *testing.T) {
	up := proxytest.StartUpstream(t)
	dir := t.TempDir()
	certFile, keyFile := proxytest.WriteCert(t, dir, "first")
	gw := proxytest.Start(t, tlsConfigYAML(certFile, keyFile, up.URL), func(o *proxy.Options) {
		o.CertPollInterval = 50 * time.Millisecond
	})
	caches := map[uint16]tls.ClientSessionCache{}
	for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		caches[v] = tls.NewLRUClientSessionCache(4)
		if resumes(t, gw.URL, caches[v], v) {
			t.Fatalf("TLS %x: the first handshake claims to resume", v)
		}
		if !resumes(t, gw.URL, caches[v], v) {
			t.Fatalf("TLS %x: the second handshake did not resume the first's session", v)
		}
	}

	proxytest.WriteCert(t, dir, "second")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if cn, _, _ := serverCert(t, gw.URL); cn == "second" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the rotated certificate was not served within 10 seconds")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		if !resumes(t, gw.URL, caches[v], v) {
			t.Errorf("TLS %x: a session from before the certificate rotation did not resume", v)
		}
	}
}

// TestTLSSessionsResumeAcrossReloads: a session made before a reload
// resumes after it, whether the reload keeps the listener (the control),
// builds it anew on its socket (changed limits, a new name, other
// certificates, plain HTTP for a while) or removes it and a later one
// restores it; a new certificate still serves new handshakes, and a
// session does not resume on another listener.
func TestTLSSessionsResumeAcrossReloads(t *testing.T) {
	up := proxytest.StartUpstream(t)
	c1, k1 := proxytest.WriteCert(t, t.TempDir(), "first")
	c2, k2 := proxytest.WriteCert(t, t.TempDir(), "second")
	other := tlsListenerYAML("other", "8444", certsYAML(c1, k1))
	edge := func(name, certFile, keyFile string) string {
		return tlsListenerYAML(name, "8443", certsYAML(certFile, keyFile)) + other
	}
	gw := proxytest.Start(t, listenersYAML(edge("edge", c1, k1), up.URL),
		func(o *proxy.Options) { o.CertPollInterval = time.Hour })
	versions := []uint16{tls.VersionTLS13, tls.VersionTLS12}
	// Go's client keys its cache by server name, here 127.0.0.1 whatever
	// the port, so that a listener restored on another port is offered the
	// session too.
	caches := map[uint16]tls.ClientSessionCache{}
	for _, v := range versions {
		caches[v] = tls.NewLRUClientSessionCache(4)
		if resumes(t, gw.URL, caches[v], v) {
			t.Fatalf("TLS %x: the first handshake claims to resume", v)
		}
	}
	for _, c := range []struct {
		what, listeners, limits string
		name, cn                string // the listener on 8443 and its certificate; none: no TLS there
	}{
		{"a reload that keeps the listener", edge("edge", c1, k1), "", "edge", "first"},
		{"a reload that changes limits", edge("edge", c1, k1), "{readTimeout: 5s}", "edge", "first"},
		{"a reload that renames the listener", edge("front", c1, k1), "{readTimeout: 5s}", "front", "first"},
		{"a reload that changes limits and certificates", edge("front", c2, k2), "{readTimeout: 6s}", "front", "second"},
		{"a reload that makes the listener plain HTTP", "    - {name: front, port: 8443}\n" + other, "", "", ""},
		{"a reload that makes it HTTPS again", edge("front", c2, k2), "", "front", "second"},
		{"a reload that removes the listener", other, "", "", ""},
		{"a reload that restores it", edge("front", c2, k2), "", "front", "second"},
	} {
		cfg := listenersYAML(c.listeners, up.URL)
		if c.limits != "" {
			cfg += "  limits: " + c.limits + "\n"
		}
		if err := gw.Reload(t, cfg); err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		if c.cn == "" {
			continue
		}
		url := "https://" + gw.GW.Addrs()[c.name]
		if cn, _, _ := serverCert(t, url); cn != c.cn {
			t.Errorf("after %s a new handshake sees certificate %q, want %q", c.what, cn, c.cn)
		}
		for _, v := range versions {
			if !resumes(t, url, caches[v], v) {
				t.Errorf("TLS %x: after %s, a session from before it did not resume", v, c.what)
			}
		}
	}
	for _, v := range versions {
		if resumes(t, "https://"+gw.GW.Addrs()["other"], caches[v], v) {
			t.Errorf("TLS %x: a session of one listener resumed on another", v)
		}
	}
}
