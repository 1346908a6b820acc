package proxy

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/config"
	"github.com/flexgate/flexgate/internal/metriclabel"
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

// listener is one socket the gateway serves on.
type listener struct {
	g        *Gateway
	name     string
	address  string
	protocol string
	scheme   string
	port     []byte // the bound port, for X-Forwarded-Port
	srv      *fasthttp.Server
	ln       net.Listener
	certs    *certStore
}

// newListener prepares a listener; maxConns is the gateway's connection
// cap, which its capListener enforces.
func newListener(g *Gateway, spec *config.Listener, limits config.Limits, maxConns int) (*listener, error) {
	l := &listener{g: g, name: spec.Name, address: spec.Address, protocol: spec.Protocol, scheme: "http"}
	if spec.Protocol == "HTTPS" {
		l.scheme = "https"
		if spec.TLS == nil || len(spec.TLS.Certificates) == 0 {
			return nil, fmt.Errorf("%s: listener %q is HTTPS but has no tls.certificates", spec.Pos, spec.Name)
		}
		cs, err := newCertStore(spec.TLS, g.log.With("listener", spec.Name))
		if err != nil {
			return nil, err
		}
		l.certs = cs
	}
	l.srv = &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) { g.serve(ctx, l) },
		// A client waiting for 100 Continue gets it only once the request
		// may proceed; otherwise the final answer, and its body unsent.
		ExpectHandler:         func(ctx *fasthttp.RequestCtx) int { return g.expect(ctx, l) },
		ErrorHandler:          g.serverError,
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		ReadBufferSize:        limits.MaxHeaderBytes,
		WriteBufferSize:       16 << 10,
		ReadTimeout:           limits.ReadTimeout,
		WriteTimeout:          limits.WriteTimeout,
		IdleTimeout:           limits.IdleTimeout,
		// capListener enforces the cap with the gateway's own JSON 503.
		// fasthttp takes a worker back only after the connection has closed
		// and the client may have connected again, so its own limit must
		// leave room for the workers in that gap (at twice the cap, two
		// connections in a row could be refused when the cap is 1); this
		// is only a backstop.
		Concurrency:        2*maxConns + 1024,
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
		SecureErrorLogMessage:        true,
		Logger:                       fasthttpLogger{g},
	}
	g.metrics.NewGauge(`flexgate_open_connections{listener=`+metriclabel.Quote(spec.Name)+`}`, func() float64 {
		return float64(l.srv.GetOpenConnectionsCount())
	})
	return l, nil
}

func (l *listener) listen() error {
	listen := func(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
	if l.g.opts.listen != nil {
		listen = l.g.opts.listen
	}
	ln, err := listen(l.address)
	if err != nil {
		return fmt.Errorf("listener %q: cannot listen on %s: %w", l.name, l.address, err)
	}
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		l.port = strconv.AppendInt(nil, int64(a.Port), 10)
	}
	ln = &capListener{Listener: ln, lim: l.g.conns, http: l.certs == nil}
	if l.certs != nil {
		ln = &tlsListener{Listener: ln, config: l.certs.tlsConfig()}
	}
	l.ln = ln
	return nil
}

func (l *listener) serve() {
	l.g.wg.Add(1)
	go func() {
		defer l.g.wg.Done()
		if err := l.srv.Serve(l.ln); err != nil {
			l.g.log.Error("listener stopped", "listener", l.name, "error", err.Error())
		}
	}()
	if l.certs != nil {
		l.g.wg.Add(1)
		go func() {
			defer l.g.wg.Done()
			l.certs.watch(l.g.stop, l.g.opts.CertPollInterval)
		}()
	}
}

