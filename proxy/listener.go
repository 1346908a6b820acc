package proxy

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/config"
	"github.com/flexgate/flexgate/internal/metriclabel"
	"github.com/flexgate/flexgate/internal/userfile"
)

// requestBodyPrefetch is how much of a request body fasthttp reads before
// the handler runs; larger bodies stream to the upstream as they arrive.
const requestBodyPrefetch = 64 << 10

// keepAliveHeadBytes is the largest request head (request target plus
// header fields) after which the connection stays open. With request
// bodies streamed, fasthttp keeps a connection's read buffer and request
// context, whose header buffers stay grown to the largest head seen, for as
// long as the connection lives (fasthttp PR #1844: the reader cannot be
// released between requests); closing after a larger head returns about
// three times its size to the pools instead of leaving it to an idle client.
const keepAliveHeadBytes = 8 << 10

// serverLimits are the limits a listener's fasthttp.Server is built with.
// A reload that changes them builds every listener anew on its socket.
type serverLimits struct {
	maxHeaderBytes    int
	read, write, idle time.Duration
	maxConns          int // the gateway's cap, after Options.MaxConns
}

// listener serves one socket with one fasthttp.Server and, for HTTPS, one
// certificate store. Its settings are fixed: a reload that changes its
// name, protocol or server limits builds a new listener, which takes over
// the socket while this one drains. Certificates and TLS settings change
// in place (certStore), operator-supplied session ticket keys with them;
// the keys the gateway makes belong to the address, not the listener
// (ticketConfig).
type listener struct {
	g        *Gateway
	spec     config.Listener
	name     string
	address  string // as configured: a reload gives its socket to the next listener with this address
	protocol string
	scheme   string
	port     []byte // the bound port, for X-Forwarded-Port
	limits   serverLimits
	srv      *fasthttp.Server
	sock     *socket
	in       *inbox
	certs    *certStore    // nil for HTTP
	tickets  *ticketConfig // the address's; nil for HTTP
	stop     chan struct{} // closed when the listener has drained; ends its certificate watch
}

// newListener prepares a listener for spec; it opens nothing and starts
// nothing, so that a reload can drop it.
func newListener(g *Gateway, spec *config.Listener, lim serverLimits) (*listener, error) {
	l := &listener{g: g, spec: *spec, name: spec.Name, address: spec.Address, protocol: spec.Protocol,
		scheme: "http", limits: lim, stop: make(chan struct{})}
	l.in = &inbox{l: l, conns: make(chan *cappedConn), closed: make(chan struct{}), live: map[*cappedConn]struct{}{}}
	if spec.Protocol == "HTTPS" {
		l.scheme = "https"
		cs, err := newCertStore(spec, g.log.With("listener", spec.Name))
		if err != nil {
			return nil, err
		}
		l.certs = cs
		l.tickets = g.ticketConfigFor(spec.Address)
	}
	l.srv = &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			g.serve(ctx, l)
			markServed(ctx.Conn())
		},
		// A client waiting for 100 Continue gets it only once the request
		// may proceed; otherwise the final answer, and its body unsent.
		ExpectHandler:         func(ctx *fasthttp.RequestCtx) int { return g.expect(ctx, l) },
		ErrorHandler:          g.serverError,
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		ReadBufferSize:        lim.maxHeaderBytes,
		WriteBufferSize:       16 << 10,
		ReadTimeout:           lim.read,
		WriteTimeout:          lim.write,
		IdleTimeout:           lim.idle,
		// The socket enforces the cap with the gateway's own JSON 503.
		// fasthttp takes a worker back only after the connection has closed
		// and the client may have connected again, so its own limit must
		// leave room for the workers in that gap (at twice the cap, two
		// connections in a row could be refused when the cap is 1); this
		// is only a backstop.
		Concurrency:        2*lim.maxConns + 1024,
		MaxRequestBodySize: requestBodyPrefetch,
		StreamRequestBody:  true,
		// A connection that has not sent a request holds no buffers, only
		// its goroutine: fasthttp gives the read buffer and the request
		// context back to their pools while it waits for the first byte,
		// and the write buffer after every response. With streamed bodies
		// the read buffer (ReadBufferSize) stays with a connection after its
		// first request; see keepAliveHeadBytes.
		ReduceMemoryUsage:            true,
		DisablePreParseMultipartForm: true,
		CloseOnShutdown:              true,
		// A hijacked connection is its handler's to close, so that a
		// WebSocket tunnel's handler can return at once: fasthttp then
		// frees the request context and the read buffer, which an idle
		// tunnel would otherwise keep.
		KeepHijackedConns:     true,
		SecureErrorLogMessage: true,
		Logger:                fasthttpLogger{g},
	}
	return l, nil
}

