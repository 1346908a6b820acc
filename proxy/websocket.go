package proxy

import (
	"bytes"
	"context"
	"crypto/sha1" //nolint:gosec // RFC 6455 derives Sec-WebSocket-Accept with SHA-1; nothing here is a secret
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
)

// WebSocket proxying. A route with `websocket` set lets a request that asks
// to upgrade to WebSocket (Connection: Upgrade, Upgrade: websocket) through
// its policies like any other; the gateway then sends it, with the upgrade
// headers, on a connection to the upstream of its own, checks the
// upstream's 101, runs the response policies on it and hands it to the
// client, and from then on copies bytes both ways between the two
// connections (a tunnel). No frame is parsed: extensions and subprotocols
// are the client's and the upstream's business.

// Header names of the WebSocket handshake (RFC 6455 §4).
const (
	headerWSKey     = "Sec-WebSocket-Key"
	headerWSVersion = "Sec-WebSocket-Version"
	headerWSAccept  = "Sec-WebSocket-Accept"
)

// wsGUID is what RFC 6455 §1.3 appends to the key to derive the accept.
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// wsAcceptLen is the length of a Sec-WebSocket-Accept: a SHA-1 in base64.
const wsAcceptLen = 28

var errWebSocketHandshake = &chain.Rejection{Status: fasthttp.StatusBadRequest, Reason: reasonWebSocketHandshake,
	Message: "the WebSocket upgrade is invalid: it must be a GET over HTTP/1.1 without a body, with one Sec-WebSocket-Version: 13 and one Sec-WebSocket-Key of 16 bytes in base64"}

// isWebSocketUpgrade reports whether the request asks to switch to
// WebSocket. Read before the hop-by-hop headers are removed.
func isWebSocketUpgrade(h *fasthttp.RequestHeader) bool {
	up := h.Peek(fasthttp.HeaderUpgrade)
	if len(up) == 0 || !hasToken(up, "websocket") {
		return false
	}
	// The Connection lines as sent: fasthttp's Peek answers "close" for an
	// HTTP/1.0 request, which is then refused as an upgrade, not forwarded
	// as a plain request.
	for _, v := range h.PeekAll(fasthttp.HeaderConnection) {
		if hasToken(v, "upgrade") {
			return true
		}
	}
	return false
}

// checkHandshake checks the client's side of the opening handshake (RFC
// 6455 §4.1, §4.2.1) and computes into accept the Sec-WebSocket-Accept the
// upstream must answer with. An upgrade that is not one the gateway can
// vouch for is refused here, before any policy counts it.
func checkHandshake(ctx *fasthttp.RequestCtx, accept *[wsAcceptLen]byte) *chain.Rejection {
	h := &ctx.Request.Header
	cl := h.ContentLength()
	if !h.IsGet() || !h.IsHTTP11() || cl != 0 && cl != -2 {
		return errWebSocketHandshake
	}
	versions := h.PeekAll(headerWSVersion)
	if len(versions) != 1 || string(versions[0]) != "13" {
		// RFC 6455 §4.4: say which version the gateway speaks.
		ctx.Response.Header.Set(headerWSVersion, "13")
		return errWebSocketHandshake
	}
	keys := h.PeekAll(headerWSKey)
	if len(keys) != 1 {
		return errWebSocketHandshake
	}
	key := keys[0]
	var nonce [18]byte
	if len(key) != 24 {
		return errWebSocketHandshake
	}
	if n, err := base64.StdEncoding.Decode(nonce[:], key); err != nil || n != 16 {
		return errWebSocketHandshake
	}
	computeAccept(accept, key)
	return nil
}

// computeAccept derives the Sec-WebSocket-Accept of key (RFC 6455 §4.2.2).
func computeAccept(dst *[wsAcceptLen]byte, key []byte) {
	var b [24 + len(wsGUID)]byte
	n := copy(b[:], key)
	n += copy(b[n:], wsGUID)
	sum := sha1.Sum(b[:n]) //nolint:gosec // see the import
	base64.StdEncoding.Encode(dst[:], sum[:])
}

