package proxy_test

import (
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flexgate/flexgate/proxy"
	"github.com/flexgate/flexgate/proxy/proxytest"
)

// writeTicketKey writes n random bytes to dir/name, as `openssl rand n`
// does for nginx's ssl_session_ticket_key, and returns the path.
func writeTicketKey(t *testing.T, dir, name string, n int) string {
	t.Helper()
	b := make([]byte, n)
	_, _ = rand.Read(b)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// ticketKeysYAML is a listener edge on 8443 with the certificate and the
// session ticket key files given; none: the gateway's own keys.
func ticketKeysYAML(certFile, keyFile, upstream string, keys ...string) string {
	fields := certsYAML(certFile, keyFile)
	if len(keys) > 0 {
		fields += "        sessionTicketKeys: [" + strings.Join(keys, ", ") + "]\n"
	}
	return listenersYAML(tlsListenerYAML("edge", "8443", fields), upstream)
}

var tlsVersions = []uint16{tls.VersionTLS13, tls.VersionTLS12}

// ticketFrom makes a full handshake with gw and returns a client session
// cache holding the ticket it issued. Go's client keys its cache by server
// name, 127.0.0.1 whatever the port, so another gateway is offered it too.
func ticketFrom(t *testing.T, gw *proxytest.Gateway, version uint16) tls.ClientSessionCache {
	t.Helper()
	cache := tls.NewLRUClientSessionCache(4)
	if resumes(t, gw.URL, cache, version) {
		t.Fatalf("TLS %x: a handshake without a ticket claims to resume", version)
	}
	return cache
}

// TestSessionTicketKeysResumeAcrossGateways: two gateways that name the
// same key files resume each other's sessions, as replicas behind one
// Service; with other keys, or with each its own, they do not.
func TestSessionTicketKeysResumeAcrossGateways(t *testing.T) {
	up := proxytest.StartUpstream(t)
	dir := t.TempDir()
	certFile, keyFile := proxytest.WriteCert(t, dir, "edge")
	shared := writeTicketKey(t, dir, "shared.key", 80)
	other := writeTicketKey(t, dir, "other.key", 48)
	start := func(keys ...string) *proxytest.Gateway {
		return proxytest.Start(t, ticketKeysYAML(certFile, keyFile, up.URL, keys...))
	}
	a, b, c := start(shared), start(shared), start(other)
	own1, own2 := start(), start()
	for _, v := range tlsVersions {
		if !resumes(t, b.URL, ticketFrom(t, a, v), v) {
			t.Errorf("TLS %x: a session from one gateway did not resume on another with the same key file", v)
		}
		if resumes(t, c.URL, ticketFrom(t, a, v), v) {
			t.Errorf("TLS %x: a session resumed on a gateway with another key file", v)
		}
		if resumes(t, own2.URL, ticketFrom(t, own1, v), v) {
			t.Errorf("TLS %x: a session resumed on another gateway, both without sessionTicketKeys", v)
		}
		// A gateway's own keys do not read the tickets of shared ones.
		if resumes(t, own1.URL, ticketFrom(t, a, v), v) {
			t.Errorf("TLS %x: a session under a shared key resumed on a gateway without sessionTicketKeys", v)
		}
		// A gateway with a 48-byte key file (nginx's shorter form) resumes
		// its own sessions.
		if !resumes(t, c.URL, ticketFrom(t, c, v), v) {
			t.Errorf("TLS %x: a gateway with a 48-byte key file did not resume its own session", v)
		}
	}
}

// TestSessionTicketKeysRotate: with [new, old], tickets issued under old
// still resume and new tickets are issued under new, so that a fleet can
// roll new keys in without a wave of full handshakes.
func TestSessionTicketKeysRotate(t *testing.T) {
	up := proxytest.StartUpstream(t)
	dir := t.TempDir()
	certFile, keyFile := proxytest.WriteCert(t, dir, "edge")
	oldKey := writeTicketKey(t, dir, "old.key", 80)
	newKey := writeTicketKey(t, dir, "new.key", 80)
	start := func(keys ...string) *proxytest.Gateway {
		return proxytest.Start(t, ticketKeysYAML(certFile, keyFile, up.URL, keys...))
	}
	before, rotating := start(oldKey), start(newKey, oldKey)
	newOnly, oldOnly := start(newKey), start(oldKey)
	for _, v := range tlsVersions {
		if !resumes(t, rotating.URL, ticketFrom(t, before, v), v) {
			t.Errorf("TLS %x: a ticket under the old key did not resume with [new, old]", v)
		}
		if !resumes(t, newOnly.URL, ticketFrom(t, rotating, v), v) {
			t.Errorf("TLS %x: a ticket issued with [new, old] did not resume under the new key alone", v)
		}
		if resumes(t, oldOnly.URL, ticketFrom(t, rotating, v), v) {
			t.Errorf("TLS %x: a ticket issued with [new, old] resumed under the old key alone: it was not encrypted with the first", v)
		}
	}
}

// TestSessionTicketKeysReload: a reload reads the key files again, those it
// names and the content of the same files; the poll that re-reads
// certificates applies a changed key file without a reload; a key file
// that cannot be used leaves the keys in use serving, and neither the
// error nor the log says what a file holds.
func TestSessionTicketKeysReload(t *testing.T) {
	up := proxytest.StartUpstream(t)
	dir := t.TempDir()
	certFile, keyFile := proxytest.WriteCert(t, dir, "edge")
	k1 := writeTicketKey(t, dir, "k1.key", 80)
	k2 := writeTicketKey(t, dir, "k2.key", 80)
	k3 := writeTicketKey(t, dir, "k3.key", 80)
	peer2 := proxytest.Start(t, ticketKeysYAML(certFile, keyFile, up.URL, k2))
	peer3 := proxytest.Start(t, ticketKeysYAML(certFile, keyFile, up.URL, k3))
	current := filepath.Join(dir, "current.key")
	copyFile(t, k1, current)
	gw := proxytest.Start(t, ticketKeysYAML(certFile, keyFile, up.URL, current), func(o *proxy.Options) { o.CertPollInterval = time.Hour })
	resumesFrom := func(peer *proxytest.Gateway) bool {
		t.Helper()
		return resumes(t, gw.URL, ticketFrom(t, peer, tls.VersionTLS13), tls.VersionTLS13)
	}
	if resumesFrom(peer2) {
		t.Fatal("a ticket under k2 resumed on a gateway with k1")
	}
	if err := gw.Reload(t, ticketKeysYAML(certFile, keyFile, up.URL, k2)); err != nil {
		t.Fatal(err)
	}
	if !resumesFrom(peer2) {
		t.Error("after a reload that names k2, a ticket under k2 did not resume")
	}

	// The same file with other content, and the same config: the reload
	// reads it again.
	if err := gw.Reload(t, ticketKeysYAML(certFile, keyFile, up.URL, current)); err != nil {
		t.Fatal(err)
	}
	copyFile(t, k3, current)
	if resumesFrom(peer3) {
		t.Fatal("a changed key file took effect with neither reload nor poll")
	}
	if err := gw.Reload(t, ticketKeysYAML(certFile, keyFile, up.URL, current)); err != nil {
		t.Fatal(err)
	}
	if !resumesFrom(peer3) {
		t.Error("after a reload, the new content of a key file did not serve")
	}

	// A reload with a key file that cannot be used fails with its place in
	// the config, and the keys in use go on serving.
	secret := strings.Repeat("hunter2-", 3)
	short := filepath.Join(dir, "short.key")
	if err := os.WriteFile(short, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := ticketKeysYAML(certFile, keyFile, up.URL, short)
	err := gw.Reload(t, bad)
	if err == nil || !strings.Contains(err.Error(), positionOf(t, gw, bad, short)+`: listener "edge": session ticket key file `+short+" holds 24 bytes") ||
		strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("reload with a 24-byte key file: error %v, want its position and size, not its content", err)
	}
	if !resumesFrom(peer3) {
		t.Error("after a failed reload, the keys in use did not serve")
	}
	if resumesFrom(peer2) {
		t.Error("after a failed reload, a ticket under a key no longer configured resumed")
	}

	// The poll: a new gateway, same files, re-reads them every 50ms.
	gw = proxytest.Start(t, ticketKeysYAML(certFile, keyFile, up.URL, current), func(o *proxy.Options) { o.CertPollInterval = 50 * time.Millisecond })
	if !resumesFrom(peer3) {
		t.Fatal("a ticket under k3 did not resume on a gateway with k3")
	}
	copyFile(t, k2, current)
	waitFor(t, "a changed key file serves without a reload", func() bool { return resumesFrom(peer2) })
	if err := os.WriteFile(current, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the poll has logged the short key file", func() bool {
		return strings.Contains(gw.Logs.String(), "session ticket key file "+current+" holds 24 bytes")
	})
	if strings.Contains(gw.Logs.String(), "hunter2") {
		t.Error("the log holds the content of a key file")
	}
	if !resumesFrom(peer2) {
		t.Error("after a key file the poll could not use, the keys in use did not serve")
	}
}

