package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/config"
	"github.com/flexgate/flexgate/internal/ascii"
	"github.com/flexgate/flexgate/internal/metriclabel"
	"github.com/flexgate/flexgate/proxy/cabundle"
	"github.com/flexgate/flexgate/proxy/router"
)

// smallBody is the largest response body with a known length that is read
// whole into the response; longer and chunked bodies stream through.
const smallBody = 64 << 10

// pool is one pooled keep-alive client to one target address. Plans share
// a pool across reloads while its connection settings stay the same, so
// warm connections survive a config change, and so do the upstreams of a
// plan whose targets share an address and settings. Safe for concurrent
// use.
//
// What differs between routes sharing the pool (base path, Host header)
// lives on the route or the target, not here.
//
// A connection goes back to the pool only when nothing is left unread on
// it, and a pooled connection is looked at again, without reading, before
// it carries a request: an upstream that sends more than the answer it
// announced would otherwise have those bytes read as the answer to the
// next request on the connection, another client's.
type pool struct {
	key  string
	name string // scheme://address, for logs and metrics
	addr string // the address dialed: host:port, or ip:port of a discovered target
	hc   *fasthttp.HostClient
	// host is the Host header of a request whose client sent none.
	host           []byte
	connectTimeout time.Duration
	// connWait bounds a request's wait for a connection when all maxConns
	// are busy (config.Upstream.MaxConnWait; at least the connect timeout).
	connWait   time.Duration
	maxConns   int
	ca         *cabundle.Bundle // nil unless a caFile or CAPEM verifies the upstream
	tlsConfig  *tls.Config      // nil for http
	dial       fasthttp.DialFuncWithTimeout
	violations [numViolations]*metrics.Counter
	series     []string // the names of the violation counters, released with the pool
	settler    settler
	log        *slog.Logger
	lastWarn   atomic.Int64 // unix nanoseconds of the last violation logged
	// distrustUntil is when connections to the upstream may be reused
	// again after it broke HTTP framing (unix nanoseconds).
	distrustUntil atomic.Int64
	// gate bounds the connections of the upstream owning the pool
	// (circuitBreaker.maxConnections); nil: no bound.
	gate *connGate
	refs int // owners; guarded by the registry's lock

	upgradeOnce sync.Once
	upgrades    *fasthttp.HostClient // see upgradeClient
}

// distrustTime is how long an upstream that broke HTTP framing gets a new
// connection for every request: the checks see extra bytes only once they
// have arrived, and an upstream that sent some once may send them later
// than any check looks.
const distrustTime = 5 * time.Minute

// upstreamOptions are what every upstream of a gateway shares.
type upstreamOptions struct {
	dial              fasthttp.DialFuncWithTimeout // nil: TCP
	resolve           resolveFunc                  // nil: the system's resolver
	metrics           *metrics.Set                 // nil: counters are not exported (validate)
	log               *slog.Logger
	maxResponseHeader int
	// series counts the owners of the metric series that upstreams and
	// pools create and drop as their targets come and go.
	series *seriesRefs
	// pools are the connection pools, shared by key.
	pools *poolRegistry
	// serving: the gateway serves already (a reload): targets with no
	// pool yet are new to it.
	serving bool
	// done closes when the gateway shuts down: health checks and DNS
	// lookups end, also those of upstreams whose retirement the shutdown
	// cut short.
	done <-chan struct{}
}

// maxHeader is the read buffer of the pools' connections: the largest
// answer head an upstream may send.
func (o upstreamOptions) maxHeader() int {
	if o.maxResponseHeader <= 0 {
		return config.DefaultLimits.MaxResponseHeaderBytes
	}
	return o.maxResponseHeader
}

// poolSpec is what a pool is built from: the connection settings of an
// upstream and one address of one of its targets.
type poolSpec struct {
	scheme string
	addr   string // dialed
	host   string // host:port as configured: the Host header and TLS server name
	u      *config.Upstream
	// private, when not empty, keeps the pool to the upstream with this
	// key: its connections count against that upstream's breaker.
	private string
}

// key names the connection settings of a pool: targets whose keys are
// equal share one. Trust and client certificate written in the config are
// named by digest, so that upstreams that trust other CAs, present other
// certificates, or allow other TLS versions or cipher suites never share a
// connection.
func (s poolSpec) key(maxHeader int) string {
	u := s.u
	return fmt.Sprintf("%s|%s|%s|%s|%s|%d|%s|%s|%t|%s|%s-%s|%s|%d|%s", s.scheme, s.addr, s.host,
		u.ConnectTimeout, u.IdleTimeout, u.MaxConns, u.MaxConnWait, u.CAFile, u.InsecureSkipVerify, tlsDigest(u), u.TLSMinVersion, u.TLSMaxVersion,
		strings.Join(u.TLSCiphers, ","), maxHeader, s.private)
}

