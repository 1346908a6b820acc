package proxy

import (
	"bytes"
	"encoding/json"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/pprofhandler"
)

// newAdminServer serves the probes, the metrics and the config in force.
func (g *Gateway) newAdminServer() *fasthttp.Server {
	return &fasthttp.Server{
		Handler:               g.adminHandler,
		NoDefaultServerHeader: true,
		ReadTimeout:           g.plan.Load().cfg.Limits.ReadTimeout,
		IdleTimeout:           g.plan.Load().cfg.Limits.IdleTimeout,
		CloseOnShutdown:       true,
		Logger:                fasthttpLogger{g},
	}
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