// attach binds the listener to the socket it will serve.
func (l *listener) attach(s *socket) {
	l.sock = s
	l.port = s.port
}

// serve starts the listener's server and hands it its socket: from now on
// the socket's new connections are this listener's.
func (l *listener) serve() {
	g := l.g
	if l.tickets != nil {
		// Before the socket hands this listener a connection, whose
		// handshake must find its settings.
		l.tickets.certs.Store(l.certs)
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := l.srv.Serve(l.in); err != nil {
			g.log.Error("listener stopped", "listener", l.name, "error", err.Error())
		}
	}()
	if l.certs != nil {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			l.certs.watch(l.stop, g.stop, g.opts.CertPollInterval)
		}()
	}
	l.sock.cur.Store(l)
}

// drain stops the listener: idle keep-alive connections close at once,
// requests in flight finish and their connections close after the answer.
// When ctx ends first, the connections still open are closed. The socket
// is not touched: the caller closes it, or another listener serves it.
func (l *listener) drain(ctx context.Context) error {
	defer func() {
		select {
		case <-l.stop:
		default:
			close(l.stop)
		}
		if l.tickets != nil {
			// Unless another listener serves the address now, its
			// certificates and keys are not kept for the tickets' sake.
			l.tickets.certs.CompareAndSwap(l.certs, nil)
		}
	}()
	// From now on a connection of this listener that is closed closes,
	// even one whose wait for its next request has just timed out: the
	// Close of fasthttp's shutdown or of closeAll must not park it, for
	// the serving goroutine closes it again later, when it may already be
	// served anew.
	l.in.draining.Store(true)
	err := l.srv.ShutdownWithContext(ctx)
	// fasthttp closes the inbox, unless its Serve had not begun yet.
	l.in.Close()
	if err != nil {
		// fasthttp leaves the connections it could not drain running.
		l.in.closeAll()
		return err
	}
	// A connection handed over while the server was stopping is no
	// server's concern any more: wait for it, then close it.
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for l.in.open() > 0 {
		select {
		case <-ctx.Done():
			l.in.closeAll()
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// prepareTLS loads what spec says the listener's TLS serves and returns
// the step that serves it to new handshakes, so that a reload commits
// certificates only once every listener's loaded.
func (l *listener) prepareTLS(spec *config.Listener) (commit func(), err error) {
	if l.certs == nil || spec.TLS == nil {
		return func() {}, nil
	}
	st, err := loadTLS(spec)
	if err != nil {
		return nil, err
	}
	return func() {
		l.spec = *spec
		l.certs.store(st)
	}, nil
}

// socket is one bound address. Its accept loop admits each connection under
// the gateway's caps and hands it to the listener that serves the socket
// now, so that a reload can give the socket to a listener built anew
// without closing it. Safe for concurrent use.
type socket struct {
	g    *Gateway
	ln   net.Listener
	port []byte
	// cur is the listener that takes the socket's connections.
	cur    atomic.Pointer[listener]
	closed chan struct{} // closed by close: the socket takes no more connections
	once   sync.Once
	done   chan struct{} // closed when the accept loop has returned
	parked atomic.Int32  // connections parked from this socket (park.go)
}

// openSocket binds the address spec asks for (Options.ListenerAddr may
// change it). The socket accepts nothing until start.
func (g *Gateway) openSocket(spec *config.Listener) (*socket, error) {
	addr := spec.Address
	if g.opts.ListenerAddr != nil {
		addr = g.opts.ListenerAddr(*spec)
	}
	ln, err := g.listen(addr)
	if err != nil {
		err = fmt.Errorf("listener %q: cannot listen on %s: %w", spec.Name, addr, err)
		if errors.Is(err, syscall.EADDRINUSE) {
			if holder := g.portHolder(addr); holder != "" {
				err = fmt.Errorf("%w; listener %q of this gateway holds that port, and a reload binds new sockets before it closes old ones: "+
					"make the change in two reloads, one that frees the port and one that takes it", err, holder)
			}
		}
		return nil, err
	}
	s := &socket{g: g, ln: ln, closed: make(chan struct{}), done: make(chan struct{})}
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		s.port = strconv.AppendInt(nil, int64(a.Port), 10)
	}
	return s, nil
}

// listen binds addr, or does what Options.listen says.
func (g *Gateway) listen(addr string) (net.Listener, error) {
	if g.opts.listen != nil {
		return g.opts.listen(addr)
	}
	return net.Listen("tcp", addr)
}

// portHolder names the listener serving the port of addr, if any.
func (g *Gateway) portHolder(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	g.lnMu.Lock()
	defer g.lnMu.Unlock()
	for _, l := range g.listeners {
		if l.sock != nil && string(l.sock.port) == port {
			return l.name
		}
	}
	return ""
}

// start runs the accept loop; the socket must have a listener (serve).
func (s *socket) start() {
	s.g.wg.Add(1)
	go func() {
		defer s.g.wg.Done()
		s.accept()
	}()
}

// close stops accepting: from now on the port refuses connections. Those
// accepted before stay with their listener.
func (s *socket) close() {
	s.once.Do(func() {
		close(s.closed)
		_ = s.ln.Close()
		s.g.parker.closeSocket(s)
	})
}

func (s *socket) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

func (s *socket) accept() {
	defer close(s.done)
	for {
		c, err := acceptPatiently(s.ln, s.closed, s.g.log)
		if err != nil {
			return
		}
		lim := s.g.conns
		key, over := lim.admit(c.RemoteAddr())
		if over != nil {
			s.refuse(c, over == errClientConnLimit)
			continue
		}
		cc := &cappedConn{Conn: c, lim: lim, key: key, fd: -1}
		if s.g.parker != nil && s.g.parkAfter > 0 {
			if cc.fd = parkFD(c); cc.fd >= 0 {
				cc.sock = s
			}
		}
		s.hand(cc)
	}
}

// acceptPatiently accepts ln's next connection. An error other than ln
// closing (out of file descriptors, a connection reset before it was
// accepted) is logged and retried after a pause, as net/http does: fasthttp's
// Serve returns at the first such error, leaving the port open with nobody
// accepting. It returns an error only once ln is closed or closed is.
func acceptPatiently(ln net.Listener, closed <-chan struct{}, log *slog.Logger) (net.Conn, error) {
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err == nil {
			return c, nil
		}
		select {
		case <-closed:
			return nil, net.ErrClosed
		default:
		}
		if errors.Is(err, net.ErrClosed) {
			return nil, err
		}
		backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
		log.Warn("cannot accept a connection; retrying", "addr", ln.Addr().String(),
			"error", err.Error(), "retryIn", backoff.String())
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-closed:
			t.Stop()
			return nil, net.ErrClosed
		}
	}
}

