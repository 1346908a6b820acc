package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// HandshakeResult is one TLS handshake run: every request on a new
// connection, closed loop with a fixed number of clients.
type HandshakeResult struct {
	Target string
	// Resumed runs offer the session ticket of an earlier connection.
	Resumed bool
	// Group is the key exchange the target chose (X25519, or the hybrid
	// post-quantum X25519MLKEM768 when the client offers it).
	Group string
	// Conns is how many connections (one request each) completed; Resumes
	// how many of them resumed a session; Errors how many failed.
	Conns, Resumes, Errors int64
	Duration               time.Duration
	// CPUSeconds is the target's CPU time during the run.
	CPUSeconds float64
	// P50 and P99 are connect + handshake + one request.
	P50, P99 time.Duration
}

// PerSecond is completed connections (handshakes) a second.
func (h HandshakeResult) PerSecond() float64 {
	if h.Duration <= 0 {
		return 0
	}
	return float64(h.Conns) / h.Duration.Seconds()
}

// CPUPerHandshake is the target's CPU milliseconds per connection.
func (h HandshakeResult) CPUPerHandshake() float64 {
	if h.Conns == 0 {
		return 0
	}
	return h.CPUSeconds / float64(h.Conns) * 1000
}

// handshakeClients is how many connections are being set up at once: enough
// to keep a proxy's cores busy, few enough that the clients' own
// handshakes (which cost about what the server's do) leave it CPU.
const handshakeClients = 8

// Key exchanges the clients offer. Every target is measured with X25519
// alone, so that they all do the same work: Debian's nginx (OpenSSL 3.0)
// knows no post-quantum group, while a Go server picks X25519MLKEM768
// whenever a client offers it, as Go's clients, current browsers and curl
// do by default. flexgate's targets are measured a second time with that
// offer, to show what the hybrid costs.
var (
	classicalGroups = []tls.CurveID{tls.X25519}
	hybridGroups    = []tls.CurveID{tls.X25519MLKEM768, tls.X25519}
)

// handshakeCase is one handshake run: its target, whether it resumes, and
// the key exchanges its clients offer.
type handshakeCase struct {
	t       *Target
	resumed bool
	groups  []tls.CurveID
}

// handshakeCases lists the phase's runs in order: full and resumed with
// X25519 for every TLS target, then with the hybrid offer for flexgate's.
func handshakeCases(targets []*Target) []handshakeCase {
	var cs []handshakeCase
	for _, groups := range [][]tls.CurveID{classicalGroups, hybridGroups} {
		hybrid := groups[0] == tls.X25519MLKEM768
		for _, resumed := range []bool{false, true} {
			for _, t := range targets {
				if t.TLS && (!hybrid || t.Flexgate) {
					cs = append(cs, handshakeCase{t: t, resumed: resumed, groups: groups})
				}
			}
		}
	}
	return cs
}

// handshakePhase measures full and resumed handshakes of every TLS target.
func handshakePhase(ctx context.Context, rep *Report, targets []*Target, p plan) {
	for _, c := range handshakeCases(targets) {
		if ctx.Err() != nil {
			return
		}
		r, err := handshakeRun(ctx, c.t, c.resumed, c.groups, p.handshake)
		if err != nil {
			rep.Notes = append(rep.Notes, fmt.Sprintf("handshake run of %s (resumed %v, %s offered): %s",
				c.t.Name, c.resumed, c.groups[0], firstLine(err.Error())))
			logf("handshakes %s: %v", c.t.Name, err)
			continue
		}
		rep.Handshakes = append(rep.Handshakes, r)
		logf("handshakes %-13s %-14s resumed=%-5v %7.0f/s  resumed %d of %d  p99 %.2f ms  CPU %.3f ms each",
			c.t.Name, r.Group, c.resumed, r.PerSecond(), r.Resumes, r.Conns, msf(r.P99), r.CPUPerHandshake())
	}
}

// handshakeRun opens a new TLS connection per request for d with
// handshakeClients clients offering groups. One connection before the clock
// starts learns the group the target chooses (and primes the session cache
// the resumed runs share, so that every measured connection can resume; the
// result counts how many did); a connection that settles on another group
// is an error. Clients close with RST (linger 0)
// so that tens of thousands of connections leave no TIME_WAIT behind to
// exhaust the ephemeral ports.
func handshakeRun(ctx context.Context, t *Target, resumed bool, groups []tls.CurveID, d time.Duration) (HandshakeResult, error) {
	res := HandshakeResult{Target: t.Name, Resumed: resumed}
	conf := &tls.Config{InsecureSkipVerify: true, CurvePreferences: groups} //nolint:gosec // the benchmark's own certificate
	if resumed {
		conf.ClientSessionCache = tls.NewLRUClientSessionCache(64)
	}
	first, err := oneTLSRequest(t.addr, conf)
	if err != nil {
		return res, fmt.Errorf("first connection: %w", err)
	}
	res.Group = first.group.String()
	before, err := treeUsage(t.proc.PID())
	if err != nil {
		return res, err
	}
	var conns, resumes, errs atomic.Int64
	lat := make([][]time.Duration, handshakeClients)
	var firstErr atomic.Value
	runCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range handshakeClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for runCtx.Err() == nil {
				t0 := time.Now()
				st, err := oneTLSRequest(t.addr, conf)
				if err == nil && st.group != first.group {
					err = fmt.Errorf("key exchange %s after %s", st.group, first.group)
				}
				if err != nil {
					if runCtx.Err() == nil {
						errs.Add(1)
						firstErr.CompareAndSwap(nil, err)
					}
					continue
				}
				lat[i] = append(lat[i], time.Since(t0))
				conns.Add(1)
				if st.DidResume {
					resumes.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	res.Duration = time.Since(start)
	after, err := treeUsage(t.proc.PID())
	if err != nil {
		return res, err
	}
	res.CPUSeconds = after.CPUSeconds - before.CPUSeconds
	res.Conns, res.Resumes, res.Errors = conns.Load(), resumes.Load(), errs.Load()
	all := slices.Concat(lat...)
	slices.Sort(all)
	res.P50, res.P99 = quantileOf(all, 0.50), quantileOf(all, 0.99)
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if res.Conns == 0 {
		err, _ := firstErr.Load().(error)
		return res, fmt.Errorf("no connection completed: %v", err)
	}
	return res, nil
}

// tlsState is what oneTLSRequest learnt of its connection.
type tlsState struct {
	DidResume bool
	group     tls.CurveID
}

// oneTLSRequest connects, handshakes, sends the small benchmark GET, reads
// a 200 answer and closes with RST.
func oneTLSRequest(addr string, conf *tls.Config) (tlsState, error) {
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return tlsState{}, err
	}
	_ = raw.(*net.TCPConn).SetLinger(0)
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(5 * time.Second))
	c := tls.Client(raw, conf)
	if err := c.Handshake(); err != nil {
		return tlsState{}, err
	}
	req := "GET " + pathFor("small") + benchQuery + " HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n"
	for _, h := range benchHeaders {
		req += h + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		return tlsState{}, err
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 1024), nil)
	if err != nil {
		return tlsState{}, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	// TLS 1.3 tickets arrive after the handshake: the response has been
	// read, so the client has stored the ticket by now.
	cs := c.ConnectionState()
	return tlsState{DidResume: cs.DidResume, group: cs.CurveID}, err
}
