package proxy

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/config"
)

// TestConnLimiterCountsPerClient checks how peers are counted: an IPv6
// client by its /64, an IPv4-mapped peer as the IPv4 address, a trusted
// proxy not at all; and that the table empties as connections close.
func TestConnLimiterCountsPerClient(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(path, []byte(`apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata: {name: t}
spec:
  routes:
    - id: r
      path: ["/*"]
      upstream: {url: "http://127.0.0.1:9"}
  trustedProxies: ["fd00::/8"]
  limits:
    maxConnectionsPerClient: 2
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load([]string{path})
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(cfg, Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Shutdown(context.Background()) })
	lim := g.conns
	var keys []netip.Addr
	f := func(peer string, wantOver *chain.Rejection) {
		t.Helper()
		key, over := lim.admit(&net.TCPAddr{IP: net.ParseIP(peer), Port: 40000})
		if over != wantOver {
			t.Fatalf("admit %s: over = %v, want %v", peer, over, wantOver)
		}
		if over == nil {
			keys = append(keys, key)
		}
	}
	f("2001:db8::1", nil)
	f("2001:db8::ffff:2", nil)
	f("2001:db8::3", errClientConnLimit) // the same /64, which one host owns
	f("2001:db8:0:1::1", nil)            // the next /64 is another client
	f("10.0.0.1", nil)
	f("::ffff:10.0.0.1", nil)
	f("10.0.0.1", errClientConnLimit) // mapped or not, the same IPv4 client
	for i := 0; i < 5; i++ {
		f("fd00::7", nil) // a trusted proxy is not limited
	}
	if got := lim.open.Load(); got != 10 {
		t.Errorf("open = %d, want 10", got)
	}
	// A non-TCP peer (an in-memory benchmark connection) has no address
	// to count by.
	if key, over := lim.admit(fasthttputil.NewInmemoryListener().Addr()); over != nil || key.IsValid() {
		t.Errorf("in-memory peer: key %v, over %v", key, over)
	}
	lim.release(netip.Addr{})

	want := []string{"2001:db8::", "2001:db8::", "2001:db8:0:1::", "10.0.0.1", "10.0.0.1", "invalid IP", "invalid IP", "invalid IP", "invalid IP", "invalid IP"}
	for i, k := range keys {
		if k.String() != want[i] {
			t.Errorf("key %d = %s, want %s", i, k, want[i])
		}
	}
	if len(lim.clients) != 3 {
		t.Errorf("%d clients tracked, want 3", len(lim.clients))
	}
	for _, k := range keys {
		lim.release(k)
	}
	if len(lim.clients) != 0 || lim.open.Load() != 0 {
		t.Errorf("after every connection closed: %d clients tracked, %d open; want none", len(lim.clients), lim.open.Load())
	}
}