// patientListener is a net.Listener whose Accept retries as
// acceptPatiently does, for a server fasthttp runs on it directly (the
// admin server).
type patientListener struct {
	net.Listener
	log    *slog.Logger
	closed chan struct{}
	once   sync.Once
}

func newPatientListener(ln net.Listener, log *slog.Logger) *patientListener {
	return &patientListener{Listener: ln, log: log, closed: make(chan struct{})}
}

func (l *patientListener) Accept() (net.Conn, error) {
	return acceptPatiently(l.Listener, l.closed, l.log)
}

func (l *patientListener) Close() error {
	err := net.ErrClosed
	l.once.Do(func() {
		close(l.closed)
		err = l.Listener.Close()
	})
	return err
}

// refuse closes a connection over a cap; on plain HTTP it first answers
// with the gateway's JSON 503 (over TLS nothing can be said before a
// handshake).
func (s *socket) refuse(c net.Conn, perClient bool) {
	resp, reason := overloadedResponse, errOverloaded.Reason
	if perClient {
		resp, reason = clientConnLimitResponse, errClientConnLimit.Reason
	}
	if p := s.g.plan.Load(); p != nil {
		p.noRoute.gatewayError(reason)
	}
	http := s.cur.Load().certs == nil
	go func() {
		if http {
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = c.Write(resp)
		}
		_ = c.Close()
	}()
}

// hand gives c to the listener serving the socket. When that listener
// stops before it takes c, c goes to the one that took its place, or is
// closed when the socket is closing.
func (s *socket) hand(c *cappedConn) {
	for {
		l := s.cur.Load()
		select {
		case l.in.conns <- c:
			return
		case <-l.in.closed:
			if s.cur.Load() == l {
				_ = c.Close()
				return
			}
		}
	}
}