// TestSessionTicketKeysReplaceGeneratedKeys: while a listener names key
// files, the keys the gateway made for its address neither encrypt nor
// decrypt; a reload that removes the files brings them back, with the
// sessions they issued.
func TestSessionTicketKeysReplaceGeneratedKeys(t *testing.T) {
	up := proxytest.StartUpstream(t)
	dir := t.TempDir()
	certFile, keyFile := proxytest.WriteCert(t, dir, "edge")
	shared := writeTicketKey(t, dir, "shared.key", 80)
	gw := proxytest.Start(t, ticketKeysYAML(certFile, keyFile, up.URL), func(o *proxy.Options) { o.CertPollInterval = time.Hour })
	peer := proxytest.Start(t, ticketKeysYAML(certFile, keyFile, up.URL, shared))
	for _, v := range tlsVersions {
		// Offered again and again: the handshakes that do not resume it
		// would store their own tickets in its place.
		generated := frozenCache{ticketFrom(t, gw, v)}
		if err := gw.Reload(t, ticketKeysYAML(certFile, keyFile, up.URL, shared)); err != nil {
			t.Fatal(err)
		}
		if resumes(t, gw.URL, generated, v) {
			t.Errorf("TLS %x: with sessionTicketKeys, a ticket under the address's generated key resumed", v)
		}
		if !resumes(t, peer.URL, ticketFrom(t, gw, v), v) {
			t.Errorf("TLS %x: with sessionTicketKeys, a new ticket was not encrypted with the shared key", v)
		}
		if err := gw.Reload(t, ticketKeysYAML(certFile, keyFile, up.URL)); err != nil {
			t.Fatal(err)
		}
		if !resumes(t, gw.URL, generated, v) {
			t.Errorf("TLS %x: after a reload that removes sessionTicketKeys, a ticket under the generated key did not resume", v)
		}
	}
}

