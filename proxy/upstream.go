package proxy

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/config"
)

// smallBody is the largest response body with a known length that is read
// whole into the response; longer and chunked bodies stream through.
const smallBody = 64 << 10

// upstream is one pooled keep-alive client to one upstream address. Plans
// share an upstream across reloads while its settings stay the same, so
// warm connections survive a config change. Safe for concurrent use.
//
// What differs between routes sharing the upstream (base path, Host
// header) lives on the route, not here.
type upstream struct {
	key             string
	hc              *fasthttp.HostClient
	host            []byte
	connectTimeout  time.Duration
	responseTimeout time.Duration
}

// upstreamKey names the connection settings of an upstream: routes whose
// keys are equal share one pool.
func upstreamKey(u *config.Upstream) string {
	return fmt.Sprintf("%s|%s|%s|%s|%d|%s|%t", u.Scheme, u.Host,
		u.ConnectTimeout, u.ResponseTimeout, u.MaxConns, u.CAFile, u.InsecureSkipVerify)
}

// Connection lifetimes. Idle connections are dropped before common
// upstream keep-alive timeouts (Node.js closes after 5 s) so that a request
// rarely meets one the upstream has closed; connections are recycled after
// maxConnAge so that traffic spreads again over a scaled Service.
const (
	maxIdleConn = 4 * time.Second
	maxConnAge  = 5 * time.Minute
)

func newUpstream(u *config.Upstream, dial fasthttp.DialFuncWithTimeout) (*upstream, error) {
	var tlsConfig *tls.Config
	if u.Scheme == "https" {
		host, _, err := net.SplitHostPort(u.Host)
		if err != nil {
			host = u.Host
		}
		tlsConfig = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12,
			InsecureSkipVerify: u.InsecureSkipVerify, NextProtos: []string{"http/1.1"}}
		if u.CAFile != "" {
			pem, err := os.ReadFile(u.CAFile)
			if err != nil {
				return nil, fmt.Errorf("%s: cannot read upstream caFile: %w", u.Pos, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("%s: upstream caFile %s holds no PEM certificate", u.Pos, u.CAFile)
			}
			tlsConfig.RootCAs = pool
		}
	}
	// DNS answers are cached briefly, so that a Kubernetes Service or a
	// rescheduled pod is found again without a restart.
	if dial == nil {
		dial = (&fasthttp.TCPDialer{DNSCacheDuration: 10 * time.Second}).DialTimeout
	}
	hc := &fasthttp.HostClient{
		Addr:                     u.Host,
		IsTLS:                    u.Scheme == "https",
		TLSConfig:                tlsConfig,
		DialTimeout:              dial,
		MaxConns:                 u.MaxConns,
		MaxConnWaitTimeout:       u.ConnectTimeout,
		MaxIdleConnDuration:      maxIdleConn,
		ReadBufferSize:           32 << 10,
		WriteBufferSize:          16 << 10,
		NoDefaultUserAgentHeader: true,
		DisablePathNormalizing:   true,
	}
	return &upstream{
		key:             upstreamKey(u),
		hc:              hc,
		host:            []byte(u.Host),
		connectTimeout:  u.ConnectTimeout,
		responseTimeout: u.ResponseTimeout,
	}, nil
}

// close drops the idle connections of an upstream no plan uses any more.
func (u *upstream) close() { u.hc.CloseIdleConnections() }

// upstreamError classifies a failed round trip for the client and metrics.
type upstreamError struct {
	gw     *gatewayError
	metric string // connect, timeout, reset, protocol
	err    error
}

func (e *upstreamError) Error() string { return e.metric + ": " + e.err.Error() }

var errNoFreeConns = &gatewayError{fasthttp.StatusServiceUnavailable, "upstream_saturated", "every connection to the upstream is busy"}

func classify(err error, connecting bool) *upstreamError {
	var ne net.Error
	isTimeout := errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout) ||
		(errors.As(err, &ne) && ne.Timeout())
	switch {
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return &upstreamError{errNoFreeConns, "saturated", err}
	case isTimeout:
		return &upstreamError{errTimeout, "timeout", err}
	case connecting:
		return &upstreamError{errUnreachable, "connect", err}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, fasthttp.ErrConnectionClosed):
		return &upstreamError{errUnreachable, "reset", err}
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return &upstreamError{errUnreachable, "reset", err}
	}
	return &upstreamError{errUpstreamProtocol, "protocol", err}
}

