package ratelimit

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestExactUnderConcurrency(t *testing.T) {
	clk := newFakeClock()
	s := NewMemStore(DefaultMaxKeys, 0, clk.now)
	defer s.Close()
	for _, limit := range []int64{1, 7, 100, 1000} {
		rules := []Rule{NewRule(limit, 60*time.Second)}
		key := []byte("client-" + strconv.FormatInt(limit, 10))
		var passed atomic.Int64
		var wg sync.WaitGroup
		const goroutines, each = 16, 200
		for g := 0; g < goroutines; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					if s.Take(key, clk.now(), rules).Allowed {
						passed.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		if got := passed.Load(); got != limit {
			t.Fatalf("limit %d: %d of %d concurrent requests passed, want exactly %d", limit, got, goroutines*each, limit)
		}
	}
}

func TestContinuousRefill(t *testing.T) {
	clk := newFakeClock()
	s := NewMemStore(DefaultMaxKeys, 0, clk.now)
	defer s.Close()
	rules := []Rule{NewRule(100, 60*time.Second)} // a token every 600 ms
	key := []byte("k")
	for i := 0; i < 100; i++ {
		d := s.Take(key, clk.now(), rules)
		if !d.Allowed || d.Remaining != int64(99-i) {
			t.Fatalf("request %d: %+v, want allowed with %d remaining", i+1, d, 99-i)
		}
	}
	d := s.Take(key, clk.now(), rules)
	if d.Allowed || d.RetryAfter != int64(600*time.Millisecond) || d.Reset != int64(60*time.Second) {
		t.Fatalf("101st request: %+v, want refused, retry after 600ms, full in 60s", d)
	}
	clk.advance(599 * time.Millisecond)
	if s.Take(key, clk.now(), rules).Allowed {
		t.Fatal("a token came back before its 600 ms")
	}
	clk.advance(time.Millisecond)
	if !s.Take(key, clk.now(), rules).Allowed {
		t.Fatal("no token after 600 ms")
	}
	if s.Take(key, clk.now(), rules).Allowed {
		t.Fatal("one refilled token passed two requests")
	}
	clk.advance(60 * time.Second)
	if d := s.Take(key, clk.now(), rules); !d.Allowed || d.Remaining != 99 {
		t.Fatalf("after a full period: %+v, want a full bucket (capacity = limit, 99 left)", d)
	}
}

func TestRefusedRequestUsesNoOtherLimit(t *testing.T) {
	clk := newFakeClock()
	s := NewMemStore(DefaultMaxKeys, 0, clk.now)
	defer s.Close()
	// 2 per second and 5 per minute.
	rules := []Rule{NewRule(2, time.Second), NewRule(5, time.Minute)}
	key := []byte("k")
	pass := 0
	for i := 0; i < 10; i++ { // 2 pass, 8 refused by the per-second limit
		if s.Take(key, clk.now(), rules).Allowed {
			pass++
		}
	}
	if pass != 2 {
		t.Fatalf("%d passed at one instant, want 2", pass)
	}
	clk.advance(time.Second)
	d := s.Take(key, clk.now(), rules)
	if !d.Allowed || d.Rule != 0 || d.Remaining != 1 {
		t.Fatalf("after 1 s: %+v; the 8 refused requests must not have used the per-minute budget", d)
	}
	s.Take(key, clk.now(), rules)
	d = s.Take(key, clk.now(), rules)
	if d.Allowed || d.Rule != 0 {
		t.Fatalf("third request in the second: %+v, want refused by the per-second rule", d)
	}
	clk.advance(time.Second)
	s.Take(key, clk.now(), rules) // the 5th of the minute
	d = s.Take(key, clk.now(), rules)
	if d.Allowed || d.Rule != 1 || d.RetryAfter != int64(10*time.Second) {
		t.Fatalf("6th in the minute: %+v, want refused by the per-minute rule, retry in 10 s (its next token)", d)
	}
}

func TestKeyFloodIsBounded(t *testing.T) {
	clk := newFakeClock()
	const maxKeys = 10_000
	s := NewMemStore(maxKeys, 0, clk.now)
	defer s.Close()
	rules := []Rule{NewRule(3, 60*time.Second)}
	victim := []byte("203.0.113.9")
	for i := 0; i < 3; i++ {
		s.Take(victim, clk.now(), rules)
	}
	full := 0
	key := make([]byte, 0, 16)
	for i := 0; i < 1_000_000; i++ {
		key = strconv.AppendInt(key[:0], int64(i), 10)
		if d := s.Take(key, clk.now(), rules); d.Full {
			full++
			if d.RetryAfter <= 0 {
				t.Fatalf("refused new key with RetryAfter %d", d.RetryAfter)
			}
		}
		if i%100_000 == 0 && s.Len() > maxKeys {
			t.Fatalf("after %d keys the store holds %d buckets, cap %d", i, s.Len(), maxKeys)
		}
	}
	if s.Len() > maxKeys {
		t.Fatalf("store holds %d buckets after a flood of a million keys, cap %d", s.Len(), maxKeys)
	}
	if full == 0 {
		t.Fatal("a million keys fit in a store capped at 10,000")
	}
	if d := s.Take(victim, clk.now(), rules); d.Allowed {
		t.Fatal("the flood evicted a client's spent bucket: it got a 4th request of 3")
	}
	// Once buckets are full again they are evicted, and new clients fit.
	clk.advance(61 * time.Second)
	if d := s.Take([]byte("newcomer"), clk.now(), rules); !d.Allowed {
		t.Fatalf("new client after the flood refilled: %+v", d)
	}
	s.Sweep()
	if s.Len() > 2 {
		t.Fatalf("%d buckets left after everything refilled and a sweep, want at most 2", s.Len())
	}
}

func TestBackgroundSweepStopsOnClose(t *testing.T) {
	s := NewMemStore(DefaultMaxKeys, time.Millisecond, monoClock)
	s.Take([]byte("k"), monoClock(), []Rule{NewRule(1, time.Second)})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
}

// TestLongIdentifiersCostNoMore: buckets are keyed by a digest, so an
// identifier taken from a large header does not multiply memory.
func TestLongIdentifiersCostNoMore(t *testing.T) {
	clk := newFakeClock()
	s := NewMemStore(DefaultMaxKeys, 0, clk.now)
	rules := []Rule{NewRule(10, time.Minute)}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	key := make([]byte, 60<<10)
	for i := 0; i < 2000; i++ {
		binary.BigEndian.PutUint32(key, uint32(i))
		if d := s.Take(key, clk.now(), rules); !d.Allowed {
			t.Fatalf("key %d refused", i)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if s.Len() != 2000 {
		t.Fatalf("%d buckets, want 2000", s.Len())
	}
	if grown := int64(after.HeapInuse) - int64(before.HeapInuse); grown > 16<<20 {
		t.Fatalf("2000 identifiers of 60 KiB grew the heap by %d MiB", grown>>20)
	}
}

// TestSmallStoreHoldsItsMaxKeys: a store of 1024 keys holds 1024 clients,
// not a fraction of them through per-shard caps.
func TestSmallStoreHoldsItsMaxKeys(t *testing.T) {
	clk := newFakeClock()
	s := NewMemStore(1024, 0, clk.now)
	rules := []Rule{NewRule(10, time.Minute)}
	for i := 0; i < 1024; i++ {
		if d := s.Take([]byte(fmt.Sprintf("client-%d", i)), clk.now(), rules); !d.Allowed {
			t.Fatalf("client %d of 1024 refused (full=%v)", i, d.Full)
		}
	}
	if d := s.Take([]byte("one-too-many"), clk.now(), rules); d.Allowed || !d.Full {
		t.Fatalf("the 1025th client: %+v, want refused as full", d)
	}
}

// TestFixedWindowsExactAndEvictedWhenEnded: a fixed window admits exactly
// its limit to concurrent requests; a spent window is kept until it ends,
// however many new clients come, and a client's state is evicted only
// when the last of its windows has ended.
func TestFixedWindowsExactAndEvictedWhenEnded(t *testing.T) {
	clk := newFakeClock()
	s := NewMemStore(minMaxKeys, 0, clk.now)
	defer s.Close()
	rules := []Rule{NewFixedWindow(7, time.Minute), NewFixedWindow(100, time.Hour)}
	key := []byte("client")
	var passed atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if s.Take(key, clk.now(), rules).Allowed {
					passed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if got := passed.Load(); got != 7 {
		t.Fatalf("%d of 800 concurrent requests passed a window of 7", got)
	}
	full := 0
	for i := range 10 * minMaxKeys {
		if s.Take([]byte(strconv.Itoa(i)), clk.now(), rules).Full {
			full++
		}
	}
	if full == 0 || s.Len() > minMaxKeys {
		t.Fatalf("%d new clients refused as Full, %d held; cap %d", full, s.Len(), minMaxKeys)
	}
	if d := s.Take(key, clk.now(), rules); d.Allowed {
		t.Fatal("a flood of new clients let a spent window pass again")
	}
	clk.advance(time.Minute)
	if d := s.Take(key, clk.now(), rules); !d.Allowed || d.Limit != 7 || d.Remaining != 6 {
		t.Fatalf("when the minute's window ended: %+v, want a new window (6 of 7 left)", d)
	}
	s.Sweep()
	if s.Len() == 0 {
		t.Fatal("clients evicted while their hour's windows run")
	}
	clk.advance(time.Hour)
	s.Sweep()
	if s.Len() != 0 {
		t.Fatalf("%d clients held after all their windows ended", s.Len())
	}
}
