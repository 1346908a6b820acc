package spikecontrol

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

// fakeTime is a clock that moves only when a test, or a request waiting
// in the queue (sleep), moves it.
type fakeTime struct{ ns atomic.Int64 }

func (f *fakeTime) now() int64                    { return f.ns.Load() }
func (f *fakeTime) advance(d time.Duration)       { f.ns.Add(int64(d)) }
func (f *fakeTime) sleepAdvances(d time.Duration) { f.advance(d) }

// spikeOf returns the route's first policy as a Spike on the clock t; with
// advancing, a queued request's delay moves the clock instead of waiting.
func spikeOf(tb testing.TB, c *chain.Chain, t *fakeTime, advancing bool) *Spike {
	tb.Helper()
	var s *Spike
	switch p := c.Policies[0].Policy.(type) {
	case *Spike:
		s = p
	case *FlexSpike:
		s = &p.Spike
	default:
		tb.Fatalf("policy is %T", p)
	}
	s.clock = t.now
	if advancing {
		s.sleep = t.sleepAdvances
	} else {
		s.sleep = func(time.Duration) {}
	}
	return s
}

type result struct {
	rej                     *chain.Rejection
	limit, remaining, reset string
}

func send(c *chain.Chain) result {
	ctx := chaintest.Ctx("http://gw/api/x")
	rej := chaintest.Run(c, ctx)
	h := &ctx.Response.Header
	return result{rej, string(h.Peek("X-Ratelimit-Limit")), string(h.Peek("X-Ratelimit-Remaining")), string(h.Peek("X-Ratelimit-Reset"))}
}

// TestSlidingWindow: at most limit requests in any period, counted from
// each admission (a sliding window, not fixed windows): Flex's timeline
// of 2 per second.
func TestSlidingWindow(t *testing.T) {
	c := chaintest.MustChain(t, "- spike-control: {limit: 2, period: 1s, exposeHeaders: true}\n")
	clk := &fakeTime{}
	spikeOf(t, c, clk, false)
	if r := send(c); r.rej != nil || r.limit != "2" || r.remaining != "1" || r.reset != "0" {
		t.Fatalf("1st: %+v", r)
	}
	clk.advance(400 * time.Millisecond)
	if r := send(c); r.rej != nil || r.remaining != "0" || r.reset != "600" {
		t.Fatalf("2nd at 400ms: %+v, want remaining 0 and reset 600 (ms until the 1st leaves the window)", r)
	}
	clk.advance(500 * time.Millisecond) // 900 ms
	if r := send(c); r.rej == nil || r.rej.Status != 429 || r.reset != "100" {
		t.Fatalf("3rd at 900ms: %+v, want 429 with reset 100", r)
	}
	clk.advance(100 * time.Millisecond) // 1000 ms: the 1st has left
	if r := send(c); r.rej != nil {
		t.Fatalf("4th at 1000ms: %v", r.rej)
	}
	if r := send(c); r.rej == nil {
		t.Fatal("5th at 1000ms passed: the 2nd (400ms) and 4th are in the window")
	}
	clk.advance(400 * time.Millisecond) // 1400: the 2nd has left
	if r := send(c); r.rej != nil {
		t.Fatalf("6th at 1400ms: %v", r.rej)
	}
}

