package ratelimit

import (
	"flag"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flexgate/flexgate/chain"
)

// fakeClock is a clock that moves only when a test says so.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := new(fakeClock)
	c.ns.Store(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) now() int64              { return c.ns.Load() }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// limiter returns the i-th policy of c as a Limiter running on clk.
func limiter(t testing.TB, c *chain.Chain, i int, clk *fakeClock) *Limiter {
	t.Helper()
	l, ok := c.Policies[i].Policy.(*Limiter)
	if !ok {
		t.Fatalf("policy %d is %T, not *Limiter", i, c.Policies[i].Policy)
	}
	l.clock = clk.now
	if ms, ok := l.store.(*MemStore); ok {
		ms.clock = clk.now
	}
	return l
}

// TestMain quiets the shared-storage connection's log lines (it logs to
// the default logger) unless the tests run with -v.
func TestMain(m *testing.M) {
	flag.Parse()
	if !testing.Verbose() {
		slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	}
	os.Exit(m.Run())
}
