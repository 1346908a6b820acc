//go:build linux

// Command evloop is a measurement prototype, not a gateway: an HTTP/1.1
// keep-alive reverse proxy on raw epoll event loops, written to measure
// what the I/O model costs apart from everything else. flexgate (like
// fasthttp) serves each connection from a goroutine and lets Go's
// netpoller wake it; nginx and HAProxy run one event loop per core. This
// program does what nginx does for a request: one loop per core (an OS
// thread each), its own SO_REUSEPORT listener, level-triggered epoll, and
// upstream connections that belong to the loop, so that a request is read,
// sent on and answered without a goroutine switch or a futex.
//
// By default it forwards requests and answers as they are, framed by
// Content-Length (a chunked answer closes the connection): it parses no
// header beyond that and adds none, so the CPU it spends per request is a
// floor for the I/O model, not a gateway's cost. With -headers it also
// does a gateway's header work on each exchange, with fasthttp's parser
// and writer: it parses the request's head and the answer's, adds the
// forwarding headers flexgate adds (X-Forwarded-For, Forwarded,
// X-Real-IP, X-Forwarded-Proto, -Host and -Port, X-Request-Id and a
// traceparent, from a random id per request) and the answer's
// X-Request-Id, and writes both heads anew. bench/PROFILE.md compares it
// with flexgate and nginx.
//
// Usage:
//
//	go run ./bench/evloop -listen 127.0.0.1:8080 -upstream 127.0.0.1:8081 [-loops N] [-headers]
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to serve")
	upstream := flag.String("upstream", "127.0.0.1:8081", "upstream address (IPv4 or IPv6 literal and port)")
	loops := flag.Int("loops", runtime.GOMAXPROCS(0), "event loops, one OS thread each")
	headers := flag.Bool("headers", false, "parse both heads with fasthttp and add the forwarding headers, as a gateway does")
	flag.Parse()
	_, _, errs, err := start(*listen, *upstream, *loops, *headers)
	if err == nil {
		err = <-errs
	}
	fmt.Fprintln(os.Stderr, "evloop:", err)
	os.Exit(1)
}

// start runs loops event loops on listen, each with a listener of its own
// on the same port. It returns the address they serve, a stop function
// that ends them, and where each reports why it ended.
func start(listen, upstream string, loops int, headers bool) (addr string, stop func(), errs <-chan error, err error) {
	la, err := netip.ParseAddrPort(listen)
	if err != nil {
		return "", nil, nil, fmt.Errorf("-listen: %w", err)
	}
	ua, err := netip.ParseAddrPort(upstream)
	if err != nil {
		return "", nil, nil, fmt.Errorf("-upstream: %w", err)
	}
	var all []*loop
	stop = func() {
		for _, l := range all {
			l.stop()
		}
	}
	for i := range loops {
		l, err := newLoop(la, ua)
		if err != nil {
			stop()
			return "", nil, nil, err
		}
		all = append(all, l)
		if i == 0 && la.Port() == 0 {
			// The other loops share the port the first one got.
			sa, err := unix.Getsockname(l.lfd)
			if err != nil {
				stop()
				return "", nil, nil, err
			}
			switch sa := sa.(type) {
			case *unix.SockaddrInet4:
				la = netip.AddrPortFrom(la.Addr(), uint16(sa.Port))
			case *unix.SockaddrInet6:
				la = netip.AddrPortFrom(la.Addr(), uint16(sa.Port))
			}
		}
	}
	ch := make(chan error, loops)
	for _, l := range all {
		if headers {
			l.gw = newGatewayWork(la.Port())
		}
		go func() { ch <- l.run() }()
	}
	return la.String(), stop, ch, nil
}

// conn is a client connection or an upstream connection of a loop.
type conn struct {
	fd     int
	client bool
	// peer is the other end of the exchange: a client's upstream, an
	// upstream's client. A client keeps its upstream connection.
	peer *conn
	// in holds bytes read and not yet passed on; out bytes not yet written.
	in, out []byte
	// waiting: the client's request was sent on and its answer is due.
	waiting bool
	// connecting: an upstream connection whose connect has not finished.
	connecting bool
	// events are the epoll events registered for fd.
	events uint32
	// addr is a client's address (with -headers); id the request id of
	// the exchange in flight.
	addr []byte
	id   [32]byte
}