var (
	errSwitchNotWebSocket = errors.New("the upstream switched protocols without Upgrade: websocket and Connection: Upgrade")
	errSwitchAccept       = errors.New("the upstream's Sec-WebSocket-Accept does not match the client's Sec-WebSocket-Key")
)

// checkSwitch checks the upstream's 101 (RFC 6455 §4.2.2): the client
// would refuse one that is wrong, but only after the gateway had counted a
// WebSocket connection that never was.
func checkSwitch(h *fasthttp.ResponseHeader, accept []byte) error {
	if !hasToken(h.Peek(fasthttp.HeaderUpgrade), "websocket") || !hasToken(h.Peek(fasthttp.HeaderConnection), "upgrade") {
		return errSwitchNotWebSocket
	}
	if got := h.PeekAll(headerWSAccept); len(got) != 1 || !bytes.Equal(bytes.TrimSpace(got[0]), accept) {
		return errSwitchAccept
	}
	return nil
}

// hasToken reports whether the comma-separated list v holds tok, in any
// case.
func hasToken(v []byte, tok string) bool {
	for len(v) > 0 {
		var t []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			t, v = v[:i], v[i+1:]
		} else {
			t, v = v, nil
		}
		if asciiEqualFold(bytes.TrimSpace(t), tok) {
			return true
		}
	}
	return false
}

// wsRoute is what a route with `websocket` needs to proxy upgrades.
type wsRoute struct {
	idle time.Duration
	m    *wsMetrics
}

// upgradeResult is what became of an upgrade request, for
// flexgate_websocket_upgrades_total.
type upgradeResult uint8

const (
	upgradeOK upgradeResult = iota
	// upgradeBadHandshake: the client's request is no valid upgrade (400).
	upgradeBadHandshake
	// upgradeRejected: a policy refused it.
	upgradeRejected
	// upgradeUpstreamRefused: the upstream answered it without switching.
	upgradeUpstreamRefused
	// upgradeFailed: the upstream could not be reached, or its 101 was
	// wrong (the gateway answered 5xx).
	upgradeFailed
	numUpgradeResults
)

var upgradeLabels = [numUpgradeResults]string{"ok", "bad_handshake", "rejected", "upstream_refused", "failed"}

// closeReason is why a tunnel closed, for flexgate_websocket_closes_total.
type closeReason uint8

const (
	// closedByClient: the client closed (or reset) its connection first.
	closedByClient closeReason = iota
	closedByUpstream
	// closedIdle: no byte moved either way for the idle timeout.
	closedIdle
	// closedWriteTimeout: one side stopped reading what it was sent.
	closedWriteTimeout
	// closedShutdown: the gateway shut down.
	closedShutdown
	numCloseReasons
)

var closeLabels = [numCloseReasons]string{"client", "upstream", "idle_timeout", "write_timeout", "shutdown"}

// wsMetrics are a route's WebSocket series.
type wsMetrics struct {
	open     *metrics.Gauge
	upgrades [numUpgradeResults]*metrics.Counter
	closes   [numCloseReasons]*metrics.Counter
}

func newWSMetrics(set *metrics.Set, label string) *wsMetrics {
	m := &wsMetrics{open: set.GetOrCreateGauge(fmt.Sprintf(`flexgate_websocket_connections{route=%s}`, label), nil)}
	for i := range numUpgradeResults {
		m.upgrades[i] = set.GetOrCreateCounter(fmt.Sprintf(`flexgate_websocket_upgrades_total{route=%s,result="%s"}`, label, upgradeLabels[i]))
	}
	for i := range numCloseReasons {
		m.closes[i] = set.GetOrCreateCounter(fmt.Sprintf(`flexgate_websocket_closes_total{route=%s,reason="%s"}`, label, closeLabels[i]))
	}
	return m
}

