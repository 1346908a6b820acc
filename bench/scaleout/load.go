package main

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// clientID is the X-Client of the i-th simulated client.
func clientID(i int) string { return "client-" + strconv.Itoa(i+1) }

// accuracyLoad is one run of the Go load generator: closed-loop workers
// spread evenly over the gateways, each cycling through the clients so
// that every client's requests reach every gateway.
type accuracyLoad struct {
	gateways []string // host:port
	path     string
	workers  int
	clients  int
	period   time.Duration
	windows  int
	// maxWarmup bounds the warm-up: the windows start once every client
	// has been refused through every gateway (its bucket, or each
	// replica's, is empty: the initial burst is spent, and the windows
	// see only the refill, limit per period), or after maxWarmup if that
	// never happens (the load does not exceed the limit).
	maxWarmup time.Duration
}

// event is one response: when (the round trip's midpoint, since the run
// began), how long it took, whose it was and what it said.
type event struct {
	at      time.Duration
	latency time.Duration
	client  int32
	status  int32
}

// loadResult is what one accuracyLoad measured.
type loadResult struct {
	tally *tally
	// Warmup is how long the warm-up took; Drained says whether every
	// client had been refused through every gateway by then.
	Warmup  time.Duration
	Drained bool
	// Requests counts every response, warm-up and tail included, the
	// denominator of Redis calls per request.
	Requests int64
	Errors   int64
	// FirstError is the first transport error, if any.
	FirstError string
	// Latency of admitted and refused requests in the measured windows.
	Admitted, Refused Latency
}

// run sends requests until the last window has passed. Workers record
// events of their own; the windows are counted afterwards, once the
// warm-up's end is known.
func (l accuracyLoad) run(ctx context.Context) loadResult {
	measured := time.Duration(l.windows) * l.period
	var start, end atomic.Int64 // since begin
	start.Store(int64(l.maxWarmup))
	end.Store(int64(l.maxWarmup + measured))
	drained := make([]atomic.Bool, len(l.gateways)*l.clients)
	var nDrained atomic.Int64

	clients := make([]*fasthttp.HostClient, len(l.gateways))
	perGateway := (l.workers + len(l.gateways) - 1) / len(l.gateways)
	for i, g := range l.gateways {
		clients[i] = &fasthttp.HostClient{Addr: g, MaxConns: perGateway, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
	}
	type workerResult struct {
		events   []event
		errors   int64
		firstErr string
	}
	results := make([]workerResult, l.workers)
	begin := time.Now()
	var wg sync.WaitGroup
	for w := range l.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[w]
			g := w % len(clients)
			hc := clients[g]
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI("http://" + hc.Addr + l.path)
			ids := make([]string, l.clients)
			for c := range ids {
				ids[c] = clientID(c)
			}
			for i := w; ctx.Err() == nil; i++ {
				t0 := time.Since(begin)
				if int64(t0) >= end.Load() {
					return
				}
				c := i % l.clients
				req.Header.Set("X-Client", ids[c])
				err := hc.Do(req, resp)
				t1 := time.Since(begin)
				if err != nil {
					r.errors++
					if r.firstErr == "" {
						r.firstErr = err.Error()
					}
					// A gateway that is gone must not turn this loop
					// into a spin.
					time.Sleep(10 * time.Millisecond)
					continue
				}
				status := resp.StatusCode()
				r.events = append(r.events, event{at: t0 + (t1-t0)/2, latency: t1 - t0, client: int32(c), status: int32(status)})
				if status == 429 && t1 < l.maxWarmup {
					k := g*l.clients + c
					if !drained[k].Load() && drained[k].CompareAndSwap(false, true) && nDrained.Add(1) == int64(len(drained)) {
						// The last bucket is empty: the windows start now.
						start.Store(int64(t1))
						end.Store(int64(t1 + measured))
					}
				}
			}
		}()
	}
	wg.Wait()
	for _, c := range clients {
		c.CloseIdleConnections()
	}
	res := loadResult{Warmup: time.Duration(start.Load()), Drained: nDrained.Load() == int64(len(drained))}
	res.tally = newTally(begin.Add(res.Warmup), l.period, l.windows, l.clients)
	var adm, ref []time.Duration
	for _, r := range results {
		res.Errors += r.errors
		if res.FirstError == "" && r.firstErr != "" {
			res.FirstError = strings.TrimSpace(r.firstErr)
		}
		for _, e := range r.events {
			res.Requests++
			res.tally.add(begin.Add(e.at), int(e.client), int(e.status))
			if e.at < res.Warmup || e.at >= res.Warmup+measured {
				continue
			}
			switch outcomeOf(int(e.status)) {
			case admitted:
				adm = append(adm, e.latency)
			case refused:
				ref = append(ref, e.latency)
			}
		}
	}
	res.Admitted, res.Refused = summarize(adm), summarize(ref)
	return res
}