// frozenCache offers the sessions its cache holds and stores no more.
type frozenCache struct{ tls.ClientSessionCache }

func (frozenCache) Put(string, *tls.ClientSessionState) {}

// TestSessionTicketKeyFileErrors: a key file that cannot serve is a
// config error at its entry in the config that says how to fix it, and
// never shows what the file holds.
func TestSessionTicketKeyFileErrors(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := proxytest.WriteCert(t, dir, "edge")
	good := writeTicketKey(t, dir, "good.key", 80)
	empty := filepath.Join(dir, "empty.key")
	short := filepath.Join(dir, "short.key")
	twin := filepath.Join(dir, "twin.key")
	for path, content := range map[string]string{empty: "", short: "secret-31-bytes-long-xxxxxxxxxx"} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, good, twin)
	for _, c := range []struct {
		what string
		keys []string
		bad  string // the entry the error is at
		want string
	}{
		{"missing", []string{good, "/nonexistent/ticket.key"}, "/nonexistent/ticket.key",
			"cannot read session ticket key file /nonexistent/ticket.key: no such file or directory (mount the Secret that holds the keys there, or fix tls.sessionTicketKeys)"},
		{"a directory", []string{dir}, dir, "cannot read session ticket key file " + dir + ": a directory, not a regular file"},
		{"empty", []string{empty}, empty, "session ticket key file " + empty + " is empty; write a new key with `openssl rand 80 > FILE`"},
		{"too short", []string{good, short}, short, "session ticket key file " + short + " holds 31 bytes, fewer than the 32 a key needs; write a new key"},
		{"two files with one key", []string{good, twin}, twin, "session ticket key file " + twin + " holds the same key as " + good + " (at "},
	} {
		t.Run(c.what, func(t *testing.T) {
			cfgText := ticketKeysYAML(certFile, keyFile, "http://127.0.0.1:1", c.keys...)
			tb := &fatalRecorder{TB: t}
			func() {
				defer func() { _ = recover() }()
				proxytest.Start(tb, cfgText)
			}()
			at := regexp.MustCompile(`gateway\.yaml:(\d+:\d+): listener "edge": `).FindStringSubmatch(tb.msg)
			if at == nil || !strings.Contains(tb.msg, c.want) {
				t.Fatalf("error %q, want %q at its entry in the config", tb.msg, c.want)
			}
			if want := entryPosition(cfgText, c.bad); at[1] != want {
				t.Errorf("error at %s, want %s (the entry naming %s)", at[1], want, c.bad)
			}
			if strings.Contains(tb.msg, "secret-31") {
				t.Errorf("error %q shows the content of a key file", tb.msg)
			}
		})
	}
}

// entryPosition is line:col of path in a config's sessionTicketKeys.
func entryPosition(cfgText, path string) string {
	for i, line := range strings.Split(cfgText, "\n") {
		if strings.Contains(line, "sessionTicketKeys") {
			if col := strings.Index(line, path); col >= 0 {
				return fmt.Sprintf("%d:%d", i+1, col+1)
			}
		}
	}
	return "none"
}

// positionOf is file:line:col of path in gw's config cfgText.
func positionOf(t *testing.T, gw *proxytest.Gateway, cfgText, path string) string {
	t.Helper()
	return filepath.Join(gw.Dir, "gateway.yaml") + ":" + entryPosition(cfgText, path)
}