// tlsDigest names u's trusted CAs and client certificate written in the
// config (CAPEM, ClientCert) by a digest of them; "" when it has neither.
func tlsDigest(u *config.Upstream) string {
	if u.CAPEM == "" && u.ClientCert == nil {
		return ""
	}
	h := sha256.New()
	for _, part := range [][]byte{[]byte(u.CAPEM), clientCertPEM(u, false), clientCertPEM(u, true)} {
		// Lengths first, so that moving bytes between parts changes the
		// digest.
		_, _ = fmt.Fprintf(h, "%d:", len(part))
		h.Write(part)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func clientCertPEM(u *config.Upstream, key bool) []byte {
	switch {
	case u.ClientCert == nil:
		return nil
	case key:
		return u.ClientCert.KeyPEM
	}
	return u.ClientCert.CertPEM
}

// upstreamTLS is the TLS client config of u's https targets at host (the
// name their certificates must be valid for), and the trust bundle it
// verifies them with when that is not the system's roots (nil then). The
// trusted CAs are CAPEM (written in the config) or CAFile (read again when
// it changes); ClientCert, when set, is presented to targets that ask.
func upstreamTLS(u *config.Upstream, host string, log *slog.Logger) (*tls.Config, *cabundle.Bundle, error) {
	c := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12,
		InsecureSkipVerify: u.InsecureSkipVerify} //nolint:gosec // an operator's explicit choice
	var ca *cabundle.Bundle
	var err error
	switch {
	case u.InsecureSkipVerify:
	case u.CAPEM != "":
		ca, err = cabundle.FromPEM([]byte(u.CAPEM))
	case u.CAFile != "":
		ca, err = cabundle.New(u.CAFile, log)
	}
	if err != nil {
		return nil, nil, err
	}
	if ca != nil {
		c = ca.ClientConfig(host)
	}
	if cc := u.ClientCert; cc != nil {
		cert, err := tls.X509KeyPair(cc.CertPEM, cc.KeyPEM)
		if err != nil {
			return nil, nil, fmt.Errorf("client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	// checkUpstream has checked the versions.
	if v, ok := config.TLSVersion(u.TLSMinVersion); ok {
		c.MinVersion = v
	}
	if v, ok := config.TLSVersion(u.TLSMaxVersion); ok {
		c.MaxVersion = v
	}
	// checkUpstream has checked the names too.
	c.CipherSuites, _ = config.TLS12Suites(u.TLSCiphers)
	c.NextProtos = []string{"http/1.1"}
	return c, ca, nil
}

// Connections are recycled after maxConnAge so that traffic spreads again
// over a scaled Service. How long one may stay idle is the upstream's
// idleTimeout (config.DefaultIdleTimeout: before common upstream keep-alive
// timeouts, so that a request rarely meets one the upstream has closed).
const maxConnAge = 5 * time.Minute

// newPool builds the pool of spec. gate bounds its connections (nil: no
// bound).
func newPool(spec poolSpec, gate *connGate, o upstreamOptions) (*pool, error) {
	u := spec.u
	maxHeader := o.maxHeader()
	p := &pool{
		key:            spec.key(maxHeader),
		name:           spec.scheme + "://" + spec.addr,
		addr:           spec.addr,
		host:           []byte(spec.host),
		connectTimeout: u.ConnectTimeout,
		connWait:       u.MaxConnWait,
		maxConns:       u.MaxConns,
		log:            o.log,
		gate:           gate,
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.maxConns <= 0 {
		p.maxConns = fasthttp.DefaultMaxConnsPerHost
	}
	if p.connWait <= 0 {
		p.connWait = p.connectTimeout
	}
	idle := u.IdleTimeout
	if idle <= 0 {
		idle = config.DefaultIdleTimeout
	}
	if spec.scheme == "https" {
		host, _, err := net.SplitHostPort(spec.host)
		if err != nil {
			host = spec.host
		}
		c, ca, err := upstreamTLS(u, host, p.log.With("upstream", p.name))
		if err != nil {
			return nil, fmt.Errorf("%s: upstream %s: %w", u.Pos, u.URL(), err)
		}
		p.tlsConfig, p.ca = c, ca
	}
	p.dial = o.dial
	if p.dial == nil {
		// DNS answers are cached briefly, so that a Kubernetes Service or
		// a rescheduled pod is found again without a restart.
		p.dial = (&fasthttp.TCPDialer{DNSCacheDuration: 10 * time.Second}).DialTimeout
	}
	p.hc = &fasthttp.HostClient{
		Addr:                     spec.addr,
		IsTLS:                    spec.scheme == "https",
		TLSConfig:                p.tlsConfig,
		DialTimeout:              dialUpstream(p.dial, gate, p.connectTimeout),
		MaxConns:                 p.maxConns,
		MaxConnWaitTimeout:       p.connWait,
		MaxIdleConnDuration:      idle,
		ReadBufferSize:           maxHeader,
		WriteBufferSize:          16 << 10,
		NoDefaultUserAgentHeader: true,
		DisablePathNormalizing:   true,
	}
	p.settler = newSettler(p.hc, (*fasthttp.HostClient).ReleaseConn, (*fasthttp.HostClient).CloseConn,
		func(s idleState) {
			if s == idleData {
				p.violated(extraBytes)
			}
		}, p.reusable)
	for v := range numViolations {
		name := fmt.Sprintf(`flexgate_upstream_protocol_violations_total{upstream=%s,kind="%s"}`,
			metriclabel.Quote(p.name), violationLabels[v])
		p.violations[v] = o.series.counter(name)
		p.series = append(p.series, name)
	}
	return p, nil
}

// upgradeClient is the client of the pool's WebSocket connections: a
// connection that switches protocols is the tunnel's until it closes, so it
// never comes from the pool nor goes back to it, and it does not take one
// of the pool's maxConnections, or a thousand idle WebSocket clients would
// leave none for requests. circuitBreaker.maxConnections counts it.
func (p *pool) upgradeClient() *fasthttp.HostClient {
	p.upgradeOnce.Do(func() {
		hc := p.hc
		p.upgrades = &fasthttp.HostClient{
			Addr:                     hc.Addr,
			IsTLS:                    hc.IsTLS,
			TLSConfig:                hc.TLSConfig,
			DialTimeout:              hc.DialTimeout,
			MaxConns:                 math.MaxInt32,
			ReadBufferSize:           hc.ReadBufferSize,
			WriteBufferSize:          hc.WriteBufferSize,
			NoDefaultUserAgentHeader: true,
			DisablePathNormalizing:   true,
		}
	})
	return p.upgrades
}

// close drops the idle and resting connections of a pool no upstream uses
// any more, and its series.
func (p *pool) close(series *seriesRefs) {
	p.settler.stop()
	p.hc.CloseIdleConnections()
	series.release(p.series...)
}

// violation is a way an upstream broke HTTP/1.1 framing that would have
// let its bytes be read as another request's answer.
type violation uint8

const (
	// extraBytes: bytes after the end of an answer, before the next request.
	extraBytes violation = iota
	// idleBytes: bytes that arrived on a pooled connection while it was idle.
	idleBytes
	// bodyWithoutContent: a 204 or 304 answer that announced a body.
	bodyWithoutContent
	numViolations
)

var violationLabels = [numViolations]string{"extra_bytes", "idle_bytes", "body_without_content"}

// violated counts a violation, stops reusing the upstream's connections
// for distrustTime, and logs it, at most once a second per upstream so
// that a broken upstream cannot flood the log. The connection it happened
// on is closed by the caller.
func (p *pool) violated(v violation) {
	p.violations[v].Inc()
	now := time.Now().UnixNano()
	if p.distrustUntil.Swap(now+int64(distrustTime)) < now {
		// Pooled connections may hold the same kind of bytes, not yet
		// arrived.
		p.hc.CloseIdleConnections()
	}
	last := p.lastWarn.Load()
	if now-last < int64(time.Second) || !p.lastWarn.CompareAndSwap(last, now) {
		return
	}
	p.log.Warn("upstream broke HTTP framing: its connection was closed, and each request gets a new connection "+
		"for the next "+distrustTime.String()+" so that no client reads another's answer",
		"upstream", p.name, "violation", violationLabels[v])
}

// reusable reports whether connections to the upstream may carry another
// request.
func (p *pool) reusable() bool { return time.Now().UnixNano() >= p.distrustUntil.Load() }

// failure is why a round trip to an upstream failed.
type failure uint8

const (
	failConnect failure = iota
	failTimeout
	failReset
	failProtocol
	failSaturated
	failTLS
	failHeaderTooLarge
	// failOverloaded: a circuit breaker threshold of the upstream, not
	// the target's doing.
	failOverloaded
	numFailures
)

// failures gives each failure its metric label and the answer the client
// gets when it happens before the answer has begun.
var errNoFreeConns = &chain.Rejection{Status: fasthttp.StatusServiceUnavailable, Reason: "upstream_saturated", Message: "every connection to the upstream is busy"}

var failures = [numFailures]struct {
	label string
	gw    *chain.Rejection
}{
	failConnect:        {"connect", errUnreachable},
	failTimeout:        {"timeout", errTimeout},
	failReset:          {"reset", errUpstreamReset},
	failProtocol:       {"protocol", errUpstreamProtocol},
	failSaturated:      {"saturated", errNoFreeConns},
	failTLS:            {"tls", errUpstreamTLS},
	failHeaderTooLarge: {"header_too_large", errUpstreamHeaderTooLarge},
	failOverloaded:     {"overloaded", errUpstreamOverloaded},
}

func (f failure) String() string { return failures[f].label }

// upstreamError is a failed round trip.
type upstreamError struct {
	kind failure
	err  error
}

func (e *upstreamError) Error() string { return e.kind.String() + ": " + e.err.Error() }

func classify(err error, connecting bool) *upstreamError {
	var (
		small   *fasthttp.ErrSmallBuffer
		verify  *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		invalid x509.CertificateInvalidError
		hostErr x509.HostnameError
		record  tls.RecordHeaderError
		alert   tls.AlertError
	)
	kind := failProtocol
	switch {
	case errors.Is(err, errConnLimit):
		kind = failOverloaded
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		kind = failSaturated
	case errors.As(err, &verify), errors.As(err, &unknown), errors.As(err, &invalid), errors.As(err, &hostErr),
		errors.As(err, &record), errors.As(err, &alert), isRemoteAlert(err):
		kind = failTLS
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout), isTimeout(err):
		kind = failTimeout
	case errors.As(err, &small):
		kind = failHeaderTooLarge
	case connecting:
		kind = failConnect
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, fasthttp.ErrConnectionClosed),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		kind = failReset
	default:
		var oe *net.OpError
		if errors.As(err, &oe) {
			kind = failReset
		}
	}
	return &upstreamError{kind, err}
}

// trip is what the round trip of one request needs from the request path.
// It lives in the request's pooled state.
type trip struct {
	// http10 says the client speaks HTTP/1.0, which cannot take a chunked
	// answer: a body of unknown length then goes out delimited by the
	// connection's close.
	http10 bool
	// clientWriteTimeout bounds each write to the client while a body
	// streams.
	clientWriteTimeout time.Duration
	// body is the request body when it streams from the client.
	body *limitedBody
	// stream is the answer's body when it streams (set by forward).
	stream *bodyStream
	// route the request took, for the stream's metrics and log.
	route *route

	// responseTimeout and streamIdleTimeout, when positive, replace the
	// upstream's responseTimeout for this request: the first bounds each
	// wait while the request is sent and for the answer's head, the second
	// each wait for the next bytes of the answer's body. The handler sets
	// them from the Exchange, where policies may have set them.
	responseTimeout   time.Duration
	streamIdleTimeout time.Duration

	// routed (the path the router forwards) and query (nil: none) make
	// the request-target under each target's base path; uri is the buffer
	// it is built in.
	routed *router.Match
	query  []byte
	uri    *[]byte
	// setHost: the client sent no Host, so each target's goes out.
	setHost bool

	// upgrade: the request asks the upstream to switch to WebSocket; it
	// goes on a connection of its own, and an answer of 101 with the
	// Sec-WebSocket-Accept wsAccept becomes tunnel (set by forward).
	upgrade  bool
	wsAccept [wsAcceptLen]byte
	tunnel   *tunnel

	// Set by forward for each attempt.
	target                                *target
	sendTimeout, headTimeout, bodyTimeout time.Duration
	tried                                 tried
}

func isIdempotent(req *fasthttp.Request) bool {
	h := &req.Header
	return h.IsGet() || h.IsHead() || h.IsOptions() || h.IsPut() || h.IsDelete() || h.IsTrace()
}

var (
	http11                = []byte("HTTP/1.1")
	errUpgradeUnsupported = errors.New("the upstream switched protocols, which the gateway does not proxy")
	errTooManyInterim     = errors.New("the upstream sent too many 1xx responses")
	errStatusLine         = errors.New("the upstream's status line is not HTTP/1.x with a status from 100 to 599")
	errTwoLengths         = errors.New("the upstream's answer has both Content-Length and Transfer-Encoding")
	errBareLFHead         = errors.New("the upstream's answer head ends with a bare LF instead of CRLF CRLF")
	errFieldName          = errors.New("the upstream's answer has a header line whose field name is not a token " +
		"(a space, a control or non-ASCII byte, or a separator such as @ in it or before its colon; an empty name; no colon)")
	errFoldedField = errors.New("the upstream's answer has a header line folded onto the one before it (obs-fold)")
)

// earlyAnswerGrace is how long the gateway looks for an answer once
// sending the request failed: an upstream that refuses a body (413, 401)
// often answers and closes before reading it, and its answer is then
// already on the connection.
const earlyAnswerGrace = 100 * time.Millisecond

// maxProbes bounds how many pooled connections one request may find
// closed or dirty before it dials a new one.
const maxProbes = 64

// roundTrip sends the request once. unprocessed says the upstream cannot
// have seen the request, so that sending it again is safe.
func (p *pool) roundTrip(ctx *fasthttp.RequestCtx, t *trip) (uerr *upstreamError, unprocessed bool) {
	req, resp := &ctx.Request, &ctx.Response
	// An upgrade goes on a new connection that never returns to the pool
	// (see upgradeClient).
	hc := p.hc
	if t.upgrade {
		hc = p.upgradeClient()
	}
	// A request that would wait for a connection is pending: the circuit
	// breaker answers it at once when too many already are.
	u := t.target.up
	pending := !t.upgrade && u.maxPending > 0 && p.hc.IdleConnsCount() == 0 && p.hc.ConnsCount() >= p.maxConns
	if pending {
		if u.pending.Add(1) > u.maxPending {
			u.pending.Add(-1)
			u.m.overloaded[limitPending].Inc()
			return overloadedError, false
		}
	}
	cc, err := hc.AcquireConn(p.connWait, t.upgrade)
	if pending {
		u.pending.Add(-1)
	}
	reused := false
	for probes := 0; err == nil; probes++ {
		reused = !cc.LastUseTime().Before(cc.CreatedTime())
		if !reused || probes == maxProbes {
			break
		}
		state := idle(cc.Conn(), nil)
		if state == idleClean {
			break
		}
		if state == idleData {
			p.violated(idleBytes)
		}
		hc.CloseConn(cc)
		cc, err = hc.AcquireConn(p.connWait, false)
	}
	if err != nil {
		ue := classify(err, true)
		return ue, ue.kind == failConnect
	}
	conn := cc.Conn()
	start := time.Now()
	// fasthttp enforces MaxConnDuration only inside HostClient.Do.
	closeAfter := t.upgrade || start.Sub(cc.CreatedTime()) > maxConnAge
	br := p.hc.AcquireReader(conn)
	bw := p.hc.AcquireWriter(conn)
	// release gives the connection back after a complete answer, or closes
	// it when it cannot carry another exchange. Bytes left on it are an
	// upstream breaking HTTP framing, counted even when the connection
	// closes anyway. A connection kept is looked at in the socket by the
	// settler, off the request path.
	release := func(keep bool) {
		state := afterAnswer(conn, br, keep)
		if state == idleData {
			p.violated(extraBytes)
		}
		p.hc.ReleaseReader(br)
		if keep && state == idleClean && p.reusable() {
			p.settler.settle(cc)
		} else {
			hc.CloseConn(cc)
		}
	}
	fail := func(err error, unprocessed bool) (*upstreamError, bool) {
		p.hc.ReleaseReader(br)
		hc.CloseConn(cc)
		resp.Reset()
		return classify(err, false), unprocessed
	}

	// Send the request. A body that streams from the client is sent by a
	// writer of its own while this goroutine waits for the answer, which
	// may come before the body is sent in full.
	var w *requestWriter
	var werr error
	_ = conn.SetWriteDeadline(start.Add(t.sendTimeout))
	if t.body != nil && req.IsBodyStream() {
		t.body.up, t.body.upTimeout = conn, t.sendTimeout
		_ = conn.SetReadDeadline(time.Time{})
		w = startRequestWriter(req, bw, conn, t.headTimeout)
	} else {
		if werr = req.Write(bw); werr == nil {
			werr = bw.Flush()
		}
		p.hc.ReleaseWriter(bw)
		switch {
		case werr == nil:
			// The response timeout counts from the end of the request.
			_ = conn.SetReadDeadline(time.Now().Add(t.headTimeout))
		case reused && staleConn(werr):
			// The upstream had closed the pooled connection: nothing of
			// the request reached it.
			return fail(werr, true)
		default:
			_ = conn.SetReadDeadline(time.Now().Add(earlyAnswerGrace))
		}
	}

	var rerr error
	for n := 0; ; n++ {
		if rerr = checkStatusLine(br); rerr != nil {
			break
		}
		if rerr = checkFraming(br); rerr != nil {
			break
		}
		if rerr = resp.Header.Read(br); rerr != nil {
			break
		}
		sc := resp.StatusCode()
		if sc == fasthttp.StatusSwitchingProtocols {
			if !t.upgrade {
				rerr = errUpgradeUnsupported
			}
			break
		}
		if sc >= 200 {
			break
		}
		if n >= 16 {
			rerr = errTooManyInterim
			break
		}
	}
	early := werr != nil
	if w != nil {
		if !w.finished() {
			// An answer (or a failure) before the whole body was sent: the
			// rest is not sent.
			t.body.abandon()
			early = true
		}
		werr = w.wait()
		p.hc.ReleaseWriter(bw)
		early = early || werr != nil
	}
	if rerr != nil {
		if werr != nil {
			// No answer: the failure to send is what went wrong.
			rerr = werr
		}
		// A reset on a pooled connection before any answer means the
		// request met a socket the upstream had closed: it was not
		// processed. A plain end of stream may follow a request the
		// upstream read, so it is not sent again.
		u2, _ := fail(rerr, false)
		return u2, reused && !early && errors.Is(rerr, syscall.ECONNRESET)
	}
	if early {
		// The upstream answered without reading all of the request: the
		// connection cannot carry another one. (The client's connection is
		// the handler's concern: what is left of its body is unread.)
		closeAfter = true
	}
	if t.upgrade && resp.StatusCode() == fasthttp.StatusSwitchingProtocols {
		if err := checkSwitch(&resp.Header, t.wsAccept[:]); err != nil {
			return fail(err, false)
		}
		// The connection is the tunnel's from now on; what the reader
		// holds past the 101 is the upstream's first WebSocket bytes.
		t.tunnel = newTunnel(conn, br, func() { hc.CloseConn(cc) }, t.sendTimeout)
		p.hc.ReleaseReader(br)
		removeHopHeaders(&resp.Header)
		resp.Header.ResetConnectionClose()
		resp.Header.SetProtocol(http11)
		return nil, false
	}

	// Framing is read before any header is removed: a Connection header
	// may name Content-Length, and what is left of the body on the socket
	// must be known either way.
	closeAfter = closeAfter || resp.ConnectionClose()
	cl := resp.Header.ContentLength()
	sc := resp.StatusCode()
	head := req.Header.IsHead()
	noContent := sc == fasthttp.StatusNoContent || sc == fasthttp.StatusNotModified
	if noContent && (cl == -1 || (sc == fasthttp.StatusNoContent && cl > 0)) {
		// A 204 may have no Content-Length but 0; a 304's describes the
		// representation, not this message; neither may be chunked.
		p.violated(bodyWithoutContent)
		closeAfter = true
	}
	if head && (cl > 0 || cl == -1) {
		// An answer to HEAD carries no body, but an upstream that answers
		// HEAD as it answers GET sends one anyway, maybe a moment later:
		// such a connection is not trusted with another request.
		closeAfter = true
	}
	removeHopHeaders(&resp.Header)
	resp.Header.ResetConnectionClose()
	resp.Header.SetProtocol(http11)

	switch {
	case head || noContent:
		resp.SkipBody = head
		release(!closeAfter)
		return nil, false
	case cl >= 0 && cl <= smallBody:
		if err := resp.ReadBody(br, 0); err != nil {
			return fail(err, false)
		}
		release(!closeAfter)
		return nil, false
	}

	// The connection's type is fasthttp's own and unexported, so the stream
	// keeps a closure that gives it back; this costs one allocation, on the
	// streaming path only.
	s := bodyStreamPool.Get().(*bodyStream)
	s.pool, s.conn, s.br, s.closeAfter = p, conn, br, closeAfter || cl == -2
	s.timeout, s.target = t.bodyTimeout, t.target
	s.client, s.writeTimeout = ctx.Conn(), t.clientWriteTimeout
	s.route = t.route
	s.done = func(keep bool) {
		if keep && p.reusable() {
			p.settler.settle(cc)
		} else {
			hc.CloseConn(cc)
		}
	}
	resp.Header.CopyTo(&s.resp.Header)
	s.resp.Header.SetContentLength(cl)
	s.resp.StreamBody = true
	if err := s.resp.ReadBody(br, 0); err != nil {
		s.recycle()
		return fail(err, false)
	}
	s.body = s.resp.BodyStream()
	// The headers go out with the first bytes of the body, so that an
	// upstream that fails before sending any is answered 502, not with a
	// truncated 200. An event stream's headers go out at once: its first
	// event may be long in coming.
	if !isEventStream(&resp.Header) {
		if err := s.prefetch(); err != nil {
			_ = s.resp.CloseBodyStream()
			s.recycle()
			return fail(err, false)
		}
	}
	if cl < 0 {
		cl = -1
	}
	t.stream = s
	if t.http10 && cl < 0 {
		// The answer is set up by streamHTTP10 once the response policies
		// have run.
		return nil, false
	}
	resp.ImmediateHeaderFlush = true
	resp.SetBodyStream(s, cl)
	return nil, false
}

// checkStatusLine refuses a status line that fasthttp would read leniently:
// "000" becomes 200 there, and codes outside 100–599 are no HTTP status.
func checkStatusLine(br *bufio.Reader) error {
	// "HTTP/1.1 200" is twelve bytes; an answer shorter than that is not
	// one, and Header.Read says why.
	b, err := br.Peek(12)
	if err != nil {
		if len(b) == 0 && isRemoteAlert(err) {
			// fasthttp reads any failure before the first byte as an end
			// of stream; the alert says why (a TLS 1.3 upstream refusing
			// the gateway's client certificate, or the lack of one, does
			// so once the handshake is over).
			return err
		}
		return nil
	}
	if string(b[:7]) != "HTTP/1." || b[8] != ' ' {
		return errStatusLine
	}
	code := 0
	for _, c := range b[9:12] {
		if c < '0' || c > '9' {
			return errStatusLine
		}
		code = code*10 + int(c-'0')
	}
	if code < 100 || code > 599 {
		return errStatusLine
	}
	return nil
}

// checkFraming refuses an answer head that a client, or a proxy in front
// of the gateway, could read otherwise than the gateway reads it:
//
//   - both Content-Length and Transfer-Encoding, which fasthttp reads by its
//     chunks alone. An upstream that sends both may frame its answers by
//     the length (an application that set the header itself on a server
//     that counts the bytes), and a length the gateway ignores leaves bytes
//     on the connection that it would read as the answer to another
//     request. RFC 9112 §6.3 says such a message "ought to be handled as an
//     error"; nginx answers 502, as the gateway does.
//   - an empty line other than CRLF CRLF: fasthttp reads only that as the
//     head's end, and would wait for one until the response timeout.
//   - a field name that is not a token (RFC 9110 §5.1): a space or a tab in
//     it or before its colon, a control, DEL or non-ASCII byte, a separator
//     such as @ or (, an empty name, a line without a colon. fasthttp keeps
//     "Bad Name: x" as it is and reads "Set-Cookie : x" as Set-Cookie, where
//     a parser in front of the gateway may read another name, or no field;
//     it refuses the rest, which is checked here all the same so that what
//     the gateway forwards does not hang on its parser's leniency. nginx
//     refuses a space, a control byte, DEL or an empty name ("upstream
//     sent invalid header") and passes other bytes on; HAProxy (unless
//     told to accept unsafe violations) and Envoy refuse any byte that is
//     not a token's, and a line without a colon, as the gateway does.
//   - a line folded onto the one before it (obs-fold, a line that starts
//     with a space or a tab): RFC 9112 §5.2 lets a proxy refuse it or
//     replace it with spaces; fasthttp joins the lines, nginx refuses it,
//     and so does the gateway. The first field line folded onto the status
//     line is one too.
//
// Values are left to Header.Read, which refuses a NUL, a bare CR and any
// other control byte but the tab in them: looking at them here would cost
// a pass over the bulk of the head. checkFraming peeks, so that
// Header.Read reads the head as it came. The head of every answer passes
// here, interim ones and a WebSocket's 101 included: one pass over the
// names, no allocation.
func checkFraming(br *bufio.Reader) error {
	if br.Buffered() < 12 {
		// checkStatusLine could not see a status line: Header.Read
		// reports why, with the error the connection gave.
		return nil
	}
	head, bare := peekHead(br)
	if bare {
		return errBareLFHead
	}
	if head == nil {
		return nil
	}
	// Lines are split as fasthttp splits them, at every LF; the status
	// line is no field, and the head ends with CRLF CRLF (bare is false),
	// the last CRLF of which is the empty line.
	head = head[bytes.IndexByte(head, '\n')+1 : len(head)-2]
	var length, coding bool
	for len(head) > 0 {
		line := head
		if i := bytes.IndexByte(head, '\n'); i >= 0 {
			line, head = head[:i], head[i+1:]
		} else {
			head = nil
		}
		n := 0
		for n < len(line) && ascii.IsTokenByte(line[n]) {
			n++
		}
		if n == 0 || n == len(line) || line[n] != ':' {
			if n == 0 && len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
				return badLine(errFoldedField, line)
			}
			return badLine(errFieldName, line)
		}
		switch n {
		case len(fieldCL):
			length = length || asciiEqualFold(line[:n], fieldCL)
		case len(fieldTE):
			coding = coding || asciiEqualFold(line[:n], fieldTE)
		}
	}
	if length && coding {
		return errTwoLengths
	}
	return nil
}

const fieldCL, fieldTE = "content-length", "transfer-encoding"

// badLine is err with the start of the line it is about, for the log, as
// nginx logs "upstream sent invalid header". It allocates, on the way to
// a 502 only.
func badLine(err error, line []byte) error {
	line = bytes.TrimSuffix(line, []byte{'\r'})
	return fmt.Errorf("%w: %q", err, line[:min(len(line), 64)])
}

// peekHead returns the answer head waiting in br, through the empty line
// that ends it, without consuming it; nil when it cannot be read whole
// (larger than br, or the connection failed first), which Header.Read
// then reports. bare reports an empty line other than CRLF CRLF (lines
// split at every LF, as fasthttp splits them), which ends the head for
// the upstream but not for fasthttp.
func peekHead(br *bufio.Reader) (head []byte, bare bool) {
	from := 0
	for n := max(br.Buffered(), 1); ; {
		b, err := br.Peek(n)
		end, crlf, next := headEnd(b, from)
		if end > 0 {
			return b[:end], !crlf
		}
		if err != nil || len(b) >= br.Size() {
			return nil, false
		}
		from = next
		n = len(b) + 1
	}
}

// headEnd finds in b, from from, the empty line that ends a head: the
// index after it and whether it is CRLF CRLF; end is 0 when b has none
// yet, and next is where to look again once b has grown.
func headEnd(b []byte, from int) (end int, crlf bool, next int) {
	for i := from; ; i++ {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return 0, false, len(b)
		}
		i += j
		rest := b[i+1:]
		switch {
		case len(rest) >= 1 && rest[0] == '\n':
			return i + 2, false, 0
		case len(rest) >= 2 && rest[0] == '\r' && rest[1] == '\n':
			return i + 3, i > 0 && b[i-1] == '\r', 0
		case len(rest) < 2 && (len(rest) == 0 || rest[0] == '\r'):
			// The bytes after this LF decide.
			return 0, false, i
		}
	}
}

func isEventStream(h *fasthttp.ResponseHeader) bool {
	ct := h.ContentType()
	const es = "text/event-stream"
	return len(ct) >= len(es) && asciiEqualFold(ct[:len(es)], es)
}

// isRemoteAlert reports whether err is a TLS alert the upstream sent:
// crypto/tls reports them as a net.OpError of Op "remote error" (its
// AlertError is for QUIC only).
func isRemoteAlert(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "remote error"
}

// staleConn reports whether err is what a pooled connection the upstream
// had already closed looks like.
func staleConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, fasthttp.ErrConnectionClosed)
}