// prepareCerts loads the certificates the new config names for an HTTPS
// listener and returns the step that starts serving them, so that a reload
// commits certificates only once all of them loaded.
func (l *listener) prepareCerts(cfg *config.Config) (commit func(), err error) {
	if l.certs == nil {
		return func() {}, nil
	}
	for i := range cfg.Listeners {
		if s := &cfg.Listeners[i]; s.Name == l.name && s.TLS != nil {
			files := append([]config.Certificate(nil), s.TLS.Certificates...)
			certs, digest, err := loadCerts(files)
			if err != nil {
				return nil, err
			}
			return func() { l.certs.store(files, certs, digest) }, nil
		}
	}
	return func() {}, nil
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

// certStore serves a listener's certificates and re-reads them when their
// files change. Safe for concurrent use.
type certStore struct {
	log interface {
		Error(string, ...any)
		Info(string, ...any)
	}
	files   atomic.Pointer[[]config.Certificate]
	certs   atomic.Pointer[[]tls.Certificate]
	mu      sync.Mutex // guards digest
	digest  [sha256.Size]byte
	minVers uint16
}

func newCertStore(spec *config.TLS, logger interface {
	Error(string, ...any)
	Info(string, ...any)
}) (*certStore, error) {
	cs := &certStore{log: logger, minVers: tls.VersionTLS12}
	if spec.MinVersion == "1.3" {
		cs.minVers = tls.VersionTLS13
	}
	if err := cs.setFiles(spec); err != nil {
		return nil, err
	}
	return cs, nil
}

// setFiles loads the certificates of spec and serves them from now on.
func (cs *certStore) setFiles(spec *config.TLS) error {
	files := append([]config.Certificate(nil), spec.Certificates...)
	certs, digest, err := loadCerts(files)
	if err != nil {
		return err
	}
	cs.store(files, certs, digest)
	return nil
}

func (cs *certStore) store(files []config.Certificate, certs []tls.Certificate, digest [sha256.Size]byte) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.files.Store(&files)
	cs.certs.Store(&certs)
	cs.digest = digest
}

// CheckCertificates loads every certificate of cfg's listeners, as run
// would, and reports the first file that cannot be used.
func CheckCertificates(cfg *config.Config) error {
	var errs []error
	for i := range cfg.Listeners {
		if s := cfg.Listeners[i].TLS; s != nil {
			if _, _, err := loadCerts(s.Certificates); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func loadCerts(files []config.Certificate) ([]tls.Certificate, [sha256.Size]byte, error) {
	h := sha256.New()
	var certs []tls.Certificate
	for _, f := range files {
		certPEM, err := os.ReadFile(f.CertFile)
		if err != nil {
			return nil, [32]byte{}, fmt.Errorf("%s: cannot read certificate file %s: %w (mount the TLS secret there, or fix certFile)", f.Pos, f.CertFile, errors.Unwrap(err))
		}
		keyPEM, err := os.ReadFile(f.KeyFile)
		if err != nil {
			return nil, [32]byte{}, fmt.Errorf("%s: cannot read key file %s: %w (mount the TLS secret there, or fix keyFile)", f.Pos, f.KeyFile, errors.Unwrap(err))
		}
		c, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, [32]byte{}, fmt.Errorf("%s: certificate %s with key %s cannot be used: %w", f.Pos, f.CertFile, f.KeyFile, err)
		}
		certs = append(certs, c)
		h.Write(certPEM)
		h.Write(keyPEM)
	}
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return certs, d, nil
}

func (cs *certStore) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion: cs.minVers,
		NextProtos: []string{"http/1.1"},
		// TLS 1.2 suites: forward secrecy and AEAD only. TLS 1.3 suites are
		// not configurable and all are modern.
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305,
		},
		GetCertificate: cs.getCertificate,
	}
}

func (cs *certStore) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	certs := *cs.certs.Load()
	if len(certs) > 1 {
		for i := range certs {
			if hello.SupportsCertificate(&certs[i]) == nil {
				return &certs[i], nil
			}
		}
	}
	return &certs[0], nil
}

// watch re-reads the certificate files every interval until stop closes,
// so that a rotated certificate (cert-manager, a renewed Secret) serves
// within seconds without a restart. Polling the content, not watching events, also sees the symlink
// swap of a Kubernetes Secret volume. A pair that fails to load is logged
// and the certificates in use keep serving.
func (cs *certStore) watch(stop <-chan struct{}, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		filesPtr := cs.files.Load()
		files := *filesPtr
		certs, digest, err := loadCerts(files)
		if err != nil {
			if err.Error() != lastErr {
				cs.log.Error("certificate reload failed; the current certificate keeps serving", "error", err.Error())
				lastErr = err.Error()
			}
			continue
		}
		lastErr = ""
		cs.mu.Lock()
		// A reload may have pointed the store at other files meanwhile.
		if cs.files.Load() == filesPtr && !bytes.Equal(digest[:], cs.digest[:]) {
			cs.certs.Store(&certs)
			cs.digest = digest
			cs.log.Info("certificates reloaded", "files", len(files))
		}
		cs.mu.Unlock()
	}
}

// Check does what New does to a config short of opening sockets and
// provisioning policies: it builds the route trie and loads every upstream
// CA file and, with certFiles, every listener certificate, reporting each
// problem.
func Check(cfg *config.Config, certFiles bool) error {
	var errs []error
	if certFiles {
		if err := CheckCertificates(cfg); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := buildRouter(cfg); err != nil {
		errs = append(errs, err)
	}
	for i := range cfg.Routes {
		if _, err := newUpstream(&cfg.Routes[i].Upstream, upstreamOptions{}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
