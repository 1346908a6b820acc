//go:build linux

package proxy

import (
	"testing"
	"time"
)

// TestParkedWaveReturnsMemory: the parker hands free memory back to the
// system after a wave of releaseWave parked connections, not for fewer,
// not twice within releaseGap, not when clients that woke park again, and
// again when more park than ever before.
func TestParkedWaveReturnsMemory(t *testing.T) {
	// The trigger alone, without a loop that would call it too.
	p := &parker{}
	start := time.Now()
	released := func(at time.Duration, parked int) bool {
		t.Helper()
		before := p.lastRelease
		p.releaseMemory(start.Add(at), parked)
		for p.releasing.Load() {
			time.Sleep(time.Millisecond)
		}
		return p.lastRelease != before
	}
	for _, step := range []struct {
		at     time.Duration
		parked int
		want   bool
		what   string
	}{
		{0, releaseWave - 1, false, "fewer than a wave parked"},
		{time.Second, releaseWave, true, "a wave parked"},
		{2 * time.Second, 3 * releaseWave, false, "another wave within releaseGap"},
		{releaseGap + time.Second, releaseWave + 10, false, "no wave since the last release"},
		{releaseGap + 2*time.Second, 10, false, "the parked woke"},
		{2*releaseGap + 3*time.Second, releaseWave + 10, false, "the same clients parked again"},
		{3*releaseGap + 4*time.Second, 2*releaseWave + 10, true, "a new high"},
	} {
		if got := released(step.at, step.parked); got != step.want {
			t.Errorf("%s (%d parked at %s): released %v, want %v", step.what, step.parked, step.at, got, step.want)
		}
	}
}
