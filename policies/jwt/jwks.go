package jwt

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/proxy/cabundle"
)

// Defaults and bounds of JWKS fetching.
const (
	// DefaultJWKSTTL is how long a fetched set is used before it is
	// fetched again (Flex Gateway's jwksServiceTimeToLive: 60 minutes).
	DefaultJWKSTTL = time.Hour
	// DefaultJWKSTimeout bounds one fetch, connect included (Flex
	// Gateway's jwksServiceConnectionTimeout: 10 s).
	DefaultJWKSTimeout = 10 * time.Second
	// MinRefreshInterval is the shortest time between two fetches of one
	// set that tokens with an unknown kid ask for: a flood of made-up kids
	// costs the identity provider one request per interval.
	MinRefreshInterval = 5 * time.Second
	// maxBackoff bounds the wait between fetches of a set that fail.
	maxBackoff = 5 * time.Minute
	// maxJWKSBody bounds a JWKS answer.
	maxJWKSBody = 1 << 20
)

// maxDemandWait bounds how long a request with an unknown kid waits for the
// fetch it started or joined: a slow identity provider must not hold every
// such request for its whole timeout. Tests shorten it.
var maxDemandWait = 3 * time.Second

// jwksSpec is one JWKS endpoint as configured.
type jwksSpec struct {
	url     string
	ttl     time.Duration
	timeout time.Duration
	caFile  string
}

// keySet is the policy's keys: those written in the config and those of
// its JWKS endpoints, merged into one ring that requests read without a
// lock. Safe for concurrent use.
type keySet struct {
	static  []*vkey
	sources []*source
	allowed map[string]bool
	ring    atomic.Pointer[[]*vkey]
	mu      sync.Mutex // serialises rebuilds

	now        func() time.Time
	minRefresh time.Duration
	log        *slog.Logger
	m          *policyMetrics

	stop chan struct{}
	done chan struct{}
}

// source is one JWKS endpoint and the last set it gave.
type source struct {
	spec jwksSpec
	hc   *fasthttp.HostClient
	ks   *keySet

	mu       sync.Mutex
	keys     []*vkey
	ok       bool      // a fetch has succeeded
	fetched  time.Time // of the last success
	lastTry  time.Time
	failures int // in a row
	// running is closed when the fetch under way ends; nil when none is.
	running chan struct{}
}

func newKeySet(static []*vkey, specs []jwksSpec, allowed map[string]bool, log *slog.Logger, m *policyMetrics) (*keySet, error) {
	ks := &keySet{static: static, allowed: allowed, now: timeNow, minRefresh: MinRefreshInterval, log: log, m: m,
		stop: make(chan struct{}), done: make(chan struct{})}
	for _, sp := range specs {
		hc, err := jwksClient(sp, log)
		if err != nil {
			return nil, err
		}
		ks.sources = append(ks.sources, &source{spec: sp, hc: hc, ks: ks})
	}
	ks.rebuild()
	return ks, nil
}

// jwksClient is a pooled client of one JWKS endpoint.
func jwksClient(sp jwksSpec, log *slog.Logger) (*fasthttp.HostClient, error) {
	u, err := url.Parse(sp.url)
	if err != nil {
		return nil, err
	}
	isTLS := u.Scheme == "https"
	hc := &fasthttp.HostClient{
		Addr:                fasthttp.AddMissingPort(u.Host, isTLS),
		Name:                "flexgate",
		IsTLS:               isTLS,
		MaxConns:            4,
		MaxConnWaitTimeout:  sp.timeout,
		MaxIdleConnDuration: 30 * time.Second,
		ReadTimeout:         sp.timeout,
		WriteTimeout:        sp.timeout,
		MaxResponseBodySize: maxJWKSBody,
		Dial: func(addr string) (net.Conn, error) {
			return fasthttp.DialTimeout(addr, sp.timeout)
		},
	}
	if isTLS {
		hc.TLSConfig = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
		if sp.caFile != "" {
			// A trust bundle rotated on disk verifies the next handshake.
			ca, err := cabundle.New(sp.caFile, log)
			if err != nil {
				return nil, err
			}
			hc.TLSConfig = ca.ClientConfig(u.Hostname())
		}
	}
	return hc, nil
}

// start begins fetching every set in the background and keeps each fresh:
// fetched again when its TTL has passed, and after a failure with a
// backoff that doubles from a second to five minutes.
func (ks *keySet) start() {
	if len(ks.sources) == 0 {
		close(ks.done)
		return
	}
	go func() {
		defer close(ks.done)
		t := time.NewTimer(0)
		defer t.Stop()
		for {
			select {
			case <-ks.stop:
				return
			case <-t.C:
			}
			t.Reset(ks.refreshDue())
		}
	}()
}

// refreshDue fetches the sets that are due, waiting for each, and returns
// how long until the next is.
func (ks *keySet) refreshDue() time.Duration {
	next := maxBackoff
	for _, s := range ks.sources {
		now := ks.now()
		if !s.due().After(now) {
			if ch := s.trigger(now, false); ch != nil {
				select {
				case <-ch:
				case <-ks.stop:
					return next
				}
			}
		}
		next = min(next, s.due().Sub(ks.now()))
	}
	return max(next, 100*time.Millisecond)
}

