package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/pprofhandler"
)

// The admin server's limits. Its clients are few and ask little: a
// Prometheus scrape holds one keep-alive connection, the kubelet's probes
// open one each and close it, an operator runs curl. The caps keep anyone
// who reaches the port from holding memory or file descriptors that the
// listeners need: the admin server holds at most adminMaxConns descriptors
// (a few tens of KiB each), on top of limits.maxConnections, and is not
// counted against it, so that a flood on either side never refuses the
// other. They are high enough that filling them takes adminMaxConns /
// adminMaxConnsPerClient addresses, which would otherwise fail the
// kubelet's probes.
const (
	// adminMaxConns is the most connections the admin server holds open.
	adminMaxConns = 1024
	// adminMaxConnsPerClient is the most one client address (an IPv6
	// address by its /64) holds open.
	adminMaxConnsPerClient = 64
	// adminMaxHeaderBytes is the largest request head (request line and
	// header fields); a larger one is answered 431. A bearer token for
	// /metrics fits.
	adminMaxHeaderBytes = 8 << 10
	// adminMaxBodyBytes is the largest request body: no admin endpoint
	// reads one. A larger body is answered 413 from its Content-Length,
	// before it is read.
	adminMaxBodyBytes = 4 << 10
	// adminPprofBodyBytes is the largest request body with --pprof, whose
	// /debug/pprof/symbol takes a POSTed list of addresses.
	adminPprofBodyBytes = 64 << 10
	// adminRefusalLogEvery is the most often a refused admin connection is
	// logged; the line counts those refused since the last one.
	adminRefusalLogEvery = 10 * time.Second
)

// newAdminServer serves the probes, the metrics and the config in force.
func (g *Gateway) newAdminServer() *fasthttp.Server {
	body := adminMaxBodyBytes
	if g.opts.Pprof {
		body = adminPprofBodyBytes
	}
	return &fasthttp.Server{
		Handler:               g.adminHandler,
		NoDefaultServerHeader: true,
		ReadTimeout:           g.plan.Load().cfg.Limits.ReadTimeout,
		IdleTimeout:           g.plan.Load().cfg.Limits.IdleTimeout,
		ReadBufferSize:        adminMaxHeaderBytes,
		MaxRequestBodySize:    body,
		ErrorHandler:          adminError,
		CloseOnShutdown:       true,
		Logger:                fasthttpLogger{g},
	}
}

// adminError answers a request the admin server cannot read, saying which
// limit it is over; fasthttp then closes the connection.
func adminError(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.As(err, &small):
		ctx.Error("request header too large: the admin server reads at most "+strconv.Itoa(adminMaxHeaderBytes>>10)+" KiB\n",
			fasthttp.StatusRequestHeaderFieldsTooLarge)
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		ctx.Error("request body too large: no admin endpoint reads a body\n", fasthttp.StatusRequestEntityTooLarge)
	default:
		ctx.Error("malformed request\n", fasthttp.StatusBadRequest)
	}
}

// adminListener admits the admin server's connections under adminMaxConns
// and adminMaxConnsPerClient when they are accepted, before fasthttp gives
// them a goroutine; a connection over a cap is answered 503 and closed at
// once. Safe for concurrent use.
type adminListener struct {
	net.Listener
	g                         *Gateway
	max, per                  int
	refusedAll, refusedClient *metrics.Counter
	// unlogged counts the refusals since the last log line, at lastLog
	// (unix nanoseconds).
	unlogged atomic.Int64
	lastLog  atomic.Int64

	mu      sync.Mutex
	open    int
	clients map[netip.Addr]int // a key leaves when its count drops to zero
}

func newAdminListener(g *Gateway, ln net.Listener, max, perClient int) *adminListener {
	l := &adminListener{Listener: ln, g: g, max: max, per: perClient, clients: map[netip.Addr]int{},
		refusedAll:    g.metrics.NewCounter(`flexgate_admin_connections_refused_total{reason="` + reasonOverloaded + `"}`),
		refusedClient: g.metrics.NewCounter(`flexgate_admin_connections_refused_total{reason="` + reasonClientConnLimit + `"}`),
	}
	g.metrics.NewGauge(`flexgate_admin_open_connections`, func() float64 {
		l.mu.Lock()
		defer l.mu.Unlock()
		return float64(l.open)
	})
	return l
}

func (l *adminListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if key, ok := l.admit(c.RemoteAddr()); ok {
			return &adminConn{Conn: c, l: l, key: key}, nil
		}
		// Answered and closed here, so that a flood holds one descriptor
		// at a time: a fresh socket's send buffer takes the few bytes at
		// once, the deadline is for a peer that gives it no room.
		_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		_, _ = c.Write(adminRefusal)
		_ = c.Close()
	}
}