// inbox is the net.Listener a listener's server serves: the connections
// its socket hands over, with TLS added for HTTPS. It keeps the
// connections it gave out, to close those still open when a drain ends.
type inbox struct {
	l      *listener
	conns  chan *cappedConn
	closed chan struct{}
	once   sync.Once
	// draining is set as the listener drains: its connections no longer
	// park (park.go).
	draining atomic.Bool

	mu   sync.Mutex
	live map[*cappedConn]struct{}
}

func (in *inbox) Accept() (net.Conn, error) {
	for {
		c, err := in.next()
		if c == nil {
			return nil, err
		}
		if c.in != nil && (c.tls != nil) != (in.l.certs != nil) {
			// Parked under a listener of the other protocol, which a
			// reload replaced with this one (a TLS session cannot go on
			// as plain HTTP, nor plain HTTP as TLS).
			_ = c.closeNow()
			continue
		}
		return in.give(c), nil
	}
}

// next waits for the socket's next connection.
func (in *inbox) next() (*cappedConn, error) {
	select {
	case c := <-in.conns:
		return c, nil
	case <-in.closed:
		return nil, net.ErrClosed
	}
}

// give records c as this inbox's and returns it as the server serves it.
func (in *inbox) give(c *cappedConn) net.Conn {
	in.mu.Lock()
	in.live[c] = struct{}{}
	c.in = in
	in.mu.Unlock()
	if c.tls != nil {
		// Back from parking, with its session.
		return c.tls
	}
	if t := in.l.tickets; t != nil {
		// The TLS settings in force when the ClientHello arrives serve
		// this connection's handshake, which runs on its first read.
		c.tls = &tlsConn{Conn: tls.Server(c, t.base), cc: c}
		return c.tls
	}
	return c
}

// Close stops Accept; the socket is not closed.
func (in *inbox) Close() error {
	in.once.Do(func() { close(in.closed) })
	return nil
}

func (in *inbox) Addr() net.Addr { return in.l.sock.ln.Addr() }

func (in *inbox) forget(c *cappedConn) {
	in.mu.Lock()
	delete(in.live, c)
	in.mu.Unlock()
}

func (in *inbox) open() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.live)
}

func (in *inbox) closeAll() {
	in.mu.Lock()
	conns := make([]*cappedConn, 0, len(in.live))
	for c := range in.live {
		conns = append(conns, c)
	}
	in.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// serverError answers requests fasthttp could not parse: malformed or
// ambiguous framing, headers too large, a body over the limit. The
// connection is closed, since what follows on it cannot be trusted.
func (g *Gateway) serverError(ctx *fasthttp.RequestCtx, err error) {
	e := errBadRequest
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.As(err, &small):
		e = errHeaderTooLarge
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		e = errBodyTooLarge
	}
	ctx.Response.Reset()
	renderError(ctx, e, "", nil)
	ctx.SetConnectionClose()
	p := g.plan.Load()
	p.noRoute.gatewayError(e.Reason)
	p.noRoute.countStatus(e.Status)
	g.log.Debug("malformed request", "reason", e.Reason, "error", err.Error(), "remote", ctx.RemoteAddr().String())
}

type fasthttpLogger struct{ g *Gateway }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.g.log.Debug("fasthttp", "message", fmt.Sprintf(format, args...))
}

// certStore serves an HTTPS listener's TLS settings and certificates to
// new handshakes, and re-reads the files they come from when those change.
// Safe for concurrent use.
type certStore struct {
	log   *slog.Logger
	mu    sync.Mutex // serialises stores
	state atomic.Pointer[tlsState]
}

// ticketConfig is the tls.Config every handshake on one configured
// listener address starts from. crypto/tls keeps the session ticket keys
// on it, and makes and rotates them itself (daily, each valid 7 days). The
// gateway keeps it for its lifetime, whatever serves the address, so that
// the tickets clients hold survive a rotated certificate, a reload that
// builds the listener anew (its name, protocol or the server limits
// changed), and a reload that removes the address followed by one that
// restores it: clients go on resuming instead of paying a full handshake.
// Each address has its own keys: a ticket does not resume on another
// listener. A listener that names tls.sessionTicketKeys serves with those
// instead (loadTLS sets them on the config base hands each handshake), and
// these keys wait unused for a reload that removes them. Safe for
// concurrent use.
type ticketConfig struct {
	base *tls.Config
	// certs is the store of the HTTPS listener that serves the address,
	// whose settings base hands each handshake (GetConfigForClient); nil
	// once that listener has drained and none has taken its place, so that
	// an address a reload removed keeps only its keys, not a certificate
	// and its private key.
	certs atomic.Pointer[certStore]
}