// tunnel is one proxied WebSocket connection: the client's connection,
// hijacked from fasthttp, and a connection to the upstream that no other
// request uses. Two goroutines copy bytes, one each way; while a direction
// is idle it holds a small buffer only, and borrows a pooled one while
// bytes flow. The upstream's connection and its place among its target's
// and upstream's requests in flight are the tunnel's until it closes.
// Safe for concurrent use.
type tunnel struct {
	g *Gateway
	m *wsMetrics
	// up is the upstream's connection; closeUp closes it and gives its
	// place back to the pool that counted it.
	up      net.Conn
	closeUp func()
	// upEarly: bytes the upstream sent after its 101, read with it.
	upEarly []byte
	// head is the 101 as the client gets it.
	head     []byte
	target   *target
	upstream *upstream
	client   net.Conn // set once serving
	// ln is the listener the client came through: when a reload removes
	// it, its tunnels close.
	ln *listener

	idle                       time.Duration
	clientWrite, upstreamWrite time.Duration // bound each write to that side

	// last is when bytes last moved either way (unix nanoseconds).
	last  atomic.Int64
	state atomic.Int32
	// ended counts the directions whose source ended cleanly; firstEnd
	// is the side that ended first, plus one.
	ended    atomic.Int32
	firstEnd atomic.Int32
	timer    *time.Timer
	once     sync.Once
	// done is closed once the tunnel has closed.
	done chan struct{}
	// leaving: the gateway is closing the tunnel (shutdown, reload).
	leaving atomic.Bool

	// dir is each direction's framing, by the side it comes from.
	dir   [2]direction
	small [2][relaySmall]byte
}

// direction is what a tunnel knows of the frames going one way: enough to
// tell where one ends, so that the gateway can put a close frame of its
// own between two of them when it shuts down. Payloads are skipped, never
// read. Guarded by mu, which the relay holds while it writes.
type direction struct {
	mu   sync.Mutex
	scan frameScan
	// goAway: the gateway is closing the tunnel; a close frame goes out
	// at the next frame boundary. Set without mu, so that a write that
	// blocks does not hold up the shutdown.
	goAway atomic.Bool
	// away: it went out; what comes after it is dropped.
	away bool
}

// frameScan follows WebSocket frame boundaries (RFC 6455 §5.2) in a byte
// stream: the header of the frame under way, then the length of its
// payload left.
type frameScan struct {
	hdr       [14]byte
	hdrN      uint8
	remaining uint64
	// closed: a close frame has gone this way (the endpoint that sent it
	// sends no more frames, and must not be sent a second one).
	closed bool
}

// scan advances over b.
func (f *frameScan) scan(b []byte) {
	for len(b) > 0 {
		if f.remaining > 0 {
			n := min(uint64(len(b)), f.remaining)
			f.remaining -= n
			b = b[n:]
			continue
		}
		f.hdr[f.hdrN] = b[0]
		f.hdrN++
		b = b[1:]
		if f.hdrN < 2 {
			continue
		}
		need, n7 := uint8(2), f.hdr[1]&0x7f
		switch n7 {
		case 126:
			need += 2
		case 127:
			need += 8
		}
		if f.hdr[1]&0x80 != 0 {
			need += 4
		}
		if f.hdrN < need {
			continue
		}
		switch n7 {
		case 126:
			f.remaining = uint64(binary.BigEndian.Uint16(f.hdr[2:]))
		case 127:
			f.remaining = binary.BigEndian.Uint64(f.hdr[2:])
		default:
			f.remaining = uint64(n7)
		}
		if f.hdr[0]&0x0f == 0x8 {
			f.closed = true
		}
		f.hdrN = 0
	}
}

// atBoundary reports whether the next byte starts a frame.
func (f *frameScan) atBoundary() bool { return f.hdrN == 0 && f.remaining == 0 }

