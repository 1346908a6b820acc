package spikecontrol

import "sync"

// window is a sliding window of the times of the last admissions: at most
// limit of them fall within any period. It holds one timestamp per
// request of the limit (8 bytes each) and no more, however many requests
// arrive. Safe for concurrent use.
type window struct {
	mu     sync.Mutex
	period int64   // ns
	times  []int64 // ring of admission times, oldest at head once full
	head   int
	n      int
}

func newWindow(limit int, period int64) *window {
	return &window{period: period, times: make([]int64, limit)}
}

// decision is what a window says of one request.
type decision struct {
	admitted bool
	// remaining is the admissions left in the window after this one.
	remaining int
	// reset is, when none are left, the time until the oldest admission
	// leaves the window (ns); 0 while some are left.
	reset int64
}

// admit admits a request at now when fewer than limit admissions fall
// within the period before it.
func (w *window) admit(now int64) decision {
	w.mu.Lock()
	defer w.mu.Unlock()
	limit := len(w.times)
	if w.n < limit {
		w.times[(w.head+w.n)%limit] = now
		w.n++
		return w.state(now, true)
	}
	if oldest := w.times[w.head]; now-oldest >= w.period {
		w.times[w.head] = now
		w.head = (w.head + 1) % limit
		return w.state(now, true)
	}
	return w.state(now, false)
}

// state counts the admissions within the period before now. Under w.mu.
func (w *window) state(now int64, admitted bool) decision {
	limit := len(w.times)
	// The ring is in time order: find the first admission still inside
	// the window by bisection.
	lo, hi := 0, w.n
	for lo < hi {
		mid := (lo + hi) / 2
		if now-w.times[(w.head+mid)%limit] >= w.period {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	inside := w.n - lo
	d := decision{admitted: admitted, remaining: limit - inside}
	if d.remaining == 0 {
		d.reset = w.times[(w.head+lo)%limit] + w.period - now
	}
	return d
}
