package proxy

import (
	"sync"
	"syscall"
	"time"
)

// parker holds parked connections in one epoll set, watched by one
// goroutine, so that an idle keep-alive connection costs no goroutine and
// no buffer. Safe for concurrent use.
type parker struct {
	epfd   int
	wake   [2]int // a pipe in the set: a byte written to wake[1] stops the loop
	mu     sync.Mutex
	conns  map[int32]*cappedConn // by file descriptor; guarded by mu
	gen    uint32                // guarded by mu
	closed bool                  // guarded by mu
	done   chan struct{}
}

// newParker returns nil when the system gives no epoll set: connections
// then wait inside fasthttp as they would without parking.
func newParker() *parker {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil
	}
	p := &parker{epfd: epfd, conns: map[int32]*cappedConn{}, done: make(chan struct{})}
	if err := syscall.Pipe2(p.wake[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		syscall.Close(epfd)
		return nil
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(p.wake[0]), Pad: -1}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p.wake[0], &ev); err != nil {
		p.closeFDs()
		return nil
	}
	go p.loop()
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
	c.in.forget(c)
	p.mu.Lock()
	if p.closed || c.sock.isClosed() {
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

func (p *parker) loop() {
	defer close(p.done)
	events := make([]syscall.EpollEvent, 128)
	var expired []*cappedConn
	lastSweep := time.Now()
	for {
		n, err := syscall.EpollWait(p.epfd, events, 1000)
		if err != nil && err != syscall.EINTR {
			n = 0
			time.Sleep(10 * time.Millisecond)
		}
		for _, ev := range events[:max(n, 0)] {
			if ev.Pad == -1 && int(ev.Fd) == p.wake[0] {
				p.shutdown()
				return
			}
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
		// The idle ends, checked once a second: a parked connection
		// closes at most a second after its idle timeout.
		if now := time.Now(); now.Sub(lastSweep) >= time.Second {
			lastSweep = now
			p.mu.Lock()
			for _, c := range p.conns {
				if !now.Before(c.idleEnd) && p.take(c) {
					expired = append(expired, c)
				}
			}
			p.mu.Unlock()
			for i, c := range expired {
				c.closeNow()
				expired[i] = nil
			}
			expired = expired[:0]
		}
	}
}

// stop closes every parked connection and ends the loop.
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
	p.mu.Unlock()
	_, _ = syscall.Write(p.wake[1], []byte{0})
	<-p.done
}

func (p *parker) shutdown() {
	p.mu.Lock()
	var out []*cappedConn
	for _, c := range p.conns {
		if p.take(c) {
			out = append(out, c)
		}
	}
	p.closed = true
	p.mu.Unlock()
	for _, c := range out {
		c.closeNow()
	}
	p.closeFDs()
}

func (p *parker) closeFDs() {
	syscall.Close(p.epfd)
	syscall.Close(p.wake[0])
	syscall.Close(p.wake[1])
}