// requestWriter sends a request whose body streams from the client, on a
// goroutine of its own, so that the upstream's answer can be read while
// the body is still being sent. Its goroutine outlives the request: it
// waits in idleWriters for the next one, since starting a goroutine
// allocates.
type requestWriter struct {
	req     *fasthttp.Request
	bw      *bufio.Writer
	conn    net.Conn
	timeout time.Duration
	done    chan error
	over    atomic.Bool
	// start wakes the goroutine for the request set; closed, it ends it.
	start chan struct{}
}

// maxIdleWriters bounds the requestWriters whose goroutines wait for a
// request (each a parked goroutine, a few KiB of stack): as many as
// streamed request bodies were sent at once, up to this.
const maxIdleWriters = 256

var idleWriters = make(chan *requestWriter, maxIdleWriters)

func startRequestWriter(req *fasthttp.Request, bw *bufio.Writer, conn net.Conn, timeout time.Duration) *requestWriter {
	var w *requestWriter
	select {
	case w = <-idleWriters:
	default:
		w = &requestWriter{done: make(chan error, 1), start: make(chan struct{}, 1)}
		go w.serve()
	}
	w.req, w.bw, w.conn, w.timeout = req, bw, conn, timeout
	w.start <- struct{}{}
	return w
}

// serve sends the requests it is started for until start is closed.
func (w *requestWriter) serve() {
	for range w.start {
		w.run()
	}
}

