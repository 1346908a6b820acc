package main

import (
	"math"
	"sort"
	"time"
)

// Outcomes of a request, as the accuracy run counts them.
const (
	admitted    = iota // 200: the limit let it through
	refused            // 429: over the limit
	unavailable        // 503: the shared storage did not decide in time (onStoreError: deny)
	otherStatus        // anything else: a harness or gateway fault
	outcomes
)

// outcomeOf classifies an HTTP status.
func outcomeOf(status int) int {
	switch status {
	case 200:
		return admitted
	case 429:
		return refused
	case 503:
		return unavailable
	}
	return otherStatus
}

// tally counts responses by window of the measured interval [start,
// start + windows×period) and, for admitted ones, by client. A request
// counts at the midpoint of its round trip: the gateway decided somewhere
// between sending and receiving, and the midpoint's error is the same at
// both ends of a window, so it cancels in steady state. A tally is used by
// one goroutine; merge combines them afterwards.
type tally struct {
	start  time.Time
	period time.Duration
	counts [][outcomes]int64
	// clientAdmits are the admitted requests of each client over all
	// windows.
	clientAdmits []int64
	// outside counts responses before or after the measured windows
	// (warm-up and the last requests in flight).
	outside int64
}

func newTally(start time.Time, period time.Duration, windows, clients int) *tally {
	return &tally{start: start, period: period, counts: make([][outcomes]int64, windows), clientAdmits: make([]int64, clients)}
}

// add counts one response of client, decided at at.
func (t *tally) add(at time.Time, client, status int) {
	d := at.Sub(t.start)
	if d < 0 {
		t.outside++
		return
	}
	w := int(d / t.period)
	if w >= len(t.counts) {
		t.outside++
		return
	}
	o := outcomeOf(status)
	t.counts[w][o]++
	if o == admitted {
		t.clientAdmits[client]++
	}
}

// merge adds o's counts to t's; both cover the same windows.
func (t *tally) merge(o *tally) {
	for w := range t.counts {
		for k := range t.counts[w] {
			t.counts[w][k] += o.counts[w][k]
		}
	}
	for c := range t.clientAdmits {
		t.clientAdmits[c] += o.clientAdmits[c]
	}
	t.outside += o.outside
}

// Window is one window's counts against what the limit allows.
type Window struct {
	Admitted, Refused, Unavailable, Other int64
	// Expected is what the limit lets through in a window for all clients
	// together, the bucket being empty at its start (the warm-up spent the
	// burst): limit × clients.
	Expected float64
	// Deviation is (Admitted - Expected) / Expected.
	Deviation float64
}

// Accuracy is a tally held against the limit.
type Accuracy struct {
	Windows []Window
	Total   Window
	// WorstClient is the client whose total strays furthest from its
	// share (limit × windows), and by how much.
	WorstClient          int
	WorstClientDeviation float64
	// MaxWindowDeviation is the largest |Deviation| of one window.
	MaxWindowDeviation float64
	Outside            int64
}

// accuracy holds t against a limit of limit per period for each client.
func (t *tally) accuracy(limit float64) Accuracy {
	clients := float64(len(t.clientAdmits))
	var a Accuracy
	for _, c := range t.counts {
		w := Window{Admitted: c[admitted], Refused: c[refused], Unavailable: c[unavailable], Other: c[otherStatus], Expected: limit * clients}
		w.Deviation = deviation(w.Admitted, w.Expected)
		a.MaxWindowDeviation = math.Max(a.MaxWindowDeviation, math.Abs(w.Deviation))
		a.Windows = append(a.Windows, w)
		a.Total.Admitted += w.Admitted
		a.Total.Refused += w.Refused
		a.Total.Unavailable += w.Unavailable
		a.Total.Other += w.Other
		a.Total.Expected += w.Expected
	}
	a.Total.Deviation = deviation(a.Total.Admitted, a.Total.Expected)
	share := limit * float64(len(t.counts))
	for c, n := range t.clientAdmits {
		if d := deviation(n, share); c == 0 || math.Abs(d) > math.Abs(a.WorstClientDeviation) {
			a.WorstClient, a.WorstClientDeviation = c, d
		}
	}
	a.Outside = t.outside
	return a
}

func deviation(got int64, want float64) float64 {
	if want == 0 {
		return 0
	}
	return (float64(got) - want) / want
}

// percentile is the nearest-rank p-th percentile (0 < p ≤ 100) of sorted,
// 0 for none.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// Latency summarises a set of round trips.
type Latency struct {
	Count         int
	P50, P99, Max time.Duration
}

func summarize(d []time.Duration) Latency {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	l := Latency{Count: len(d), P50: percentile(d, 50), P99: percentile(d, 99)}
	if len(d) > 0 {
		l.Max = d[len(d)-1]
	}
	return l
}

// median of xs, 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}
