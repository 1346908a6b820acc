// Package memguard runs a test body in a child process whose memory is
// watched, so that a test of input that could make the code allocate without
// bound (a YAML alias bomb) fails instead of taking the machine's memory.
// It is for tests only.
package memguard

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"testing"
	"time"
)

// childEnv marks the child process and names the test it runs.
const childEnv = "FLEXGATE_MEMGUARD_TEST"

// deadline bounds the child: a body that has not finished by then is
// killed. It guards against a hang; it is not a timing assertion.
const deadline = 3 * time.Minute

// Run runs body under a memory limit of limit bytes (Go heap and goroutine
// stacks). The test is run again in a child process of the test binary,
// which runs body with a watchdog that ends the child at once when its
// memory passes limit; a goroutine stack is capped at 64 MiB. A failure in
// the child, or the watchdog, fails t with the child's output. Run must be
// called from a top-level test (not a subtest), before any other work,
// and it is not safe to call it twice in one test.
func Run(t *testing.T, limit uint64, body func(t *testing.T)) {
	t.Helper()
	if os.Getenv(childEnv) == t.Name() {
		debug.SetMaxStack(64 << 20)
		// Collect garbage hard well before the limit, so that only
		// memory the body holds can trip the watchdog.
		debug.SetMemoryLimit(int64(limit / 2))
		stop := watch(limit)
		defer stop()
		body(t)
		return
	}
	if strings.Contains(t.Name(), "/") {
		t.Fatal("memguard.Run must be called from a top-level test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+regexp.QuoteMeta(t.Name())+"$",
		"-test.count=1", "-test.v", "-test.timeout="+deadline.String())
	cmd.Env = append(os.Environ(), childEnv+"="+t.Name())
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("the test did not finish within %s:\n%s", deadline, out)
	}
	if err != nil {
		t.Fatalf("the test failed in its memory-guarded child (%v):\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("the memory-guarded child did not run the test:\n%s", out)
	}
}

// watch samples the process's memory every few milliseconds and exits the
// process when it passes limit: an allocation loop cannot be stopped any
// other way.
func watch(limit uint64) (stop func()) {
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/stacks:bytes"},
	}
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			metrics.Read(samples)
			used := samples[0].Value.Uint64() + samples[1].Value.Uint64()
			if used > limit {
				fmt.Fprintf(os.Stderr, "memguard: the test holds %d MiB, more than its limit of %d MiB; stopped\n", used>>20, limit>>20)
				os.Exit(3)
			}
		}
	}()
	return func() { close(done) }
}