func (w *requestWriter) run() {
	err := w.req.Write(w.bw)
	if err == nil {
		err = w.bw.Flush()
	}
	if err == nil {
		// The response timeout counts from the end of the request.
		_ = w.conn.SetReadDeadline(time.Now().Add(w.timeout))
	} else {
		// Whatever the upstream answered before this is read already or
		// arriving; the reader waits no longer than that.
		_ = w.conn.SetReadDeadline(time.Now().Add(earlyAnswerGrace))
	}
	w.over.Store(true)
	w.done <- err
}

// finished reports whether the whole request has been sent (or failed).
func (w *requestWriter) finished() bool { return w.over.Load() }

// wait returns the writer's result once it has stopped, and recycles it.
func (w *requestWriter) wait() error {
	err := <-w.done
	w.req, w.bw, w.conn = nil, nil, nil
	w.over.Store(false)
	select {
	case idleWriters <- w:
	default:
		close(w.start)
	}
	return err
}

// bodyStream streams an upstream answer's body to the client and hands the
// connection back when the client side closes it. A failure mid-body is
// counted and logged: the client has its status already, so only the
// connection's close can tell it.
type bodyStream struct {
	pool         *pool
	target       *target   // its requests in flight count this one until Close
	up           *upstream // set when the upstream's requests in flight count this one until Close
	route        *route
	timeout      time.Duration // each wait for the upstream's next bytes
	conn         net.Conn
	client       net.Conn
	writeTimeout time.Duration
	done         func(keep bool)
	br           *bufio.Reader
	resp         fasthttp.Response
	body         io.Reader
	first        []byte // prefetched start of the body
	off          int
	sent         int64
	eof          bool
	failed       bool
	closeAfter   bool
	hdr          fasthttp.ResponseHeader // the HTTP/1.0 answer's headers
	// tap, when a response step asked for it, sees the body's bytes.
	tap chain.BodyTap
}