var errAddressRetired = errors.New("no listener serves this address any more")

// ticketConfigFor returns the ticketConfig of a configured listener
// address, made on first use. It is called from New and under mu.
func (g *Gateway) ticketConfigFor(addr string) *ticketConfig {
	if t := g.tickets[addr]; t != nil {
		return t
	}
	t := &ticketConfig{}
	t.base = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		cs := t.certs.Load()
		if cs == nil {
			// A connection of a listener that has drained since.
			return nil, errAddressRetired
		}
		return cs.config(), nil
	}}
	if g.tickets == nil {
		g.tickets = map[string]*ticketConfig{}
	}
	g.tickets[addr] = t
	return t
}

// tlsState is what one load of a listener's TLS produced.
type tlsState struct {
	spec *config.Listener
	conf *tls.Config
	// digest covers every file read, so that a poll sees a change.
	digest [sha256.Size]byte
	// files says whether anything came from files (and is polled).
	files bool
}

func newCertStore(spec *config.Listener, logger *slog.Logger) (*certStore, error) {
	st, err := loadTLS(spec)
	if err != nil {
		return nil, err
	}
	cs := &certStore{log: logger}
	cs.state.Store(st)
	return cs, nil
}

// config is the tls.Config new handshakes use.
func (cs *certStore) config() *tls.Config { return cs.state.Load().conf }

func (cs *certStore) store(st *tlsState) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.state.Store(st)
}

// defaultCiphers are the TLS 1.2 suites served when a listener names none:
// forward secrecy and AEAD only. TLS 1.3 suites are not configurable and all
// are modern.
var defaultCiphers = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305,
}

// loadTLS reads the certificates, client CAs and session ticket keys of an
// HTTPS listener and builds the tls.Config its handshakes use.
func loadTLS(spec *config.Listener) (*tlsState, error) {
	t := spec.TLS
	if t == nil || len(t.Certificates) == 0 {
		return nil, fmt.Errorf("%s: listener %q is HTTPS but has no tls certificates", spec.Pos, spec.Name)
	}
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("%s: listener %q: %w", spec.Pos, spec.Name, err)
	}
	st := &tlsState{spec: spec}
	h := sha256.New()
	conf := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		MaxVersion:   tls.VersionTLS13,
		NextProtos:   alpnOffer(t.ALPN),
		CipherSuites: defaultCiphers,
	}
	if v, ok := config.TLSVersion(t.MinVersion); ok {
		conf.MinVersion = v
	}
	if v, ok := config.TLSVersion(t.MaxVersion); ok {
		conf.MaxVersion = v
	}
	if len(t.Ciphers) > 0 {
		conf.CipherSuites = nil
		for _, name := range t.Ciphers {
			if id, tls13, _ := config.CipherSuite(name); !tls13 {
				conf.CipherSuites = append(conf.CipherSuites, id)
			}
		}
	}
	for _, c := range t.Certificates {
		certPEM, keyPEM := c.CertPEM, c.KeyPEM
		if c.CertFile != "" {
			st.files = true
			var err error
			if certPEM, err = userfile.Read(c.CertFile); err != nil {
				return nil, fmt.Errorf("%s: cannot read certificate file %s: %w (mount the TLS secret there, or fix certFile)", c.Pos, c.CertFile, errors.Unwrap(err))
			}
			if keyPEM, err = userfile.Read(c.KeyFile); err != nil {
				return nil, fmt.Errorf("%s: cannot read key file %s: %w (mount the TLS secret there, or fix keyFile)", c.Pos, c.KeyFile, errors.Unwrap(err))
			}
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		switch {
		case err != nil && c.CertFile != "":
			return nil, fmt.Errorf("%s: certificate %s with key %s cannot be used: %w", c.Pos, c.CertFile, c.KeyFile, err)
		case err != nil:
			// Never the key's text: only what is wrong with it.
			return nil, fmt.Errorf("%s: the certificate and key written inline for listener %q cannot be used: %w", c.Pos, spec.Name, err)
		}
		conf.Certificates = append(conf.Certificates, cert)
		h.Write(certPEM)
		h.Write(keyPEM)
	}
	caPEM := t.ClientCAPEM
	if t.ClientCAFile != "" {
		st.files = true
		var err error
		if caPEM, err = userfile.Read(t.ClientCAFile); err != nil {
			return nil, fmt.Errorf("%s: listener %q: cannot read clientCAFile %s: %w", spec.Pos, spec.Name, t.ClientCAFile, errors.Unwrap(err))
		}
	}
	if len(caPEM) > 0 {
		pool, err := certPool(caPEM)
		if err != nil {
			where := "the client CA written inline"
			if t.ClientCAFile != "" {
				where = "clientCAFile " + t.ClientCAFile
			}
			return nil, fmt.Errorf("%s: listener %q: %s %w", spec.Pos, spec.Name, where, err)
		}
		conf.ClientCAs = pool
		// Without requireClientCertificate a client may send none; one it
		// sends must verify.
		conf.ClientAuth = tls.VerifyClientCertIfGiven
		if t.RequireClientCert {
			conf.ClientAuth = tls.RequireAndVerifyClientCert
		}
		h.Write(caPEM)
	}
	if len(t.SessionTicketKeys) > 0 {
		st.files = true
		keys, err := loadTicketKeys(spec, h)
		if err != nil {
			return nil, err
		}
		// crypto/tls prefers the keys of the config GetConfigForClient
		// returns to the address's own (ticketConfig), and does not rotate
		// them.
		conf.SetSessionTicketKeys(keys)
	}
	st.conf = conf
	h.Sum(st.digest[:0])
	return st, nil
}

