package proxy

import (
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// settleTime is how long an upstream connection rests after an answer
// before it may carry another request.
//
// The checks that a connection holds nothing unread (see idle) see only
// what has arrived. An upstream that answers wrongly framed writes its
// extra bytes after the answer, a moment later: sent at once, the next
// request would have them read as its answer, another client's. Resting
// first lets those bytes arrive and be seen. A connection rests only while
// the pool has room for another, so nobody waits for one that rests.
const settleTime = 2 * time.Millisecond

// settler holds an upstream's connections while they rest, then probes
// each once more and gives it back to the pool, or closes it. Safe for
// concurrent use.
type settler interface {
	// settle gives back a connection that finished an exchange cleanly.
	settle(cc any)
	// stop closes the resting connections and ends the settler.
	stop()
}

// connHandle is what the settler needs of fasthttp's pooled connection,
// whose type is unexported.
type connHandle interface {
	Conn() net.Conn
}

type resting[C connHandle] struct {
	cc C
	at time.Time // when it may be used again
}

// hostSettler is a settler for one fasthttp.HostClient. Its type
// parameter is fasthttp's connection type, inferred from the method
// expressions newSettler is given.
type hostSettler[C connHandle] struct {
	hc      *fasthttp.HostClient
	release func(*fasthttp.HostClient, C)
	close   func(*fasthttp.HostClient, C)
	max     int
	onDirty func(idleState)
	// reusable says whether the upstream's connections may be reused at
	// all (see upstream.distrustUntil).
	reusable func() bool

	mu      sync.Mutex
	queue   []resting[C] // in the order they rest, so the first is due first
	running bool         // the runner goroutine has started
	stopped bool
	done    chan struct{}
	// wake tells a runner waiting for work that the queue has some.
	wake chan struct{}

	// The runner's own: made once, so that waking it allocates nothing.
	timer *time.Timer
	due   []resting[C]
}

func newSettler[C connHandle](hc *fasthttp.HostClient, release, closeConn func(*fasthttp.HostClient, C),
	onDirty func(idleState), reusable func() bool) *hostSettler[C] {
	max := hc.MaxConns
	if max <= 0 {
		max = fasthttp.DefaultMaxConnsPerHost
	}
	timer := time.NewTimer(settleTime)
	timer.Stop()
	return &hostSettler[C]{hc: hc, release: release, close: closeConn, max: max, onDirty: onDirty,
		reusable: reusable, done: make(chan struct{}), wake: make(chan struct{}, 1), timer: timer}
}

func (s *hostSettler[C]) settle(cc any) {
	c := cc.(C)
	// At its cap the pool may have a request waiting for a connection:
	// this one goes back at once rather than keep it waiting.
	if s.hc.ConnsCount() >= s.max {
		s.putBack(c)
		return
	}
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		s.close(s.hc, c)
		return
	}
	s.queue = append(s.queue, resting[C]{cc: c, at: time.Now().Add(settleTime)})
	first := len(s.queue) == 1
	start := !s.running
	s.running = true
	s.mu.Unlock()
	switch {
	case start:
		// One runner per pool, started with its first answer and ended
		// by stop: starting one per burst would allocate.
		go s.run()
	case first:
		// Connections rest for the same time, so a later one is never due
		// before those queued: the runner needs waking only when it has
		// run out of work.
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// putBack probes c and returns it to the pool, or closes it.
func (s *hostSettler[C]) putBack(c C) {
	state := idle(c.Conn(), nil)
	if state == idleClean && s.reusable() {
		s.release(s.hc, c)
		return
	}
	s.onDirty(state)
	s.close(s.hc, c)
}

func (s *hostSettler[C]) run() {
	t := s.timer
	defer t.Stop()
	for {
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			return
		}
		if len(s.queue) == 0 {
			s.mu.Unlock()
			select {
			case <-s.wake:
				continue
			case <-s.done:
				return
			}
		}
		now := time.Now()
		n := 0
		for n < len(s.queue) && !s.queue[n].at.After(now) {
			n++
		}
		due := append(s.due[:0], s.queue[:n]...)
		s.due = due
		clear(s.queue[:n])
		s.queue = append(s.queue[:0], s.queue[n:]...)
		var wait time.Duration
		if len(s.queue) > 0 {
			wait = s.queue[0].at.Sub(now)
		}
		s.mu.Unlock()
		for i := range due {
			s.putBack(due[i].cc)
		}
		clear(due)
		if wait > 0 {
			t.Reset(wait)
			select {
			case <-t.C:
			case <-s.done:
				return
			}
		}
	}
}

func (s *hostSettler[C]) stop() {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.stopped = true
	q := s.queue
	s.queue = nil
	s.mu.Unlock()
	close(s.done)
	for _, r := range q {
		s.close(s.hc, r.cc)
	}
}
