package proxy

import (
	"net"
	"testing"
	"time"
)

// TestDrainingConnectionClosesOnClose: a connection whose wait for its
// next request has just timed out, closed by a drain (fasthttp's shutdown,
// closeAll), is closed rather than parked: the serving goroutine closes it
// again later, by when a parked connection could be served anew.
func TestDrainingConnectionClosesOnClose(t *testing.T) {
	p := newParker()
	if p == nil {
		t.Skip("idle connections do not park on this system")
	}
	defer p.stop()
	g := &Gateway{parker: p, parkAfter: time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	s := &socket{g: g, ln: ln, closed: make(chan struct{}), done: make(chan struct{})}
	l := &listener{g: g, sock: s}
	in := &inbox{l: l, conns: make(chan *cappedConn), closed: make(chan struct{}), live: map[*cappedConn]struct{}{}}
	l.in = in
	s.cur.Store(l)
	defer in.Close()
	lim := newConnLimiter(g, 10)
	lim.open.Add(1)
	c := &cappedConn{Conn: server, lim: lim, sock: s, fd: parkFD(server)}
	if c.fd < 0 {
		t.Fatal("no descriptor")
	}
	c.in, in.live[c] = in, struct{}{}

	in.draining.Store(true)
	c.suspending.Store(true) // its keep-alive read has just timed out
	_ = c.Close()            // the drain's
	if n := s.parked.Load(); n != 0 {
		t.Fatalf("%d connections parked by a draining listener's Close", n)
	}
	_ = c.Close() // the serving goroutine's, later: nothing left to do
	_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
	var one [1]byte
	if _, err := client.Read(one[:]); err == nil {
		t.Fatal("bytes on a closed connection")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the connection was left open")
	}
	if n := lim.open.Load(); n != 0 {
		t.Errorf("%d places still taken", n)
	}
}