type loop struct {
	ep, lfd int
	// wake is an eventfd: written, it ends the loop.
	wake  int
	up    unix.Sockaddr
	conns map[int]*conn
	buf   []byte
	// gw does the gateway's header work (-headers); nil: none.
	gw *gatewayWork
}

// errStopped is why a loop that was stopped ended.
var errStopped = errors.New("stopped")

func sockaddr(a netip.AddrPort) unix.Sockaddr {
	if a.Addr().Is4() {
		return &unix.SockaddrInet4{Port: int(a.Port()), Addr: a.Addr().As4()}
	}
	return &unix.SockaddrInet6{Port: int(a.Port()), Addr: a.Addr().As16()}
}

func family(a netip.AddrPort) int {
	if a.Addr().Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

func newLoop(listen, upstream netip.AddrPort) (*loop, error) {
	lfd, err := unix.Socket(family(listen), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	for _, opt := range []int{unix.SO_REUSEADDR, unix.SO_REUSEPORT} {
		if err := unix.SetsockoptInt(lfd, unix.SOL_SOCKET, opt, 1); err != nil {
			return nil, err
		}
	}
	if err := unix.Bind(lfd, sockaddr(listen)); err != nil {
		return nil, fmt.Errorf("bind %s: %w", listen, err)
	}
	if err := unix.Listen(lfd, 4096); err != nil {
		return nil, err
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, err
	}
	l := &loop{ep: ep, lfd: lfd, wake: wake, up: sockaddr(upstream), conns: map[int]*conn{}, buf: make([]byte, 64<<10)}
	for _, fd := range []int{lfd, wake} {
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// stop makes the loop end; run closes what it holds.
func (l *loop) stop() {
	_, _ = unix.Write(l.wake, []byte{1, 0, 0, 0, 0, 0, 0, 0})
}

func (l *loop) run() error {
	// The loop owns its thread, as an nginx worker owns its process.
	runtime.LockOSThread()
	defer func() {
		for fd := range l.conns {
			unix.Close(fd)
		}
		for _, fd := range []int{l.lfd, l.wake, l.ep} {
			unix.Close(fd)
		}
	}()
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(l.ep, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return err
		}
		for _, ev := range events[:n] {
			fd := int(ev.Fd)
			if fd == l.wake {
				return errStopped
			}
			if fd == l.lfd {
				l.accept()
				continue
			}
			c := l.conns[fd]
			if c == nil {
				continue
			}
			if ev.Events&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 && !l.writable(c) {
				continue
			}
			if ev.Events&(unix.EPOLLIN|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
				l.readable(c)
			}
		}
	}
}

func (l *loop) accept() {
	for {
		fd, sa, err := unix.Accept4(l.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			return // EAGAIN: none left; other errors: the next event retries
		}
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		c := &conn{fd: fd, client: true}
		if l.gw != nil {
			c.addr = peerAddr(sa)
		}
		if l.add(c, unix.EPOLLIN) != nil {
			unix.Close(fd)
		}
	}
}

func (l *loop) add(c *conn, events uint32) error {
	c.events = events
	if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, c.fd, &unix.EpollEvent{Events: events, Fd: int32(c.fd)}); err != nil {
		return err
	}
	l.conns[c.fd] = c
	return nil
}

func (l *loop) watch(c *conn, events uint32) {
	if c.events == events {
		return
	}
	c.events = events
	_ = unix.EpollCtl(l.ep, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: events, Fd: int32(c.fd)})
}

// close closes c and its peer: an exchange cut on either side ends both.
func (l *loop) close(c *conn) {
	for _, x := range []*conn{c, c.peer} {
		if x == nil || l.conns[x.fd] != x {
			continue
		}
		delete(l.conns, x.fd)
		unix.Close(x.fd)
	}
}

func (l *loop) readable(c *conn) {
	for {
		n, err := unix.Read(c.fd, l.buf)
		if n > 0 {
			c.in = append(c.in, l.buf[:n]...)
			if n == len(l.buf) {
				continue
			}
			break
		}
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		l.close(c) // end of stream or error
		return
	}
	if c.client {
		l.forward(c)
		return
	}
	l.answer(c)
}

// forward sends the client's next complete request to its upstream.
func (l *loop) forward(c *conn) {
	if c.waiting {
		return
	}
	end, ok := messageEnd(c.in)
	if !ok {
		return
	}
	if end < 0 {
		l.close(c)
		return
	}
	up := c.peer
	if up == nil {
		var err error
		if up, err = l.dial(); err != nil {
			l.close(c)
			return
		}
		up.peer, c.peer = c, up
	}
	c.waiting = true
	if l.gw != nil {
		var err error
		if up.out, err = l.gw.request(up.out, c.in[:end], c); err != nil {
			l.gw.failed("request", err)
			l.close(c)
			return
		}
	} else {
		up.out = append(up.out, c.in[:end]...)
	}
	c.in = c.in[:copy(c.in, c.in[end:])]
	if !up.connecting {
		l.flush(up)
	}
}

// answer passes the upstream's complete answer to its client.
func (l *loop) answer(up *conn) {
	c := up.peer
	end, ok := messageEnd(up.in)
	if !ok {
		return
	}
	if end < 0 || c == nil || !c.waiting {
		l.close(up)
		return
	}
	if l.gw != nil {
		var err error
		if c.out, err = l.gw.response(c.out, up.in[:end], c); err != nil {
			l.gw.failed("answer", err)
			l.close(up)
			return
		}
	} else {
		c.out = append(c.out, up.in[:end]...)
	}
	up.in = up.in[:copy(up.in, up.in[end:])]
	c.waiting = false
	if !l.flush(c) {
		return
	}
	l.forward(c) // a pipelined request may wait
}

func (l *loop) dial() (*conn, error) {
	fam := unix.AF_INET
	if _, ok := l.up.(*unix.SockaddrInet6); ok {
		fam = unix.AF_INET6
	}
	fd, err := unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	up := &conn{fd: fd}
	err = unix.Connect(fd, l.up)
	switch {
	case err == nil:
		err = l.add(up, unix.EPOLLIN)
	case errors.Is(err, unix.EINPROGRESS):
		up.connecting = true
		err = l.add(up, unix.EPOLLIN|unix.EPOLLOUT)
	}
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return up, nil
}

// writable finishes a connect or a write that the socket held back; false
// when c was closed.
func (l *loop) writable(c *conn) bool {
	if c.connecting {
		if v, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || v != 0 {
			l.close(c)
			return false
		}
		c.connecting = false
	}
	return l.flush(c)
}

// flush writes what c holds, watching for room when the socket is full;
// false when c was closed.
func (l *loop) flush(c *conn) bool {
	for len(c.out) > 0 {
		n, err := unix.Write(c.fd, c.out)
		if n > 0 {
			c.out = c.out[:copy(c.out, c.out[n:])]
			continue
		}
		if errors.Is(err, unix.EAGAIN) {
			l.watch(c, unix.EPOLLIN|unix.EPOLLOUT)
			return true
		}
		l.close(c)
		return false
	}
	l.watch(c, unix.EPOLLIN)
	return true
}

// messageEnd finds where the HTTP/1.1 message at the start of b ends: its
// head and a Content-Length body. ok is false while it is incomplete; end
// is -1 for a message this prototype does not frame (chunked, or a
// Content-Length it cannot read).
func messageEnd(b []byte) (end int, ok bool) {
	h := bytes.Index(b, []byte("\r\n\r\n"))
	if h < 0 {
		return 0, false
	}
	head := b[:h+2]
	if headerValue(head, "transfer-encoding") != nil {
		return -1, true
	}
	length := 0
	if v := headerValue(head, "content-length"); v != nil {
		n, err := strconv.Atoi(string(bytes.TrimSpace(v)))
		if err != nil || n < 0 {
			return -1, true
		}
		length = n
	}
	end = h + 4 + length
	if len(b) < end {
		return 0, false
	}
	return end, true
}

// headerValue is the value of the header name (lower case) in head, or nil.
func headerValue(head []byte, name string) []byte {
	for line := range bytes.SplitSeq(head, []byte("\r\n")) {
		k, v, found := bytes.Cut(line, []byte(":"))
		if found && len(k) == len(name) && bytes.EqualFold(k, []byte(name)) {
			return v
		}
	}
	return nil
}