// minTicketKeyFile is the fewest bytes a session ticket key file may hold:
// as many as the key made from it, so that it can hold as much entropy.
const minTicketKeyFile = 32

// loadTicketKeys reads a listener's session ticket key files, in order,
// and writes what they hold to digest. A key is the SHA-256 of its file's
// every byte, so that nginx's files (48 or 80 random bytes, from
// `openssl rand 80`) serve as they are, and a file of any other length
// counts in full. Errors name the file and its place in the config, never
// what it holds.
func loadTicketKeys(spec *config.Listener, digest io.Writer) ([][32]byte, error) {
	const fix = "write a new key with `openssl rand 80 > FILE`, the same file on every replica"
	keys := make([][32]byte, 0, len(spec.TLS.SessionTicketKeys))
	for _, k := range spec.TLS.SessionTicketKeys {
		data, err := userfile.Read(k.Path)
		switch {
		case err != nil:
			return nil, fmt.Errorf("%s: listener %q: cannot read session ticket key file %s: %w (mount the Secret that holds the keys there, or fix tls.sessionTicketKeys)",
				k.Pos, spec.Name, k.Path, errors.Unwrap(err))
		case len(data) == 0:
			return nil, fmt.Errorf("%s: listener %q: session ticket key file %s is empty; %s", k.Pos, spec.Name, k.Path, fix)
		case len(data) < minTicketKeyFile:
			return nil, fmt.Errorf("%s: listener %q: session ticket key file %s holds %d bytes, fewer than the %d a key needs; %s",
				k.Pos, spec.Name, k.Path, len(data), minTicketKeyFile, fix)
		}
		key := sha256.Sum256(data)
		for j, prev := range keys {
			if prev == key {
				first := spec.TLS.SessionTicketKeys[j]
				return nil, fmt.Errorf("%s: listener %q: session ticket key file %s holds the same key as %s (at %s); each file must hold its own key: %s",
					k.Pos, spec.Name, k.Path, first.Path, first.Pos, fix)
			}
		}
		keys = append(keys, key)
		_, _ = digest.Write(data)
	}
	return keys, nil
}

