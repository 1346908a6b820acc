package proxy

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
)

// connLimiter enforces the connection caps when a connection is accepted,
// before fasthttp gives it a goroutine: limits.maxConnections across every
// listener, and limits.maxConnectionsPerClient per client address. The
// per-client limit and the trusted proxies it exempts are read from the
// plan in force, so a reload changes them for the next connection. Safe for
// concurrent use.
type connLimiter struct {
	g *Gateway
	// max is limits.maxConnections (lowered by Options.MaxConns); a reload
	// sets it, and connections over a lowered cap stay until they close.
	max  atomic.Int64
	open atomic.Int64

	mu sync.Mutex
	// clients counts the open connections of each client key; a key leaves
	// when its count drops to zero, so the map holds at most max entries.
	clients map[netip.Addr]int32
}

func newConnLimiter(g *Gateway, max int) *connLimiter {
	cl := &connLimiter{g: g, clients: map[netip.Addr]int32{}}
	cl.max.Store(int64(max))
	return cl
}

// admit takes a place for a connection from remote. It returns the client
// key the place is counted under (invalid when the peer is not counted per
// client), or the cap the connection is over.
func (cl *connLimiter) admit(remote net.Addr) (netip.Addr, *chain.Rejection) {
	if cl.open.Add(1) > cl.max.Load() {
		cl.open.Add(-1)
		return netip.Addr{}, errOverloaded
	}
	peer, key, ok := clientKey(remote)
	p := cl.g.plan.Load()
	if !ok || p == nil || p.trusted.contains(peer) {
		// A trusted proxy carries many clients; its X-Forwarded-For, not
		// its connections, says who they are.
		return netip.Addr{}, nil
	}
	limit := int32(p.cfg.Limits.MaxConnsPerClient)
	cl.mu.Lock()
	n := cl.clients[key]
	if limit > 0 && n >= limit {
		cl.mu.Unlock()
		cl.open.Add(-1)
		return netip.Addr{}, errClientConnLimit
	}
	// Counted even without a limit, so that a reload that sets one knows
	// what is open.
	cl.clients[key] = n + 1
	cl.mu.Unlock()
	return key, nil
}

// release gives back a place taken by admit.
func (cl *connLimiter) release(key netip.Addr) {
	if key.IsValid() {
		cl.mu.Lock()
		if n := cl.clients[key]; n > 1 {
			cl.clients[key] = n - 1
		} else {
			delete(cl.clients, key)
		}
		cl.mu.Unlock()
	}
	cl.open.Add(-1)
}

// clientKey returns a TCP peer's address and the key the per-client limit
// counts it under: an IPv4 address itself, an IPv6 address by its /64,
// since one host or subscriber is given a whole /64 and picks addresses in
// it at will. ok is false for an address that is not TCP (in-memory
// listeners in benchmarks).
func clientKey(a net.Addr) (peer, key netip.Addr, ok bool) {
	ta, isTCP := a.(*net.TCPAddr)
	if !isTCP {
		return netip.Addr{}, netip.Addr{}, false
	}
	peer, ok = netip.AddrFromSlice(ta.IP)
	if !ok {
		return netip.Addr{}, netip.Addr{}, false
	}
	peer = peer.Unmap()
	key = peer
	if peer.Is6() {
		key = netip.PrefixFrom(peer, 64).Masked().Addr()
	}
	return peer, key, true
}

// rawError is a gateway error as a complete HTTP/1.1 response that closes
// the connection, rendered once for answers written before fasthttp has
// the connection.
func rawError(e *chain.Rejection) []byte {
	body := `{"error":"` + e.Message + `","reason":"` + e.Reason +
		`","status":` + strconv.Itoa(e.Status) + `,"route":"","requestId":""}` + "\n"
	return []byte("HTTP/1.1 " + strconv.Itoa(e.Status) + " " + fasthttp.StatusMessage(e.Status) + "\r\nContent-Type: application/json\r\n" +
		HeaderError + ": " + e.Reason + "\r\nConnection: close\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}

var (
	overloadedResponse      = rawError(errOverloaded)
	clientConnLimitResponse = rawError(errClientConnLimit)
)

// cappedConn gives its places back when it closes, and leaves the inbox
// of the listener that serves it.
type cappedConn struct {
	net.Conn
	lim  *connLimiter
	key  netip.Addr
	in   *inbox // set by the inbox that gives it out
	once sync.Once
}

func (c *cappedConn) Close() error {
	c.once.Do(func() {
		c.lim.release(c.key)
		if c.in != nil {
			c.in.forget(c)
		}
	})
	return c.Conn.Close()
}

// ReadFrom sends a streamed body as it comes (see writePerRead).
func (c *cappedConn) ReadFrom(r io.Reader) (int64, error) { return writePerRead(c.Conn, r) }

// CloseWrite half-closes the connection (a WebSocket tunnel passes on an
// upstream's end of stream).
func (c *cappedConn) CloseWrite() error { return closeWrite(c.Conn) }

// closeWrite half-closes c, when it can be.
func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// tlsConn is a TLS connection from a client; fasthttp recognises it as TLS
// by its methods (RequestCtx.TLSConnectionState gives handlers the verified
// client certificate of a mutual-TLS listener).
type tlsConn struct{ *tls.Conn }

// ReadFrom sends a streamed body as it comes (see writePerRead).
func (c *tlsConn) ReadFrom(r io.Reader) (int64, error) { return writePerRead(c.Conn, r) }

// writePerRead copies r to w one read at a time. fasthttp writes a
// response body through a buffered writer that would hold the bytes until
// 16 KiB have come; a client connection that reads from the body itself
// (io.ReaderFrom, used once the headers are flushed) sends each piece as
// the upstream gives it, so a slow upstream's first bytes are not held.
func writePerRead(w io.Writer, r io.Reader) (int64, error) {
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	buf := *bp
	var total int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}