// forward sends ctx.Request, already rewritten for the upstream, and reads
// the answer into ctx.Response. A body of known small length is read whole;
// any other streams to the client through a pooled reader that returns the
// connection to the pool once the body has been read to its end.
//
// A request that is idempotent and has no body is sent once more on a fresh
// connection when the first attempt could not connect or found a pooled
// connection closed by the upstream.
//
// http10 says the client speaks HTTP/1.0, which cannot take a chunked
// answer: a body of unknown length is then read whole, up to
// maxHTTP10Body, and sent with its length.
func (u *upstream) forward(ctx *fasthttp.RequestCtx, http10 bool, clientWriteTimeout time.Duration) *upstreamError {
	req := &ctx.Request
	// -2 is fasthttp's "no framing header": a request without a body.
	cl := req.Header.ContentLength()
	canRetry := isIdempotent(req) && (cl == 0 || cl == -2)
	connectRetried := false
	for attempt := 0; ; attempt++ {
		retry, err := u.roundTrip(ctx, http10, clientWriteTimeout)
		if err == nil {
			return nil
		}
		if !retry || !canRetry || attempt >= maxStaleRetries {
			return err
		}
		// A refused connection is tried once more; a pooled connection the
		// upstream had closed is not the upstream's fault, and the next
		// pooled one may be just as stale after an upstream restart.
		if err.metric == "connect" {
			if connectRetried {
				return err
			}
			connectRetried = true
		}
	}
}

// maxStaleRetries bounds how many dead pooled connections one request may
// meet before it fails.
const maxStaleRetries = 4

func isIdempotent(req *fasthttp.Request) bool {
	h := &req.Header
	return h.IsGet() || h.IsHead() || h.IsOptions() || h.IsPut() || h.IsDelete() || h.IsTrace()
}

// maxHTTP10Body bounds what is buffered for an HTTP/1.0 client.
const maxHTTP10Body = 16 << 20

var (
	http11                = []byte("HTTP/1.1")
	errUpgradeUnsupported = errors.New("the upstream switched protocols, which the gateway does not proxy")
	errTooManyInterim     = errors.New("the upstream sent too many 1xx responses")
)