// goingAwayGrace is how long a tunnel the gateway closes has, once it has
// sent both ends a close frame 1001 (going away), to finish the closing
// handshake (the ends' replies are not passed on: each end already has a
// close frame) before its connections are closed.
const goingAwayGrace = 2 * time.Second

// Tunnel states: switchProtocols arms it; fasthttp then runs serve, or
// the timer gives up on it.
const (
	tunnelArmed int32 = iota
	tunnelOpen
	tunnelClosed
)

// relaySmall is the buffer a direction holds while it waits: a chat
// message fits; a longer burst borrows from copyBufPool.
const relaySmall = 1 << 10

// halfClosedIdle bounds the idle time of a tunnel once one side has
// ended its stream: a side that has read the other's end and neither
// answers nor closes (or a client that closed its socket altogether, which
// looks the same) would otherwise hold the tunnel for the whole idle
// timeout. HAProxy's client-fin and server-fin timeouts do the same.
const halfClosedIdle = 5 * time.Second

// hijackGrace bounds the wait between the handler's return and fasthttp
// handing over the connection, which only a connection failing meanwhile
// can stop: the tunnel then releases the upstream's connection.
const hijackGrace = 30 * time.Second

// side is an end of a tunnel.
type side int32

const (
	sideClient side = iota
	sideUpstream
)

// newTunnel takes over conn, whose 101 has been read with br: what else br
// holds is the upstream's first bytes after it.
func newTunnel(conn net.Conn, br interface {
	Buffered() int
	Peek(int) ([]byte, error)
}, closeUp func(), writeTimeout time.Duration) *tunnel {
	t := &tunnel{up: conn, closeUp: closeUp, upstreamWrite: writeTimeout, done: make(chan struct{})}
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		t.upEarly = append([]byte(nil), b...)
	}
	return t
}

// release gives back what the upstream side holds: its connection and its
// places among the requests in flight.
func (t *tunnel) release() {
	t.closeUp()
	if t.target != nil {
		t.target.finish()
	}
	if t.upstream != nil {
		t.upstream.active.Add(-1)
	}
}

// abort drops a tunnel that will not serve.
func (t *tunnel) abort() {
	t.state.Store(tunnelClosed)
	t.once.Do(func() {
		t.release()
		close(t.done)
	})
}

// switchProtocols answers the client with the upstream's 101, once the
// response policies have run on it, and hands the connection to the
// tunnel.
func (g *Gateway) switchProtocols(ctx *fasthttp.RequestCtx, r *route, tun *tunnel, l *listener) {
	h := &ctx.Response.Header
	if ctx.Response.StatusCode() != fasthttp.StatusSwitchingProtocols {
		// A response policy answered otherwise: that answer goes out, and
		// the client's connection cannot carry another request.
		tun.abort()
		r.ws.m.upgrades[upgradeUpstreamRefused].Inc()
		ctx.SetConnectionClose()
		return
	}
	// Hop-by-hop, so no policy could set them, and removed from the
	// upstream's answer with the others.
	h.Set(fasthttp.HeaderConnection, "Upgrade")
	h.Set(fasthttp.HeaderUpgrade, "websocket")
	tun.head = append(tun.head[:0], h.Header()...)
	tun.g, tun.m, tun.idle, tun.clientWrite, tun.ln = g, r.ws.m, r.ws.idle, l.srv.WriteTimeout, l
	tun.timer = time.AfterFunc(hijackGrace, func() {
		if tun.state.CompareAndSwap(tunnelArmed, tunnelClosed) {
			tun.abort()
		}
	})
	r.ws.m.upgrades[upgradeOK].Inc()
	// The 101 is written by the tunnel: fasthttp would add Connection:
	// close to it while the gateway drains, and then not hijack.
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(tun.serve)
}