// certPool reads PEM certificates; anything else in the bundle is an error.
func certPool(bundle []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for rest := bundle; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("holds a PEM %q block; only CERTIFICATE blocks belong there", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("holds a certificate that does not parse: %v", err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, errors.New("holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
	}
	return pool, nil
}

// alpnOffer is what a listener offers in ALPN: the protocols configured, in
// order, but h2, which flexgate does not serve; http/1.1 when none are.
func alpnOffer(alpn []string) []string {
	if len(alpn) == 0 {
		return []string{"http/1.1"}
	}
	out := make([]string, 0, len(alpn))
	for _, p := range alpn {
		if p != "h2" {
			out = append(out, p)
		}
	}
	return out
}

// watch re-reads the certificate, client CA and session ticket key files
// every interval until stop or done closes, so that a rotated certificate
// (cert-manager, a renewed Secret) or ticket key serves within seconds
// without a restart. Polling the content, not watching events, also sees
// the symlink swap of a Kubernetes Secret volume. Files that fail to load
// are logged and what is in use keeps serving. TLS written inline changes
// only with a reload.
func (cs *certStore) watch(stop, done <-chan struct{}, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-stop:
			return
		case <-done:
			return
		case <-t.C:
		}
		st := cs.state.Load()
		if !st.files {
			continue
		}
		next, err := loadTLS(st.spec)
		if err != nil {
			if err.Error() != lastErr {
				cs.log.Error("certificate reload failed; the current certificate keeps serving", "error", err.Error())
				lastErr = err.Error()
			}
			continue
		}
		lastErr = ""
		cs.mu.Lock()
		// A reload may have stored other settings meanwhile.
		if cs.state.Load() == st && next.digest != st.digest {
			cs.state.Store(next)
			cs.log.Info("certificates reloaded", "files", len(st.spec.TLS.Certificates),
				"sessionTicketKeys", len(st.spec.TLS.SessionTicketKeys))
		}
		cs.mu.Unlock()
	}
}

// CheckCertificates loads every certificate, client CA and session ticket
// key of cfg's listeners, as run would, and reports each that cannot be
// used.
func CheckCertificates(cfg *config.Config) error {
	var errs []error
	for i := range cfg.Listeners {
		if s := &cfg.Listeners[i]; s.Protocol == "HTTPS" || s.TLS != nil {
			if _, err := loadTLS(s); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Check does what New does to a config short of opening sockets and
// provisioning policies: it builds the route trie and loads every upstream
// CA file and, with certFiles, every listener certificate and client CA,
// reporting each problem. Without certFiles it still checks the listeners'
// TLS settings, which hold no secret.
func Check(cfg *config.Config, certFiles bool) error {
	var errs []error
	if certFiles {
		if err := CheckCertificates(cfg); err != nil {
			errs = append(errs, err)
		}
	} else {
		for i := range cfg.Listeners {
			if s := &cfg.Listeners[i]; s.TLS != nil {
				if err := s.TLS.Validate(); err != nil {
					errs = append(errs, fmt.Errorf("%s: listener %q: %w", s.Pos, s.Name, err))
				}
			}
		}
	}
	if _, err := buildRouter(cfg); err != nil {
		errs = append(errs, err)
	}
	for i := range cfg.Routes {
		if err := checkUpstream(&cfg.Routes[i].Upstream); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// openConnGauge registers flexgate_open_connections{listener=name}: the
// connections open on every listener of that name, the one serving and
// those draining after a reload. The caller holds lnMu, so that a drain
// that ends meanwhile does not unregister the gauge of a name in use.
func (g *Gateway) openConnGauge(name string) {
	g.metrics.GetOrCreateGauge(openConnsMetric(name), func() float64 {
		g.lnMu.Lock()
		defer g.lnMu.Unlock()
		var n int32
		count := func(l *listener) {
			if l.name == name {
				n += max(l.srv.GetOpenConnectionsCount(), 0)
			}
		}
		for _, l := range g.listeners {
			count(l)
			if l.name == name && l.sock != nil {
				// Parked connections belong to the socket, whichever
				// listener serves it next.
				n += l.sock.parked.Load()
			}
		}
		for l := range g.leaving {
			count(l)
		}
		return float64(n)
	})
	g.metrics.GetOrCreateGauge(parkedConnsMetric(name), func() float64 {
		g.lnMu.Lock()
		defer g.lnMu.Unlock()
		var n int32
		for _, l := range g.listeners {
			if l.name == name && l.sock != nil {
				n += l.sock.parked.Load()
			}
		}
		return float64(n)
	})
}

// parkedConnsMetric is flexgate_parked_connections{listener=name}: the
// idle keep-alive connections of the listener's socket that hold no
// goroutine and no buffer (park.go); they are counted in open connections
// too.
func parkedConnsMetric(name string) string {
	return `flexgate_parked_connections{listener=` + metriclabel.Quote(name) + `}`
}

func openConnsMetric(name string) string {
	return `flexgate_open_connections{listener=` + metriclabel.Quote(name) + `}`
}

var (
	_ net.Listener = (*inbox)(nil)
	_ net.Listener = (*patientListener)(nil)
)