// close stops the refresher and drops idle connections.
func (ks *keySet) close() {
	close(ks.stop)
	<-ks.done
	for _, s := range ks.sources {
		s.hc.CloseIdleConnections()
	}
}

// keys returns the ring: every key there is, read without a lock.
func (ks *keySet) keys() []*vkey { return *ks.ring.Load() }

// usable reports whether the policy has any key at all: one written in the
// config, or a set fetched once.
func (ks *keySet) usable() bool { return len(ks.keys()) > 0 }

// refresh fetches every set whose last fetch is at least minRefresh ago
// (or joins a fetch under way) and waits for them, for at most the
// slowest's timeout and maxDemandWait. It reports whether any fetch ran or
// was joined.
func (ks *keySet) refresh() bool {
	var waits []chan struct{}
	var longest time.Duration
	now := ks.now()
	for _, s := range ks.sources {
		if ch := s.trigger(now, true); ch != nil {
			waits = append(waits, ch)
			longest = max(longest, s.spec.timeout)
		}
	}
	if len(waits) == 0 {
		ks.m.throttled.Inc()
		return false
	}
	t := time.NewTimer(min(longest, maxDemandWait))
	defer t.Stop()
	for _, ch := range waits {
		select {
		case <-ch:
		case <-t.C:
			return true
		case <-ks.stop:
			return true
		}
	}
	return true
}

// rebuild merges the static keys and every source's last set into the
// ring.
func (ks *keySet) rebuild() {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ring := append([]*vkey(nil), ks.static...)
	for _, s := range ks.sources {
		s.mu.Lock()
		ring = append(ring, s.keys...)
		s.mu.Unlock()
	}
	ks.ring.Store(&ring)
}

// due is when the set should be fetched next.
func (s *source) due() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failures > 0 {
		return s.lastTry.Add(backoff(s.failures, s.spec.ttl))
	}
	if !s.ok {
		return s.lastTry // never tried: now
	}
	return s.fetched.Add(s.spec.ttl)
}

// backoff is the wait after n failed fetches in a row: 1 s, 2 s, 4 s, …,
// at most five minutes and at most the set's TTL.
func backoff(n int, ttl time.Duration) time.Duration {
	d := time.Second << min(n-1, 20)
	return min(d, maxBackoff, max(ttl, time.Second))
}

// trigger starts a fetch unless one is under way, whose channel it then
// returns. On demand (a token's unknown kid) it starts none when the last
// began less than minRefresh ago, and returns nil.
func (s *source) trigger(now time.Time, demand bool) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running != nil {
		return s.running
	}
	if demand && !s.lastTry.IsZero() && now.Sub(s.lastTry) < s.ks.minRefresh {
		return nil
	}
	ch := make(chan struct{})
	s.running, s.lastTry = ch, now
	go s.fetch(ch)
	return ch
}

// fetch gets the set, keeps it (or the last good one when it fails) and
// closes ch.
func (s *source) fetch(ch chan struct{}) {
	defer close(ch)
	start := time.Now()
	keys, skipped, err := s.get()
	s.ks.m.jwksDuration.UpdateDuration(start)
	s.mu.Lock()
	if err != nil {
		s.running = nil
		s.failures++
		failures, had := s.failures, s.ok
		s.mu.Unlock()
		s.ks.m.jwksError.Inc()
		msg := "JWKS fetch failed; tokens are checked with the last set fetched"
		if !had {
			msg = "JWKS fetch failed; no set was fetched yet, so tokens are refused with 503"
		}
		s.ks.log.Error(msg, "url", s.spec.url, "error", err, "failures", failures,
			"retryIn", backoff(failures, s.spec.ttl).String())
		return
	}
	// A key that stays keeps its identity, so tokens verified with it stay
	// cached; one that goes is dropped, and its tokens verified again.
	old := make(map[string]*vkey, len(s.keys))
	for _, k := range s.keys {
		old[k.id] = k
	}
	for i, k := range keys {
		if o, ok := old[k.id]; ok {
			keys[i] = o
			delete(old, k.id)
		}
	}
	for _, k := range old {
		k.dropped.Store(true)
	}
	s.keys, s.ok, s.fetched, s.failures = keys, true, s.ks.now(), 0
	s.mu.Unlock()
	s.ks.rebuild()
	// Only now is the fetch over: a token with a kid of the new set that
	// comes in between joins it (and waits for ch) rather than finding no
	// fetch under way, the old ring, and the refresh throttled.
	s.mu.Lock()
	s.running = nil
	s.mu.Unlock()
	s.ks.m.jwksOK.Inc()
	if len(skipped) > 0 {
		s.ks.log.Warn("JWKS keys left out", "url", s.spec.url, "keys", strings.Join(skipped, "; "))
	}
}

// get makes one request for the set.
func (s *source) get() ([]*vkey, []string, error) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(s.spec.url)
	req.Header.Set(fasthttp.HeaderAccept, "application/jwk-set+json, application/json")
	err := s.hc.DoTimeout(req, resp, s.spec.timeout)
	switch {
	case errors.Is(err, fasthttp.ErrTimeout):
		return nil, nil, fmt.Errorf("no answer within %s", s.spec.timeout)
	case err != nil:
		return nil, nil, err
	case resp.StatusCode() != fasthttp.StatusOK:
		return nil, nil, fmt.Errorf("answered status %d", resp.StatusCode())
	}
	return parseJWKS(resp.Body(), s.ks.allowed)
}