// serve runs the tunnel on the client's connection c, which fasthttp has
// given up (Server.KeepHijackedConns: the tunnel closes it).
func (t *tunnel) serve(c net.Conn) {
	if !t.state.CompareAndSwap(tunnelArmed, tunnelOpen) {
		_ = c.Close()
		return
	}
	t.timer.Stop()
	client := c
	if u, ok := c.(interface{ UnsafeConn() net.Conn }); ok {
		client = u.UnsafeConn()
	}
	t.client = client
	t.last.Store(time.Now().UnixNano())
	t.m.open.Inc()
	if !t.g.tunnels.add(t) {
		t.close(closedShutdown)
		return
	}
	// Its listener's drain no longer waits for the connection: a reload
	// that builds the listener anew on the same socket keeps the tunnel.
	if cc := cappedOf(client); cc != nil && cc.in != nil {
		cc.in.forget(cc)
	}
	// Bytes the client sent right after its request are in fasthttp's
	// reader, which c reads through; it is dropped once they are out, so
	// that an idle tunnel does not keep a read buffer of maxHeaderSize.
	early, cerr := takeBuffered(c, client)
	if !t.write(client, t.head, t.clientWrite, sideClient) || !t.forward(client, t.upEarly, t.clientWrite, sideUpstream) ||
		!t.forward(t.up, early, t.upstreamWrite, sideClient) {
		return
	}
	t.head, t.upEarly = nil, nil
	go t.relay(t.up, client, t.small[0][:], t.clientWrite, sideUpstream)
	switch {
	case cerr == nil:
		go t.relay(client, t.up, t.small[1][:], t.upstreamWrite, sideClient)
	case cerr == io.EOF:
		t.end(sideClient)
	default:
		t.close(closedByClient)
	}
}

// takeBuffered reads what the hijacked connection c holds buffered, without
// waiting for the network (client is the connection under it).
func takeBuffered(c, client net.Conn) ([]byte, error) {
	if err := client.SetReadDeadline(aLongTimeAgo); err != nil {
		return nil, err
	}
	var out []byte
	var buf [4 << 10]byte
	for {
		n, err := c.Read(buf[:])
		out = append(out, buf[:n]...)
		switch {
		case err == nil:
		case isTimeout(err):
			return out, nil
		default:
			return out, err
		}
	}
}

// write sends b to dst, the tunnel's to side, within timeout; a failure
// closes the tunnel.
func (t *tunnel) write(dst net.Conn, b []byte, timeout time.Duration, to side) bool {
	if len(b) == 0 {
		return true
	}
	if timeout > 0 {
		_ = dst.SetWriteDeadline(time.Now().Add(timeout))
	}
	if _, err := dst.Write(b); err != nil {
		switch {
		case t.state.Load() == tunnelClosed:
		case isTimeout(err):
			t.close(closedWriteTimeout)
		case to == sideClient:
			t.close(closedByClient)
		default:
			t.close(closedByUpstream)
		}
		return false
	}
	return true
}

// forward writes b, which came from the side from, to dst, the other side;
// false when the tunnel has closed. It keeps track of the frames, and once
// the gateway has asked for it, puts its close frame at the first frame
// boundary.
func (t *tunnel) forward(dst net.Conn, b []byte, timeout time.Duration, from side) bool {
	if len(b) == 0 {
		return true
	}
	to := sideUpstream
	if from == sideUpstream {
		to = sideClient
	}
	d := &t.dir[from]
	d.mu.Lock()
	if d.away {
		// Its end has the gateway's close frame: nothing may follow it.
		d.mu.Unlock()
		return true
	}
	d.scan.scan(b)
	if !t.write(dst, b, timeout, to) {
		d.mu.Unlock()
		return false
	}
	d.mu.Unlock()
	// goAway may have come during the write, found the lock taken and
	// left the close frame to this relay: it goes out now if at a frame
	// boundary, else after a later write.
	if d.goAway.Load() {
		d.mu.Lock()
		if !d.away && d.scan.atBoundary() {
			t.sendClose(d, dst, to)
		}
		d.mu.Unlock()
	}
	return true
}

