package proxy

import (
	"errors"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// parker holds parked connections in one epoll set, so that an idle
// keep-alive connection costs no goroutine and no buffer. The set's own
// descriptor waits in Go's netpoller like a socket, so that its goroutine
// never blocks a thread in epoll_wait. Safe for concurrent use.
type parker struct {
	epfd   int
	f      *os.File // epfd, as the netpoller sees it
	mu     sync.Mutex
	conns  map[int32]*cappedConn // by file descriptor; guarded by mu
	gen    uint32                // guarded by mu
	closed bool                  // guarded by mu
	done   chan struct{}

	// The loop's own, for releaseMemory: when it last released, and the
	// most connections parked at a release so far.
	lastRelease time.Time
	highWater   int
	releasing   atomic.Bool
}

// Connections that park leave behind what they used while they were
// served (read buffers, request contexts, goroutine stacks). The pools let
// go of it at the second collection after (sync.Pool keeps a victim
// generation), and the runtime then keeps the free memory for reuse, so a
// gateway that took many connections in a burst and holds them idle would
// carry that burst in its RSS long after. When releaseWave more
// connections are parked than at any release before, the loop has the
// runtime collect twice and hand the free memory back to the system, at
// most every releaseGap (bench/PROFILE.md: 7.1 KiB of RSS per idle
// connection becomes 2.5). Only a new high counts: clients that all wake
// and park again in step (a poll every few seconds) reuse what they
// freed, and releasing it each time would cost two collections a cycle.
const (
	releaseWave = 1024
	releaseGap  = 5 * time.Second
)

// newParker returns nil when the system gives no epoll set: connections
// then wait inside fasthttp as they would without parking.
func newParker() *parker {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		return nil
	}
	p := &parker{epfd: epfd, f: os.NewFile(uintptr(epfd), "flexgate-parked-connections"),
		conns: map[int32]*cappedConn{}, done: make(chan struct{})}
	rc, err := p.f.SyscallConn()
	if err != nil || p.f.SetReadDeadline(time.Time{}) != nil {
		// Not pollable: waiting on it would hold a thread.
		p.f.Close()
		return nil
	}
	go p.loop(rc)
	return p
}

// parkFD is the descriptor of c's socket, or -1 when c has none (the
// in-memory connections of benchmarks), which never parks.
func parkFD(c any) int {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return -1
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1
	}
	fd := -1
	if rc.Control(func(f uintptr) { fd = int(f) }) != nil {
		return -1
	}
	return fd
}

// park puts c in the set until a byte or its idle end arrives; when it
// cannot, it closes c. It always reports true: c is no longer the
// caller's.
func (p *parker) park(c *cappedConn) bool {
	in := c.in
	in.forget(c)
	p.mu.Lock()
	if p.closed || c.sock.isClosed() || in.draining.Load() {
		p.mu.Unlock()
		c.closeNow()
		return true
	}
	p.gen++
	c.parkGen = p.gen
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT,
		Fd: int32(c.fd), Pad: int32(c.parkGen)}
	if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
		p.mu.Unlock()
		c.closeNow()
		return true
	}
	p.conns[int32(c.fd)] = c
	c.sock.parked.Add(1)
	p.mu.Unlock()
	return true
}

// take removes c from the set if it is still there; the caller holds mu.
func (p *parker) take(c *cappedConn) bool {
	if p.conns[int32(c.fd)] != c {
		return false
	}
	delete(p.conns, int32(c.fd))
	_ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, c.fd, nil)
	c.sock.parked.Add(-1)
	return true
}

// unpark takes c out of the set before it is closed by someone else
// (a drain, a shutdown).
func (p *parker) unpark(c *cappedConn) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.take(c)
	p.mu.Unlock()
}

// closeSocket closes the connections parked from s: it no longer accepts,
// and nobody would serve them.
func (p *parker) closeSocket(s *socket) {
	if p == nil {
		return
	}
	p.mu.Lock()
	var out []*cappedConn
	for _, c := range p.conns {
		if c.sock == s && p.take(c) {
			out = append(out, c)
		}
	}
	p.mu.Unlock()
	for _, c := range out {
		c.closeNow()
	}
}

func (p *parker) loop(rc syscall.RawConn) {
	defer close(p.done)
	events := make([]syscall.EpollEvent, 128)
	var expired []*cappedConn
	lastSweep := time.Now()
	for {
		// The idle ends are checked once a second, whether or not anything
		// woke the set meanwhile: a parked connection closes at most a
		// second after its idle timeout, even while others come and go.
		_ = p.f.SetReadDeadline(lastSweep.Add(time.Second))
		n := 0
		err := rc.Read(func(fd uintptr) bool {
			n, _ = syscall.EpollWait(int(fd), events, 0)
			return n > 0
		})
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return // stop closed the set
		}
		for _, ev := range events[:max(n, 0)] {
			p.mu.Lock()
			c := p.conns[ev.Fd]
			if c == nil || int32(c.parkGen) != ev.Pad || !p.take(c) {
				p.mu.Unlock()
				continue
			}
			p.mu.Unlock()
			if ev.Events&syscall.EPOLLIN != 0 {
				c.resume()
			} else {
				c.closeNow()
			}
		}
		now := time.Now()
		if now.Sub(lastSweep) < time.Second {
			continue
		}
		lastSweep = now
		p.mu.Lock()
		for _, c := range p.conns {
			if !now.Before(c.idleEnd) && p.take(c) {
				expired = append(expired, c)
			}
		}
		parked := len(p.conns)
		p.mu.Unlock()
		p.releaseMemory(now, parked)
		for i, c := range expired {
			c.closeNow()
			expired[i] = nil
		}
		expired = expired[:0]
	}
}

// releaseMemory returns the heap's free memory to the system after a wave
// of connections parked to a new high (see releaseWave). It forces collections, so it
// runs beside the loop, one at a time.
func (p *parker) releaseMemory(now time.Time, parked int) {
	if parked < p.highWater+releaseWave || now.Sub(p.lastRelease) < releaseGap || p.releasing.Load() {
		return
	}
	p.lastRelease, p.highWater = now, parked
	p.releasing.Store(true)
	go func() {
		defer p.releasing.Store(false)
		// The first collection moves the pools' contents to their victim
		// generation, the second frees it; FreeOSMemory returns what is
		// free after each.
		debug.FreeOSMemory()
		debug.FreeOSMemory()
	}()
}

// stop closes every parked connection and the set, and ends the loop.
func (p *parker) stop() {
	if p == nil {
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.done
		return
	}
	p.closed = true
	var out []*cappedConn
	for _, c := range p.conns {
		if p.take(c) {
			out = append(out, c)
		}
	}
	p.mu.Unlock()
	for _, c := range out {
		c.closeNow()
	}
	p.f.Close()
	<-p.done
}
