package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/proxy"
	"github.com/flexgate/flexgate/proxy/proxytest"
)

// fakeDNS answers for one name with records a test changes, and dials the
// backend standing behind each record.
type fakeDNS struct {
	mu      sync.Mutex
	records []string // addresses of the name
	fail    error    // when set, lookups fail
	lookups int
	behind  map[string]*backend // "10.0.0.1:8080" → backend
}

func (d *fakeDNS) set(records ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.records, d.fail = records, nil
}

func (d *fakeDNS) setFail(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fail = err
}

func (d *fakeDNS) lookupCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lookups
}

func (d *fakeDNS) resolve(_ context.Context, host string) ([]netip.Addr, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lookups++
	if host != "backend.shop.svc" {
		return nil, fmt.Errorf("no such host %s", host)
	}
	if d.fail != nil {
		return nil, d.fail
	}
	var out []netip.Addr
	for _, r := range d.records {
		out = append(out, netip.MustParseAddr(r))
	}
	return out, nil
}

func (d *fakeDNS) dial(addr string, timeout time.Duration) (net.Conn, error) {
	d.mu.Lock()
	b := d.behind[addr]
	d.mu.Unlock()
	if b == nil {
		return nil, fmt.Errorf("dial %s: no such address", addr)
	}
	return net.DialTimeout("tcp", b.addr, timeout)
}

// TestDNSDiscovery: every address a name resolves to is a target;
// addresses that appear join and those that go are drained, under load,
// without a failed request; a failing lookup keeps the targets; the series
// of a target that went are gone.
func TestDNSDiscovery(t *testing.T) {
	b1, b2, b3 := startBackend(t, "b1"), startBackend(t, "b2"), startBackend(t, "b3")
	dns := &fakeDNS{behind: map[string]*backend{"10.0.0.1:8080": b1, "10.0.0.2:8080": b2, "10.0.0.3:8080": b3}}
	dns.set("10.0.0.1", "10.0.0.2")
	gw := proxytest.Start(t, preamble+`  routes:
    - id: svc
      path: ["/*"]
      upstream:
        url: http://backend.shop.svc:8080
        discovery: dns
        dnsRefresh: 1s
        slowStart: 1h
`, func(o *proxy.Options) { proxy.WithNetwork(o, dns.resolve, dns.dial) })

	states := func() string {
		var s []string
		for u := range targetStates(t, gw) {
			s = append(s, u)
		}
		return strings.Join(slices.Sorted(slices.Values(s)), " ")
	}
	if got := states(); got != "http://10.0.0.1:8080 http://10.0.0.2:8080" {
		t.Fatalf("targets %q, want the name's two addresses", got)
	}
	if got := slowTargets(t, gw); got != "" {
		t.Errorf("addresses found at start start slowly: %s", got)
	}
	stop := make(chan struct{})
	res, wait := runLoad(gw.URL, 4, 0, stop)
	waitFor(t, "both addresses serve", func() bool { return b1.served.Load() > 20 && b2.served.Load() > 20 })

	// A request in flight on an address that leaves finishes there.
	release, entered := make(chan struct{}), make(chan struct{}, 1)
	b1.setHandler(func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/held" {
			entered <- struct{}{}
			<-release
		}
		ctx.SetBodyString("b1")
	})
	held := make(chan int, 1)
	go func() {
		c := proxytest.Client()
		for {
			// Until the balancer sends one to b1.
			status, body, err := c.GetTimeout(nil, gw.URL+"/held", 10*time.Second)
			if err != nil || string(body) == "b1" {
				held <- status
				return
			}
		}
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no request reached b1")
	}
	dns.set("10.0.0.2", "10.0.0.3")
	waitFor(t, "the new address is a target and the old one is gone", func() bool {
		return states() == "http://10.0.0.2:8080 http://10.0.0.3:8080"
	})
	if got := slowTargets(t, gw); got != "http://10.0.0.3:8080" {
		t.Errorf("starting slowly after 10.0.0.3 appeared: %q, want it", got)
	}
	served := b3.served.Load()
	waitFor(t, "the new address serves", func() bool { return b3.served.Load() > served+20 })
	b1Served := b1.served.Load()
	close(release)
	if status := <-held; status != 200 {
		t.Errorf("the request in flight on the address that left: %d, want 200", status)
	}
	name := `flexgate_upstream_target_requests_total{upstream="http://backend.shop.svc:8080",target="http://10.0.0.1:8080"}`
	waitFor(t, "the series of the address that left are gone", func() bool {
		return !strings.Contains(metricsText(t, gw), name)
	})
	if b1.served.Load() != b1Served+1 {
		t.Errorf("the address that left got %d requests after it left", b1.served.Load()-b1Served-1)
	}

	// A failing lookup keeps what serves.
	dns.setFail(errors.New("SERVFAIL"))
	lookups := dns.lookupCount()
	waitFor(t, "a failed lookup", func() bool { return dns.lookupCount() > lookups })
	served2, served3 := b2.served.Load(), b3.served.Load()
	waitFor(t, "the targets serve on", func() bool { return b2.served.Load() > served2+20 && b3.served.Load() > served3+20 })
	if got := states(); got != "http://10.0.0.2:8080 http://10.0.0.3:8080" {
		t.Errorf("after a failed lookup the targets are %q, want them kept", got)
	}
	if body := getConfig(t, gw); !strings.Contains(body, `"dnsError": "SERVFAIL"`) {
		t.Errorf("/config does not show the failed lookup:\n%s", body)
	}
	close(stop)
	wait()
	if res.failed.Load() != 0 {
		t.Fatalf("addresses coming and going cost clients errors: %s", res)
	}
}

func metricsText(t *testing.T, gw *proxytest.Gateway) string {
	t.Helper()
	resp := proxytest.Do(t, "GET", gw.AdminURL+"/metrics", nil, nil)
	defer fasthttp.ReleaseResponse(resp)
	return string(resp.Body())
}