// TestDelayAttempts: a request over the window waits in the queue for the
// delay, delayAttempts times, and passes when the window has room by
// then; otherwise 429. Without a queue nothing waits.
func TestDelayAttempts(t *testing.T) {
	for _, tc := range []struct {
		policy string
		pass   bool
	}{
		// The 2nd is tried at 600 ms: still inside the 1st's second.
		{"- spike-control: {limit: 1, period: 1s, delay: 600ms, delayAttempts: 1, queueLimit: 5}\n", false},
		// ... and again at 1200 ms: it passes.
		{"- spike-control: {limit: 1, period: 1s, delay: 600ms, delayAttempts: 2, queueLimit: 5}\n", true},
		{"- spike-control-flex: {maximumRequests: 1, timePeriodInMilliseconds: 1000, delayTimeInMillis: 600, delayAttempts: 2, queuingLimit: 5}\n", true},
		// No queue: refused at once, whatever the attempts.
		{"- spike-control: {limit: 1, period: 1s, delay: 600ms, delayAttempts: 2}\n", false},
		{"- spike-control: {limit: 1, period: 1s, delay: 600ms, delayAttempts: 0, queueLimit: 5}\n", false},
	} {
		c := chaintest.MustChain(t, tc.policy)
		clk := &fakeTime{}
		s := spikeOf(t, c, clk, true)
		if r := send(c); r.rej != nil {
			t.Fatalf("%s: 1st: %v", tc.policy, r.rej)
		}
		r := send(c)
		if (r.rej == nil) != tc.pass {
			t.Errorf("%s: 2nd passed %v, want %v", strings.TrimSpace(tc.policy), r.rej == nil, tc.pass)
		}
		if s.queued.Load() != 0 {
			t.Errorf("%s: %d requests still counted in the queue", tc.policy, s.queued.Load())
		}
	}
}

// TestQueueLimit: at most queueLimit requests wait at once; one more is
// refused at once, without waiting.
func TestQueueLimit(t *testing.T) {
	c := chaintest.MustChain(t, "- spike-control: {limit: 1, period: 1s, delay: 10ms, delayAttempts: 1, queueLimit: 2}\n")
	clk := &fakeTime{}
	s := spikeOf(t, c, clk, false)
	release := make(chan struct{})
	waiting := make(chan struct{}, 8)
	s.sleep = func(time.Duration) { waiting <- struct{}{}; <-release }
	if r := send(c); r.rej != nil {
		t.Fatal(r.rej)
	}
	var wg sync.WaitGroup
	results := make(chan *chain.Rejection, 2)
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); results <- send(c).rej }()
	}
	<-waiting
	<-waiting
	// The queue is full: the next is refused without waiting (a wait
	// would block on release, which only comes after).
	if r := send(c); r.rej == nil || r.rej.Status != 429 {
		t.Fatalf("a request over the queue: %+v", r)
	}
	if s.queued.Load() != 2 {
		t.Errorf("queued = %d, want 2", s.queued.Load())
	}
	clk.advance(time.Second) // one slot frees: one of the two passes
	close(release)
	wg.Wait()
	close(results)
	passed := 0
	for rej := range results {
		if rej == nil {
			passed++
		}
	}
	if passed != 1 || s.queued.Load() != 0 || s.peak.Load() != 2 {
		t.Errorf("passed %d (want 1), queued %d, peak %d (want 2)", passed, s.queued.Load(), s.peak.Load())
	}
}