var bodyStreamPool = sync.Pool{New: func() any { return new(bodyStream) }}

// prefetchSize bounds the first read of a streamed body.
const prefetchSize = 16 << 10

// prefetch reads the first bytes of the body before the headers go out.
func (s *bodyStream) prefetch() error {
	if cap(s.first) < prefetchSize {
		s.first = make([]byte, prefetchSize)
	}
	s.first = s.first[:prefetchSize]
	_ = s.conn.SetReadDeadline(time.Now().Add(s.timeout))
	n, err := s.body.Read(s.first)
	s.first = s.first[:n]
	switch {
	case err == io.EOF:
		s.eof = true
	case err != nil && n == 0:
		return err
	}
	return nil
}

func (s *bodyStream) Read(p []byte) (int, error) {
	if s.off < len(s.first) {
		n := copy(p, s.first[s.off:])
		s.off += n
		s.sent += int64(n)
		if s.tap != nil {
			s.tap.TapWrite(p[:n])
		}
		return n, nil
	}
	if s.eof {
		return 0, io.EOF
	}
	// The timeouts bound each wait for the next bytes, both ways, not the
	// whole download: a large body may take longer than any timeout. The
	// client's write deadline is moved here because fasthttp sets it once
	// per response.
	now := time.Now()
	_ = s.conn.SetReadDeadline(now.Add(s.timeout))
	if s.client != nil && s.writeTimeout > 0 {
		_ = s.client.SetWriteDeadline(now.Add(s.writeTimeout))
	}
	n, err := s.body.Read(p)
	s.sent += int64(n)
	if s.tap != nil && n > 0 {
		s.tap.TapWrite(p[:n])
	}
	switch {
	case err == io.EOF:
		s.eof = true
	case err != nil:
		s.midStream(err)
	}
	return n, err
}