// admit takes a place for a connection from remote, or counts and logs
// its refusal when a cap is reached.
func (l *adminListener) admit(remote net.Addr) (key netip.Addr, ok bool) {
	_, key, counted := clientKey(remote)
	l.mu.Lock()
	reason := ""
	switch {
	case l.open >= l.max:
		reason = reasonOverloaded
	case counted && l.clients[key] >= l.per:
		reason = reasonClientConnLimit
	default:
		l.open++
		if counted {
			l.clients[key]++
		}
	}
	l.mu.Unlock()
	if reason == "" {
		if !counted {
			key = netip.Addr{}
		}
		return key, true
	}
	l.refused(remote, reason)
	return netip.Addr{}, false
}

func (l *adminListener) release(key netip.Addr) {
	l.mu.Lock()
	l.open--
	if key.IsValid() {
		if n := l.clients[key]; n > 1 {
			l.clients[key] = n - 1
		} else {
			delete(l.clients, key)
		}
	}
	l.mu.Unlock()
}

// refused counts a refusal and logs it, at most once per
// adminRefusalLogEvery.
func (l *adminListener) refused(remote net.Addr, reason string) {
	if reason == reasonOverloaded {
		l.refusedAll.Inc()
	} else {
		l.refusedClient.Inc()
	}
	n := l.unlogged.Add(1)
	now := time.Now().UnixNano()
	last := l.lastLog.Load()
	if now-last < int64(adminRefusalLogEvery) || !l.lastLog.CompareAndSwap(last, now) {
		return
	}
	l.unlogged.Add(-n)
	l.g.log.Warn("admin connections refused: the admin server is at its connection limit",
		"reason", reason, "refused", n, "lastRemote", remote.String(),
		"maxConnections", l.max, "maxConnectionsPerClient", l.per)
}

// adminRefusal is the answer to a connection over an admin cap.
var adminRefusal = func() []byte {
	body := "the admin server is at its connection limit (" + strconv.Itoa(adminMaxConns) + " in all, " +
		strconv.Itoa(adminMaxConnsPerClient) + " per client address)\n"
	return []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}()

// adminConn gives its place back when it closes.
type adminConn struct {
	net.Conn
	l    *adminListener
	key  netip.Addr
	once sync.Once
}

func (c *adminConn) Close() error {
	c.once.Do(func() { c.l.release(c.key) })
	return c.Conn.Close()
}

func (g *Gateway) adminHandler(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case "/healthz":
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("ok\n")
	case "/readyz":
		ctx.SetContentType("text/plain; charset=utf-8")
		switch {
		case g.draining.Load():
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
			ctx.SetBodyString("draining\n")
		case !g.ready.Load() || g.plan.Load() == nil:
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
			ctx.SetBodyString("starting\n")
		default:
			ctx.SetBodyString("ready\n")
		}
	case "/metrics":
		ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
		g.metrics.WritePrometheus(ctx)
		metrics.WriteProcessMetrics(ctx)
	case "/config":
		p := g.plan.Load()
		sources := make([]sourceView, 0, len(p.cfg.Sources))
		for _, s := range p.cfg.Sources {
			sources = append(sources, sourceView{Path: s.Path, Summary: s.Summary})
		}
		body, err := json.MarshalIndent(map[string]any{
			"hash":      p.cfg.Hash,
			"sources":   sources,
			"config":    p.cfg.Redacted(),
			"upstreams": p.upstreamStates(),
		}, "", "  ")
		if err != nil {
			ctx.Error(err.Error(), fasthttp.StatusInternalServerError)
			return
		}
		ctx.SetContentType("application/json")
		ctx.SetBody(append(body, '\n'))
	default:
		if g.opts.Pprof && bytes.HasPrefix(ctx.Path(), []byte("/debug/pprof/")) {
			// Go's profiler, for finding where CPU or memory goes in a
			// running gateway. Only when asked for: the admin port listens
			// on every interface for the probes, and a profile reads memory
			// and a CPU profile costs CPU.
			pprofhandler.PprofHandler(ctx)
			return
		}
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		ctx.SetContentType("text/plain; charset=utf-8")
		if g.opts.Pprof {
			ctx.SetBodyString("not found: the admin server serves /healthz, /readyz, /metrics, /config and /debug/pprof/\n")
		} else {
			ctx.SetBodyString("not found: the admin server serves /healthz, /readyz, /metrics and /config (and /debug/pprof/ with flexgate run --pprof)\n")
		}
	}
}

// sourceView is a config file in /config, whose keys are all camelCase.
type sourceView struct {
	Path    string `json:"path"`
	Summary string `json:"summary"`
}