// TestFlood sends 10,000 requests at once, twice: the first time exactly
// limit pass (the clock does not move), the second none; at most
// queueLimit ever wait, the policy starts no goroutine, and the second
// flood leaves the heap as it found it (the first warms the test's own
// goroutines and requests).
func TestFlood(t *testing.T) {
	const n, limit, queue = 10_000, 100, 50
	c := chaintest.MustChain(t, "- spike-control: {limit: 100, period: 5s, delay: 1ms, delayAttempts: 3, queueLimit: 50}\n")
	clk := &fakeTime{}
	s := spikeOf(t, c, clk, false)
	s.sleep = func(time.Duration) { runtime.Gosched() }
	flood := func() (passed, refused int64) {
		var p, r atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if send(c).rej == nil {
					p.Add(1)
				} else {
					r.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		return p.Load(), r.Load()
	}
	goroutines := runtime.NumGoroutine()
	if passed, refused := flood(); passed != limit || refused != n-limit {
		t.Errorf("passed %d, refused %d; want %d and %d", passed, refused, limit, n-limit)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if passed, refused := flood(); passed != 0 || refused != n {
		t.Errorf("second flood: passed %d, refused %d; want 0 and %d", passed, refused, n)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if p := s.peak.Load(); p > queue || p == 0 {
		t.Errorf("at most %d requests waited at once, want 1 to %d", p, queue)
	}
	if g := runtime.NumGoroutine(); g > goroutines+10 {
		t.Errorf("%d goroutines after the flood, %d before", g, goroutines)
	}
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 256<<10 && !raceEnabled {
		t.Errorf("the heap grew by %d bytes over a flood of %d requests", grown, n)
	}
}

// TestRefusalDoesNotAllocate: neither a request the window takes nor one
// refused over a full queue allocates.
func TestRefusalDoesNotAllocate(t *testing.T) {
	c := chaintest.MustChain(t, "- spike-control: {limit: 1, period: 5s, delay: 1ms, delayAttempts: 1, queueLimit: 1, exposeHeaders: true}\n")
	clk := &fakeTime{}
	s := spikeOf(t, c, clk, false)
	ctx := chaintest.Ctx("http://gw/api/x")
	ex := chain.AcquireExchange()
	defer chain.ReleaseExchange(ex)
	run := func() *chain.Rejection {
		ex.Prepare(c)
		rej := c.RunRequest(ctx, ex)
		c.RunResponse(ctx, ex)
		ex.Reset()
		return rej
	}
	if n := testing.AllocsPerRun(100, func() {
		clk.advance(5 * time.Second)
		if run() != nil {
			t.Fatal("refused")
		}
	}); n != 0 {
		t.Errorf("an admitted request: %.1f allocations", n)
	}
	s.queued.Store(1) // the queue is full
	if n := testing.AllocsPerRun(100, func() {
		if run() == nil {
			t.Fatal("passed")
		}
	}); n != 0 {
		t.Errorf("a refused request: %.1f allocations", n)
	}
}

func TestSpikeErrors(t *testing.T) {
	for _, tc := range []struct{ policy, pos, want string }{
		{"- spike-control: {period: 1s}", "12:26", "limit is required"},
		// The tags' bounds are MaxLimit and MaxQueue.
		{"- spike-control: {limit: 0}", "12:34", fmt.Sprintf("limit must be a whole number from 1 to %d, not 0", MaxLimit)},
		{"- spike-control: {limit: 1e30}", "12:34", `limit must be a whole number from 1 to 1000000, not "1e30"`},
		{"- spike-control: {limit: 5, period: 6s}", "12:45", `period "6s" is out of range: use 1ms to 5s (spike control smooths bursts; for quotas use rate-limiting)`},
		{"- spike-control: {limit: 5, period: 0s}", "12:45", `period "0s" is out of range: use 1ms to 5s`},
		{"- spike-control: {limit: 5, period: -1s}", "12:45", `period "-1s" is out of range: use 1ms to 5s`},
		// Longer than Go holds, but written as a duration: out of range.
		{"- spike-control: {limit: 5, period: 99999999999h}", "12:45", `period "99999999999h" is out of range: use 1ms to 5s`},
		{"- spike-control: {limit: 5, period: 1}", "12:45", `period must be a duration with a unit like 500ms, 2s or 1m, not "1"`},
		{"- spike-control: {limit: 5, delay: 0s}", "12:44", `delay "0s" is out of range: use 1ms to 1m`},
		{"- spike-control: {limit: 5, delay: -100ms}", "12:44", `delay "-100ms" is out of range: use 1ms to 1m`},
		{"- spike-control: {limit: 5, delay: 2m}", "12:44", `delay "2m" is out of range: use 1ms to 1m`},
		{"- spike-control: {limit: 5, delay: 99999999999h}", "12:44", `delay "99999999999h" is out of range: use 1ms to 1m`},
		{"- spike-control: {limit: 5, delay: soon}", "12:44", `delay must be a duration with a unit like 500ms, 2s or 1m, not "soon"`},
		{"- spike-control: {limit: 5, exposeHeaders: y}", "12:52", `exposeHeaders must be true or false, not "y"`},
		{"- spike-control: {limit: 5, queueLimit: -1}", "12:49", fmt.Sprintf("queueLimit must be a whole number from 0 to %d (each waiting request holds a connection and a worker), not -1", MaxQueue)},
		{"- spike-control: {limit: 5, delayAttempts: -1}", "12:52", fmt.Sprintf("delayAttempts must be a whole number from 0 to %d, not -1", MaxWait.Milliseconds())},
		{"- spike-control: {limit: 5, queueLimit: 1, delay: 10s, delayAttempts: 7}", "12:79", "would wait 7 × 10s, longer than 1m0s"},
		{"- spike-control: {limit: 5, queueLimit: 1, delay: 1m, delayAttempts: 60000}", "12:78", "would wait 60000 × 1m0s, longer than 1m0s"},
		// 2⁶² ns × 4 is 2⁶⁴ ns, which an int64 holds as 0: refused
		// before it is multiplied.
		{"- spike-control: {limit: 5, queueLimit: 1, delay: 4611686018427387904ns, delayAttempts: 4}", "12:59", `delay "4611686018427387904ns" is out of range: use 1ms to 1m`},
		{"- spike-control: {limit: 5, identifier: $request.remoteAddress}", "12:37", `unknown parameter "identifier"`},
		{"- spike-control-flex: {timePeriodInMilliseconds: 5001}", "12:58", fmt.Sprintf("timePeriodInMilliseconds must be a whole number from 1 to %d (spike control smooths bursts; for quotas use rate-limiting), not 5001", MaxPeriod.Milliseconds())},
		{"- spike-control-flex: {timePeriodInMilliseconds: -1000}", "12:58", "timePeriodInMilliseconds must be a whole number from 1 to 5000 (spike control smooths bursts; for quotas use rate-limiting), not -1000"},
		{"- spike-control-flex: {timePeriodInMilliseconds: 99999999999999999999}", "12:58", "timePeriodInMilliseconds must be a whole number from 1 to 5000 (spike control smooths bursts; for quotas use rate-limiting), not 99999999999999999999"},
		{"- spike-control-flex: {delayTimeInMillis: -1}", "12:51", fmt.Sprintf("delayTimeInMillis must be a whole number from 1 to %d, not -1", MaxWait.Milliseconds())},
		{"- spike-control-flex: {delayTimeInMillis: 99999999999999999999}", "12:51", "delayTimeInMillis must be a whole number from 1 to 60000, not 99999999999999999999"},
		{"- spike-control-flex: {maximumRequests: 0}", "12:49", fmt.Sprintf("maximumRequests must be a whole number from 1 to %d, not 0", MaxLimit)},
		{"- spike-control-flex: {queuingLimit: 20000}", "12:46", fmt.Sprintf("queuingLimit must be a whole number from 0 to %d (each waiting request holds a connection and a worker), not 20000", MaxQueue)},
	} {
		_, path, err := chaintest.Compile(t, chaintest.Gateway(tc.policy))
		if err == nil {
			t.Errorf("%s: no error", tc.policy)
			continue
		}
		if !strings.HasPrefix(err.Error(), path+":"+tc.pos+":") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s:\n got %v\nwant %s:%s: …%s…", tc.policy, err, path, tc.pos, tc.want)
		}
	}
}

// TestFlexDefaults: spike-control-flex with no parameters is Flex's 1
// request per second, refused at once (no queue), no headers; its 429
// says "Too Many Requests".
func TestFlexDefaults(t *testing.T) {
	c := chaintest.MustChain(t, "- spike-control-flex: {}\n")
	clk := &fakeTime{}
	spikeOf(t, c, clk, false)
	if r := send(c); r.rej != nil || r.limit != "" {
		t.Fatalf("1st: %+v", r)
	}
	r := send(c)
	if r.rej == nil || r.rej.Message != FlexTooManyRequests || r.rej.Reason != "spike_control" {
		t.Fatalf("2nd: %+v", r)
	}
	clk.advance(time.Second)
	if r := send(c); r.rej != nil {
		t.Fatalf("after 1 s: %v", r.rej)
	}
}
