package main

import (
	"encoding/json"
	"log/slog"
	"net"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/config"
)

// quickStart starts the built-in echo upstream on loopback and returns a
// config that routes /api/* to it, so that a fresh machine answers
// `curl localhost:8080/api/v1/hello` with nothing else installed.
func quickStart(logger *slog.Logger) (*config.Config, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	srv := &fasthttp.Server{Handler: echo, NoDefaultServerHeader: true}
	go func() { _ = srv.Serve(ln) }()
	addr := ln.Addr().String()
	logger.Info("no config given: serving the built-in quick-start, /api/* answered by a built-in echo upstream",
		"echo", addr)
	cfg := &config.Config{
		Name: "quick-start",
		Routes: []config.Route{{
			ID:    "quick-start",
			Paths: []string{"/api/*"},
			Upstream: config.Upstream{
				Targets:        []config.Target{{Scheme: "http", Host: addr, Weight: 1}},
				ConnectTimeout: config.DefaultConnectTimeout, ResponseTimeout: config.DefaultResponseTimeout,
				IdleTimeout: config.DefaultIdleTimeout, MaxConns: config.DefaultMaxConns,
			},
			Pos: config.Pos{File: "(built-in quick-start)"},
		}},
		Limits:  config.DefaultLimits,
		Sources: []config.Source{{Path: "(built-in quick-start)", Summary: "built-in quick-start: /api/* → echo upstream"}},
		Hash:    "built-in-quick-start",
	}
	return cfg, func() { _ = srv.Shutdown() }, nil
}

// echo answers with what it received, as JSON.
func echo(ctx *fasthttp.RequestCtx) {
	headers := map[string]string{}
	for k, v := range ctx.Request.Header.All() {
		headers[string(k)] = string(v)
	}
	body, _ := json.MarshalIndent(map[string]any{
		"message": "hello from the flexgate quick-start echo upstream",
		"method":  string(ctx.Method()),
		"path":    string(ctx.Path()),
		"query":   string(ctx.QueryArgs().QueryString()),
		"headers": headers,
	}, "", "  ")
	ctx.SetContentType("application/json")
	ctx.SetBody(append(body, '\n'))
}