func (u *upstream) roundTrip(ctx *fasthttp.RequestCtx, http10 bool, clientWriteTimeout time.Duration) (retry bool, uerr *upstreamError) {
	req, resp := &ctx.Request, &ctx.Response
	cc, err := u.hc.AcquireConn(u.connectTimeout, false)
	if err != nil {
		ue := classify(err, true)
		return ue.metric == "connect", ue
	}
	reused := !cc.LastUseTime().Before(cc.CreatedTime())
	conn := cc.Conn()
	now := time.Now()
	// fasthttp enforces MaxConnDuration only inside HostClient.Do.
	closeAfter := now.Sub(cc.CreatedTime()) > maxConnAge
	if err := conn.SetWriteDeadline(now.Add(u.responseTimeout)); err != nil {
		u.hc.CloseConn(cc)
		return reused, classify(err, false)
	}
	bw := u.hc.AcquireWriter(conn)
	err = req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	u.hc.ReleaseWriter(bw)
	if err != nil {
		u.hc.CloseConn(cc)
		return reused && staleConn(err), classify(err, false)
	}
	if err := conn.SetReadDeadline(now.Add(u.responseTimeout)); err != nil {
		u.hc.CloseConn(cc)
		return false, classify(err, false)
	}
	br := u.hc.AcquireReader(conn)
	fail := func(err error, retry bool) (bool, *upstreamError) {
		u.hc.ReleaseReader(br)
		u.hc.CloseConn(cc)
		resp.Reset()
		return retry, classify(err, false)
	}
	for n := 0; ; n++ {
		if err := resp.Header.Read(br); err != nil {
			// A pooled connection the upstream had closed fails before the
			// first byte: that is safe to send again.
			return fail(err, reused && n == 0 && staleConn(err))
		}
		sc := resp.StatusCode()
		if sc == fasthttp.StatusSwitchingProtocols {
			return fail(errUpgradeUnsupported, false)
		}
		if sc >= 200 {
			break
		}
		if n >= 16 {
			return fail(errTooManyInterim, false)
		}
	}
	// Framing is read before any header is removed: a Connection header
	// may name Content-Length, and what is left of the body on the socket
	// must be known either way.
	closeAfter = closeAfter || resp.ConnectionClose()
	cl := resp.Header.ContentLength()
	sc := resp.StatusCode()
	removeHopHeaders(&resp.Header)
	resp.Header.ResetConnectionClose()
	resp.Header.SetProtocol(http11)

	noBody := req.Header.IsHead() || sc == fasthttp.StatusNoContent || sc == fasthttp.StatusNotModified
	if noBody || (cl >= 0 && cl <= smallBody) || (http10 && cl < 0) {
		switch {
		case noBody:
			resp.SkipBody = req.Header.IsHead()
		case http10 && cl < 0:
			if err := resp.ReadBody(br, maxHTTP10Body); err != nil {
				return fail(err, false)
			}
			closeAfter = closeAfter || cl == -2
		default:
			if err := resp.ReadBody(br, 0); err != nil {
				return fail(err, false)
			}
		}
		u.hc.ReleaseReader(br)
		if closeAfter {
			u.hc.CloseConn(cc)
		} else {
			u.hc.ReleaseConn(cc)
		}
		return false, nil
	}
	// The connection's type is fasthttp's own and unexported, so the stream
	// keeps a closure that gives it back; this costs one allocation, on the
	// streaming path only.
	s := bodyStreamPool.Get().(*bodyStream)
	s.u, s.conn, s.br, s.closeAfter = u, conn, br, closeAfter || cl == -2
	s.client, s.writeTimeout = ctx.Conn(), clientWriteTimeout
	s.done = func(closeConn bool) {
		if closeConn {
			u.hc.CloseConn(cc)
		} else {
			u.hc.ReleaseConn(cc)
		}
	}
	resp.Header.CopyTo(&s.resp.Header)
	s.resp.Header.SetContentLength(cl)
	s.resp.StreamBody = true
	if err := s.resp.ReadBody(br, 0); err != nil {
		s.resp.Reset()
		s.reset()
		return fail(err, false)
	}
	s.body = s.resp.BodyStream()
	if cl < 0 {
		cl = -1
	}
	resp.SetBodyStream(s, cl)
	return false, nil
}

// staleConn reports whether err is what a pooled connection the upstream
// had already closed looks like.
func staleConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, fasthttp.ErrConnectionClosed)
}

// bodyStream streams an upstream response body to the client and hands the
// connection back when the client side closes it.
type bodyStream struct {
	u            *upstream
	conn         net.Conn
	client       net.Conn
	writeTimeout time.Duration
	done         func(closeConn bool)
	br           *bufio.Reader
	resp         fasthttp.Response
	body         io.Reader
	eof          bool
	closeAfter   bool
}

var bodyStreamPool = sync.Pool{New: func() any { return new(bodyStream) }}

func (s *bodyStream) Read(p []byte) (int, error) {
	if s.eof {
		return 0, io.EOF
	}
	// The timeouts bound each wait for the next bytes, both ways, not the
	// whole download: a large body may take longer than any timeout. The
	// client's write deadline is moved here because fasthttp sets it once
	// per response.
	now := time.Now()
	_ = s.conn.SetReadDeadline(now.Add(s.u.responseTimeout))
	if s.client != nil && s.writeTimeout > 0 {
		_ = s.client.SetWriteDeadline(now.Add(s.writeTimeout))
	}
	n, err := s.body.Read(p)
	if err == io.EOF {
		s.eof = true
	}
	return n, err
}

// Close returns the connection to the pool when the body was read to its
// end, and closes it otherwise (the client went away mid-body).
func (s *bodyStream) Close() error {
	_ = s.resp.CloseBodyStream()
	s.u.hc.ReleaseReader(s.br)
	s.done(s.closeAfter || !s.eof)
	s.resp.Reset()
	s.reset()
	return nil
}

func (s *bodyStream) reset() {
	s.u, s.conn, s.client, s.done, s.br, s.body = nil, nil, nil, nil, nil, nil
	s.eof, s.closeAfter, s.writeTimeout = false, false, 0
	bodyStreamPool.Put(s)
}