// sendClose sends the side to, over dst, a close frame 1001 (going away),
// unless one has gone to it already. d.mu is held.
func (t *tunnel) sendClose(d *direction, dst net.Conn, to side) {
	d.away = true
	if d.scan.closed {
		return
	}
	d.scan.closed = true
	frame := [8]byte{0x88, 0x02, 0x03, 0xe9} // FIN, close; 2 bytes: 1001
	n := 4
	if to == sideUpstream {
		// From the client's side, so masked (RFC 6455 §5.3).
		key := rand.Uint32()
		frame[1] |= 0x80
		binary.BigEndian.PutUint32(frame[2:], key)
		frame[6], frame[7] = 0x03^byte(key>>24), 0xe9^byte(key>>16)
		n = 8
	}
	_ = dst.SetWriteDeadline(time.Now().Add(goingAwayGrace))
	_, _ = dst.Write(frame[:n])
}

// goAway starts closing a serving tunnel: the side that from's bytes go
// to gets a close frame 1001 (going away) now, if no frame is under way to
// it, or else at the end of that frame. Each direction is told on its
// own, so that an end that reads nothing does not hold up the other's
// frame.
func (t *tunnel) goAway(from side) {
	if t.state.Load() != tunnelOpen {
		return
	}
	t.leaving.Store(true)
	d := &t.dir[from]
	dst, to := t.up, sideUpstream
	if from == sideUpstream {
		dst, to = t.client, sideClient
	}
	d.goAway.Store(true)
	if !d.mu.TryLock() {
		// A write is under way: the relay sends the close frame after it,
		// at the end of its frame.
		return
	}
	if !d.away && d.scan.atBoundary() {
		t.sendClose(d, dst, to)
	}
	d.mu.Unlock()
}

// relay copies src, the tunnel's from side, to dst until src ends, fails,
// or the tunnel has been idle for its idle timeout.
func (t *tunnel) relay(src, dst net.Conn, small []byte, writeTimeout time.Duration, from side) {
	buf := small
	var big *[]byte
	defer func() {
		if big != nil {
			copyBufPool.Put(big)
		}
	}()
	for {
		// Idle means idle both ways: the deadline follows the last bytes
		// of either direction.
		_ = src.SetReadDeadline(time.Unix(0, t.last.Load()).Add(t.idleLimit()))
		n, err := src.Read(buf)
		if n > 0 {
			t.last.Store(time.Now().UnixNano())
			if !t.forward(dst, buf[:n], writeTimeout, from) {
				return
			}
			switch {
			case big == nil && n == len(buf):
				// More is likely waiting: read it in larger pieces.
				big = copyBufPool.Get().(*[]byte)
				buf = *big
			case big != nil && n < len(buf):
				// The burst is over: wait with the small buffer.
				copyBufPool.Put(big)
				big, buf = nil, small
			}
		}
		if err == nil {
			continue
		}
		switch {
		case t.state.Load() == tunnelClosed:
		case isTimeout(err):
			if time.Since(time.Unix(0, t.last.Load())) < t.idleLimit() {
				continue
			}
			t.close(closedIdle)
		case err == io.EOF:
			t.end(from)
		case from == sideClient:
			t.close(closedByClient)
		default:
			t.close(closedByUpstream)
		}
		return
	}
}

// end passes on the end of from's stream: the other side's connection is
// closed for writing (a TCP FIN, a TLS close_notify), so that it reads an
// end too and can finish what it sends; once both directions have ended,
// or when a connection cannot be half-closed, the tunnel closes.
func (t *tunnel) end(from side) {
	t.firstEnd.CompareAndSwap(0, int32(from)+1)
	dst := t.up
	if from == sideUpstream {
		dst = t.client
	}
	cw, ok := dst.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil || t.ended.Add(1) == 2 {
		reason := closedByClient
		if t.firstEnd.Load() == int32(sideUpstream)+1 {
			reason = closedByUpstream
		}
		t.close(reason)
		return
	}
	// The direction left reads dst: its wait shortens to halfClosedIdle.
	_ = dst.SetReadDeadline(time.Unix(0, t.last.Load()).Add(t.idleLimit()))
}

