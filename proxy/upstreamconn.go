package proxy

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"sync/atomic"
	"syscall"
	"time"
)

// idleState is what waits unread on an upstream connection between two
// exchanges.
type idleState uint8

const (
	// idleClean: nothing; the connection may carry the next request.
	idleClean idleState = iota
	// idleData: bytes the upstream sent outside any exchange. Read as the
	// next request's answer they would shift every later answer on the
	// connection by one: another client's response to this one.
	idleData
	// idleClosed: the upstream closed or reset the connection.
	idleClosed
)

// upstreamConn is a connection the gateway dialed to an upstream. It can
// tell, without reading and without waiting, whether bytes or an end of
// stream are waiting on it (see idle).
type upstreamConn struct {
	net.Conn
	raw   syscall.RawConn // nil when the connection is not a socket
	probe func(fd uintptr)
	state idleState
	buf   [1]byte
	// gate counts the connection until it closes; nil: none does.
	gate   *connGate
	closed atomic.Bool
}

// connGate bounds the connections open to an upstream's targets together
// (circuitBreaker.maxConnections). Safe for concurrent use.
type connGate struct {
	max  int64
	open atomic.Int64
}

// errConnLimit is a dial refused because the upstream has as many
// connections open as its circuit breaker allows.
var errConnLimit = errors.New("the upstream has circuitBreaker.maxConnections connections open")

// dialUpstream wraps a dial function so that every connection it makes
// can be probed while idle, counts against gate (nil: no bound), and is
// given at most connect to connect: fasthttp passes a dial the timeout a
// request waits for a connection, which may be longer.
func dialUpstream(dial func(addr string, timeout time.Duration) (net.Conn, error), gate *connGate,
	connect time.Duration) func(string, time.Duration) (net.Conn, error) {
	return func(addr string, timeout time.Duration) (net.Conn, error) {
		if connect > 0 && (timeout <= 0 || timeout > connect) {
			timeout = connect
		}
		if gate != nil {
			if gate.open.Add(1) > gate.max {
				gate.open.Add(-1)
				return nil, errConnLimit
			}
		}
		c, err := dial(addr, timeout)
		if err != nil {
			if gate != nil {
				gate.open.Add(-1)
			}
			return nil, err
		}
		uc := &upstreamConn{Conn: c, gate: gate}
		if sc, ok := c.(syscall.Conn); ok {
			if raw, err := sc.SyscallConn(); err == nil {
				uc.raw = raw
				// Bound once here, so that probing allocates nothing.
				uc.probe = uc.peekFD
			}
		}
		return uc, nil
	}
}

// afterAnswer reports what is left on c once an answer has been read with
// br: what the reader and a TLS layer hold, and, unless the connection is
// kept (and so will be probed by the settler before it is used again),
// what waits in the socket.
func afterAnswer(c net.Conn, br *bufio.Reader, keep bool) idleState {
	if !keep {
		return idle(c, br)
	}
	if br.Buffered() > 0 {
		return idleData
	}
	if tc, ok := c.(*tls.Conn); ok {
		return tlsRead(tc, aLongTimeAgo)
	}
	return idleClean
}

// CloseWrite half-closes the connection (a WebSocket tunnel passes on a
// client's end of stream).
func (c *upstreamConn) CloseWrite() error { return closeWrite(c.Conn) }

// Close closes the connection and gives its place back to the gate.
func (c *upstreamConn) Close() error {
	if c.gate != nil && c.closed.CompareAndSwap(false, true) {
		c.gate.open.Add(-1)
	}
	return c.Conn.Close()
}

// idle reports what waits on c: bytes left in br (the reader the last
// answer was read with, or nil), in a TLS layer's buffers, or in the
// socket. It does not block, and consumes nothing from a clean connection.
func idle(c net.Conn, br *bufio.Reader) idleState {
	if br != nil && br.Buffered() > 0 {
		return idleData
	}
	tc, isTLS := c.(*tls.Conn)
	if isTLS {
		// Right after an answer, the TLS layer may still hold records it
		// read from the socket with it; later bytes can only be in the
		// socket.
		if br != nil {
			if s := tlsRead(tc, aLongTimeAgo); s != idleClean {
				return s
			}
		}
		c = tc.NetConn()
	}
	uc, ok := c.(*upstreamConn)
	if !ok || uc.raw == nil {
		return idleClean
	}
	if err := uc.raw.Control(uc.probe); err != nil {
		return idleClosed
	}
	if uc.state == idleData && isTLS {
		// TLS 1.3 hides a record's type: a close_notify or a session
		// ticket looks like data until the TLS layer reads it. They are
		// whole in the socket already, so a short wait reads them.
		return tlsRead(tc, time.Now().Add(time.Millisecond))
	}
	return uc.state
}

// tlsRead reads what the TLS layer can hand out before deadline: data
// means bytes outside any exchange; a timeout, nothing (a session ticket
// is consumed on the way); anything else, a connection that has ended.
func tlsRead(tc *tls.Conn, deadline time.Time) idleState {
	var one [1]byte
	if err := tc.SetReadDeadline(deadline); err != nil {
		return idleClosed
	}
	n, err := tc.Read(one[:])
	switch {
	case n > 0:
		return idleData
	case isTimeout(err):
		return idleClean
	default:
		return idleClosed
	}
}

// aLongTimeAgo is a deadline that has passed: a read with it takes only
// what is already buffered.
var aLongTimeAgo = time.Unix(1, 0)

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
