package proxy

import (
	"errors"
	"os"
	"time"
)

// parkAfter is how long a keep-alive connection waits for its next request
// inside fasthttp's serve loop, with the loop's goroutine, request context
// and read buffer (as large as limits.maxHeaderBytes) held, before it is
// parked: the loop ends, everything it held goes back to the pools, and the
// socket waits in the gateway's one epoll set with nothing but its own
// structures (about 1 KiB) until its next request arrives, when it is
// served by a worker as a new connection would be. A client that sends its
// next request sooner never notices; the request that wakes a parked
// connection costs about a third more CPU than one on a busy connection
// (bench/PROFILE.md), hence a second: clients that send a request a second
// or more often never pay it.
const parkAfter = time.Second

// Parking follows fasthttp's serve loop from the connection's side:
//
//  1. the handler returns (served is set);
//  2. fasthttp sets the keep-alive read deadline, the first non-zero read
//     deadline after the handler; the connection arms, remembers that
//     deadline as the end of its idle time and sets now+parkAfter instead;
//  3. the next read is the wait for the next request. Data, or any other
//     deadline set meanwhile (a pipelined request already buffered sets the
//     request's read timeout), disarms. A timeout before the idle time is up
//     marks the connection suspending and is returned to fasthttp, which
//     ends its loop quietly (nothing read on a kept-alive connection) and
//     closes the connection;
//  4. Close of a suspending connection parks it instead.
//
// A TLS connection keeps its session: a deadline error is temporary to
// crypto/tls, and its Close, which would send close_notify, parks as well.

// armDeadline is step 2; it returns the deadline to set.
func (c *cappedConn) armDeadline(t time.Time) time.Time {
	// Written only when it changes: a WebSocket tunnel sets the client's
	// read deadline from one goroutine while another reads, and neither
	// may then write what the other reads.
	if c.armed {
		c.armed = false
	}
	if !c.served || t.IsZero() {
		return t
	}
	c.served = false
	// Without a read timeout, fasthttp sets no deadline between a
	// pipelined request's first byte and the reads that complete its head,
	// which would look like the wait for a next request.
	if c.sock == nil || c.in == nil || c.in.l.limits.read <= 0 {
		return t
	}
	// fasthttp set t to now + its idle timeout (IdleTimeout, or
	// ReadTimeout without one): the park deadline is had without reading
	// the clock again.
	lim := &c.in.l.limits
	idle := lim.idle
	if idle == 0 {
		idle = lim.read
	}
	if after := c.sock.g.parkAfter; after < idle {
		c.armed = true
		c.idleEnd = t
		return t.Add(after - idle)
	}
	return t
}

// SetReadDeadline arms the connection at a keep-alive wait (see above).
func (c *cappedConn) SetReadDeadline(t time.Time) error {
	return c.Conn.SetReadDeadline(c.armDeadline(t))
}

// SetDeadline is used around hijacks: the connection is no longer
// fasthttp's to park.
func (c *cappedConn) SetDeadline(t time.Time) error {
	if c.armed || c.served { // written only when it changes, as in armDeadline
		c.armed, c.served = false, false
	}
	return c.Conn.SetDeadline(t)
}

func (c *cappedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.armed {
		c.armed = false
		switch {
		case n == 0 && errors.Is(err, os.ErrDeadlineExceeded) && time.Now().Before(c.idleEnd):
			c.suspending.Store(true)
		case n > 0 && c.tls != nil:
			// crypto/tls may read on under the short deadline, for the
			// rest of a record or past a record that carries no data,
			// before fasthttp sets the request's: give it the idle end.
			_ = c.Conn.SetReadDeadline(c.idleEnd)
		}
	}
	return n, err
}

// markServed is step 1, called as the handler returns.
func markServed(c any) {
	switch c := c.(type) {
	case *cappedConn:
		c.served = true
	case *tlsConn:
		c.cc.served = true
	}
}

// parkOnClose is step 4: it reports whether c was suspending and is now
// parked (or, when it could not be, closed).
func (c *cappedConn) parkOnClose() bool {
	if !c.suspending.CompareAndSwap(true, false) {
		return false
	}
	return c.sock.g.parker.park(c)
}

// resume hands a parked connection whose next request has arrived to the
// listener serving its socket.
func (c *cappedConn) resume() {
	go c.sock.hand(c)
}