// midStream counts and logs an upstream that failed after its answer began.
func (s *bodyStream) midStream(err error) {
	if s.failed {
		return
	}
	s.failed = true
	ue := classify(err, false)
	if s.route != nil {
		s.route.m.bodyError(ue.kind)
		s.pool.log.Warn("upstream failed while its body streamed; the client's answer is cut short",
			"route", s.route.id, "reason", ue.kind.String(), "sent", s.sent, "error", err.Error())
	}
}

// Close returns the connection to the pool when the body was read to its
// end, and closes it otherwise (the client went away mid-body).
func (s *bodyStream) Close() error {
	_ = s.resp.CloseBodyStream()
	if s.tap != nil {
		s.tap.TapClose(s.eof && !s.failed)
		s.tap = nil
	}
	keep := !s.closeAfter && s.eof
	if s.eof {
		state := afterAnswer(s.conn, s.br, keep)
		if state == idleData {
			s.pool.violated(extraBytes)
		}
		keep = keep && state == idleClean
	}
	s.pool.hc.ReleaseReader(s.br)
	s.done(keep)
	s.target.finish()
	if s.up != nil {
		s.up.active.Add(-1)
	}
	s.recycle()
	return nil
}

func (s *bodyStream) recycle() {
	s.resp.Reset()
	s.hdr.Reset()
	s.pool, s.target, s.up, s.route, s.conn, s.client, s.done, s.br, s.body = nil, nil, nil, nil, nil, nil, nil, nil, nil
	s.tap = nil
	s.timeout = 0
	s.first, s.off, s.sent = s.first[:0], 0, 0
	s.eof, s.failed, s.closeAfter, s.writeTimeout = false, false, false, 0
	bodyStreamPool.Put(s)
}