// idleLimit is how long the tunnel may stay idle now.
func (t *tunnel) idleLimit() time.Duration {
	if t.ended.Load() > 0 && t.idle > halfClosedIdle {
		return halfClosedIdle
	}
	return t.idle
}

// close ends a serving tunnel: both connections close, and the other
// direction's goroutine returns at its next read or write.
func (t *tunnel) close(why closeReason) {
	t.once.Do(func() {
		if t.leaving.Load() {
			// The ends answering the gateway's close frames.
			why = closedShutdown
		}
		t.state.Store(tunnelClosed)
		_ = t.client.Close()
		t.release()
		t.g.tunnels.remove(t)
		t.m.open.Dec()
		t.m.closes[why].Inc()
		close(t.done)
	})
}

// tunnelSet holds the serving tunnels, which fasthttp no longer tracks,
// for the gateway to close when it shuts down. Safe for concurrent use.
type tunnelSet struct {
	mu     sync.Mutex
	open   map[*tunnel]struct{}
	closed bool
}

// add registers t; false when the gateway is shutting down.
func (s *tunnelSet) add(t *tunnel) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.open == nil {
		s.open = map[*tunnel]struct{}{}
	}
	s.open[t] = struct{}{}
	return true
}

func (s *tunnelSet) remove(t *tunnel) {
	s.mu.Lock()
	delete(s.open, t)
	s.mu.Unlock()
}

// closeListener closes the tunnels whose clients came through l.
func (s *tunnelSet) closeListener(l *listener) {
	s.mu.Lock()
	var open []*tunnel
	for t := range s.open {
		if t.ln == l {
			open = append(open, t)
		}
	}
	s.mu.Unlock()
	shut(context.Background(), open)
}

// shut closes tunnels as the gateway goes away: each end gets a close frame
// 1001, and goingAwayGrace (or ctx) to finish the closing handshake.
func shut(ctx context.Context, open []*tunnel) {
	if len(open) == 0 {
		return
	}
	// Each close frame goes out from a goroutine of its own: a write to an
	// end that reads nothing waits for its deadline, and must hold up
	// neither the other end, nor the other tunnels, nor the grace period.
	grace := time.NewTimer(goingAwayGrace)
	defer grace.Stop()
	var sending sync.WaitGroup
	for _, t := range open {
		for from := range t.dir {
			sending.Go(func() { t.goAway(side(from)) })
		}
	}
wait:
	for _, t := range open {
		select {
		case <-t.done:
		case <-grace.C:
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	// Closing a TLS connection sends close_notify, which waits up to its
	// own deadline for an end that reads nothing: together, not in turn.
	var closing sync.WaitGroup
	for _, t := range open {
		closing.Go(func() { t.close(closedShutdown) })
	}
	closing.Wait()
	// Closed, the connections end the writes still waiting.
	sending.Wait()
}

// cappedOf returns the capped connection under a client's connection.
func cappedOf(c net.Conn) *cappedConn {
	if tc, ok := c.(*tlsConn); ok {
		c = tc.NetConn()
	}
	cc, _ := c.(*cappedConn)
	return cc
}

// closeAll closes every tunnel, and every one that starts afterwards.
func (s *tunnelSet) closeAll(ctx context.Context) {
	s.mu.Lock()
	s.closed = true
	open := make([]*tunnel, 0, len(s.open))
	for t := range s.open {
		open = append(open, t)
	}
	s.mu.Unlock()
	shut(ctx, open)
}
