package proxy

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/flexgate/flexgate/config"
)

// testUpstream builds an upstream with targets of the given weights
// (127.0.0.1, ports from 10001) and no network use: nothing dials until a
// request is sent.
func testUpstream(tb testing.TB, lb config.LoadBalancing, weights []int, change func(*config.Upstream)) *upstream {
	tb.Helper()
	u := config.Upstream{LoadBalancing: lb, ConnectTimeout: time.Second, ResponseTimeout: time.Second,
		MaxConns: 16, Outlier: config.Outlier{ConsecutiveFailures: 5, BaseEjectionTime: time.Minute,
			MaxEjectionTime: time.Hour, MaxEjectionPercent: 50}}
	for i, w := range weights {
		u.Targets = append(u.Targets, config.Target{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", 10001+i), Weight: w})
	}
	if change != nil {
		change(&u)
	}
	up, err := newUpstream(&u, upstreamOptions{series: newSeriesRefs(nil), pools: newPoolRegistry()}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(up.close)
	return up
}

// shares picks n times and returns each target's share.
func shares(u *upstream, n int) []float64 {
	s := u.set.Load()
	count := map[*target]int{}
	for range n {
		var tr tried
		t := u.pick(s, &tr)
		count[t]++
	}
	out := make([]float64, len(s.targets))
	for i, t := range s.targets {
		out[i] = float64(count[t]) / float64(n)
	}
	return out
}

func TestPickSharesFollowWeights(t *testing.T) {
	for _, lb := range []config.LoadBalancing{config.RoundRobin, config.Random, config.LeastRequest} {
		for _, weights := range [][]int{{1, 1, 1}, {5, 3, 2}, {1, 1000}} {
			u := testUpstream(t, lb, weights, nil)
			got := shares(u, 100000)
			sum := 0
			for _, w := range weights {
				sum += w
			}
			for i, w := range weights {
				want := float64(w) / float64(sum)
				if math.Abs(got[i]-want) > 0.01 {
					t.Errorf("%s, weights %v: target %d has %.4f of the picks, want %.4f", lb, weights, i, got[i], want)
				}
			}
		}
	}
}

// TestSmoothRoundRobin: the schedule spreads a heavy target's turns
// between the others', as nginx's smooth weighted round robin does.
func TestSmoothRoundRobin(t *testing.T) {
	got := smoothSequence([]int64{5 * weightUnit, weightUnit, weightUnit})
	if want := []uint32{0, 0, 1, 0, 2, 0, 0}; !slices.Equal(got, want) {
		t.Errorf("weights 5,1,1: schedule %v, want %v", got, want)
	}
	// Weights too fine for a short cycle are scaled, each keeping a turn.
	long := smoothSequence([]int64{1_000_003, 999_983, 1})
	if len(long) > 4096 || !slices.Contains(long, 2) {
		t.Errorf("a cycle of %d slots; want at most 4096 with a turn for every target", len(long))
	}
}

// TestEjectedAndUnhealthyTargetsArePassedOver: a target out of service
// gets no pick while another is in service; with none in service every
// target is tried (panic mode) and counted.
func TestEjectedAndUnhealthyTargetsArePassedOver(t *testing.T) {
	for _, lb := range []config.LoadBalancing{config.RoundRobin, config.Random, config.LeastRequest} {
		u := testUpstream(t, lb, []int{1, 1, 1}, nil)
		s := u.set.Load()
		s.targets[0].setDown(downEjected)
		s.targets[1].setDown(downUnhealthy)
		if got := shares(u, 1000); got[2] != 1 {
			t.Errorf("%s: shares %v, want every pick on the one target in service", lb, got)
		}
		s.targets[2].setDown(downUnhealthy)
		before := u.m.panics.Get()
		if got := shares(u, 3000); got[0] < 0.2 || got[1] < 0.2 || got[2] < 0.2 {
			t.Errorf("%s: in panic mode shares %v, want every target tried", lb, got)
		}
		if u.m.panics.Get()-before != 3000 {
			t.Errorf("%s: %d picks in panic mode counted, want 3000", lb, u.m.panics.Get()-before)
		}
	}
}

// TestSharesWithATargetOut: the targets in service share the requests of
// one out of service by their weights.
func TestSharesWithATargetOut(t *testing.T) {
	for _, lb := range []config.LoadBalancing{config.RoundRobin, config.Random, config.LeastRequest} {
		u := testUpstream(t, lb, []int{5, 1, 1}, nil)
		u.set.Load().targets[0].setDown(downEjected)
		if got := shares(u, 100000); math.Abs(got[1]-0.5) > 0.01 || math.Abs(got[2]-0.5) > 0.01 {
			t.Errorf("%s, weights 5,1,1 with the first out: shares %v, want the others half each", lb, got)
		}
	}
}

// TestRetryPicksAnotherTarget: a retry goes to a target not yet tried
// while there is one in service, and back to a tried one when not.
func TestRetryPicksAnotherTarget(t *testing.T) {
	u := testUpstream(t, config.LeastRequest, []int{1, 1}, nil)
	s := u.set.Load()
	for range 100 {
		var tr tried
		first := u.pick(s, &tr)
		tr.add(first)
		if second := u.pick(s, &tr); second == first {
			t.Fatal("a retry went to the target it failed on while another was in service")
		}
	}
	s.targets[1].setDown(downEjected)
	var tr tried
	tr.add(s.targets[0])
	if got := u.pick(s, &tr); got != s.targets[0] {
		t.Error("with the other target out of service a retry should go back to the one in service")
	}
}

func TestSlowStartRamps(t *testing.T) {
	u := testUpstream(t, config.Random, []int{1, 1}, func(c *config.Upstream) { c.SlowStart = 10 * time.Second })
	tg := u.set.Load().targets[1]
	now := time.Now().UnixNano()
	tg.slowFrom.Store(now)
	for _, tc := range []struct {
		after time.Duration
		want  int64
	}{{0, 100}, {500 * time.Millisecond, 100}, {5 * time.Second, 500}, {9 * time.Second, 900}, {10 * time.Second, 1000}} {
		at := now + int64(tc.after)
		if got := tg.weight(1000, &at); got != tc.want {
			t.Errorf("%s into a 10s slow start: weight %d of 1000, want %d", tc.after, got, tc.want)
		}
	}
	if tg.slowFrom.Load() != 0 {
		t.Error("a target past its slow start still counts as starting")
	}
}

// TestOutlierEjectionLimits: consecutive failures eject a target for the
// base time times its ejections in a row, never more than the share of
// targets, never the last one in service.
func TestOutlierEjectionLimits(t *testing.T) {
	u := testUpstream(t, config.Random, []int{1, 1, 1, 1}, nil) // at most 50 %: 2 of 4
	s := u.set.Load()
	fail := &upstreamError{kind: failConnect}
	for _, tg := range s.targets {
		for range 5 {
			u.observe(tg, fail, 0)
		}
	}
	ejected := 0
	for _, tg := range s.targets {
		if tg.down.Load()&downEjected != 0 {
			ejected++
		}
	}
	if ejected != 2 {
		t.Errorf("%d of 4 targets ejected, want 2 (maxEjectionPercent 50)", ejected)
	}
	tg := s.targets[0]
	first := time.Duration(tg.ejectedUntil.Load() - time.Now().UnixNano())
	if first < 50*time.Second || first > time.Minute {
		t.Errorf("first ejection for %s, want the base time, 1m", first)
	}
	u.readmit(tg, downEjected)
	for range 5 {
		u.observe(tg, fail, 0)
	}
	if second := time.Duration(tg.ejectedUntil.Load() - time.Now().UnixNano()); second < 110*time.Second {
		t.Errorf("second ejection in a row for %s, want twice the base time", second)
	}

	// One target: never ejected, however it fails.
	one := testUpstream(t, config.Random, []int{1}, nil)
	for range 20 {
		one.observe(one.set.Load().targets[0], fail, 0)
	}
	if one.set.Load().targets[0].down.Load() != 0 {
		t.Error("the only target in service was ejected")
	}
	// Successes reset the count; 5xx answers count as failures.
	two := testUpstream(t, config.Random, []int{1, 1}, nil)
	tg = two.set.Load().targets[0]
	for range 4 {
		two.observe(tg, nil, 503)
	}
	two.observe(tg, nil, 200)
	for range 4 {
		two.observe(tg, nil, 500)
	}
	if tg.down.Load() != 0 {
		t.Error("a success between failures did not start the count over")
	}
	two.observe(tg, nil, 502)
	if tg.down.Load()&downEjected == 0 {
		t.Error("five 5xx answers in a row did not eject the target")
	}
}

// TestRetryBudget: retries in flight stay within the budget's share of
// the requests in flight (or its minimum), and within maxRetries.
func TestRetryBudget(t *testing.T) {
	u := testUpstream(t, config.Random, []int{1, 1}, func(c *config.Upstream) {
		c.Retries = &config.Retries{Attempts: 3, On: []config.RetryOn{config.Retry5xx},
			BudgetPercent: 20, BudgetMinConcurrency: 2}
		c.CircuitBreaker.MaxRetries = 5
	})
	try := func() bool {
		resend := false
		again, counted := u.again(nil, false, 503, true, &resend, 1)
		return again && counted
	}
	u.active.Store(10)
	u.retrying.Store(1)
	if !try() {
		t.Error("1 retry in flight of 10 requests, minimum 2: a retry was refused")
	}
	u.retrying.Store(2)
	if try() {
		t.Error("2 retries in flight of 10 requests (20 % is 2): a retry was allowed")
	}
	u.active.Store(100)
	u.retrying.Store(4)
	if !try() {
		t.Error("4 retries in flight of 100 requests (20 % is 20): a retry was refused")
	}
	u.retrying.Store(5)
	if try() {
		t.Error("5 retries in flight with maxRetries 5: a retry was allowed")
	}
	u.retrying.Store(0)
	resend := false
	if again, _ := u.again(nil, false, 503, false, &resend, 1); again {
		t.Error("a request that is not replayable (POST, or a streamed body) was retried")
	}
	if again, _ := u.again(nil, false, 503, true, &resend, 3); again {
		t.Error("a third failure was retried with attempts 3")
	}
	if again, _ := u.again(nil, false, 404, true, &resend, 1); again {
		t.Error("a 404 was retried")
	}
	resend = true
	if again, counted := u.again(&upstreamError{kind: failConnect}, true, 0, true, &resend, 1); !again || counted || resend {
		t.Error("a request that cannot have been processed is not resent once, outside the budget")
	}
}

// TestPickDoesNotAllocate: the balancer allocates nothing, whatever the
// policy, weights, health and slow start.
func TestPickDoesNotAllocate(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage instrumentation allocates")
	}
	for _, lb := range []config.LoadBalancing{config.RoundRobin, config.Random, config.LeastRequest} {
		for _, weights := range [][]int{{1, 1, 1}, {5, 3, 2}} {
			u := testUpstream(t, lb, weights, func(c *config.Upstream) { c.SlowStart = time.Hour })
			s := u.set.Load()
			s.targets[0].startSlow()
			s.targets[1].setDown(downEjected)
			allocs := testing.AllocsPerRun(1000, func() {
				var tr tried
				tg := u.pick(s, &tr)
				tr.add(tg)
				tg.begin()
				u.pick(s, &tr).finish()
				tg.finish()
				tg.active.Add(1)
			})
			if allocs != 0 {
				t.Errorf("%s, weights %v: a pick costs %.1f allocations, want 0", lb, weights, allocs)
			}
		}
	}
}