// streamHTTP10 sends an answer of unknown length to an HTTP/1.0 client,
// which cannot take it chunked: the body goes out as it arrives and the
// connection's close ends it, as nginx does. ctx.Response holds the final
// headers, after the response policies.
func streamHTTP10(ctx *fasthttp.RequestCtx, s *bodyStream) {
	ctx.Response.Header.CopyTo(&s.hdr)
	s.hdr.Del(fasthttp.HeaderTransferEncoding)
	s.hdr.SetContentLength(-2) // no framing header; also sets Connection: close
	s.hdr.SetConnectionClose()
	ctx.Response.SkipBody = true
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(s.serveUntilClose)
}

func (s *bodyStream) serveUntilClose(c net.Conn) {
	// fasthttp leaves hijacked connections to their handler (see
	// Server.KeepHijackedConns in newListener).
	defer c.Close()
	defer s.Close()
	s.client = nil // the deadline is set here, per write
	_ = c.SetWriteDeadline(time.Now().Add(s.writeTimeout))
	if _, err := c.Write(s.hdr.Header()); err != nil {
		return
	}
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	buf := *bp
	for {
		n, err := s.Read(buf)
		if n > 0 {
			if s.writeTimeout > 0 {
				_ = c.SetWriteDeadline(time.Now().Add(s.writeTimeout))
			}
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
