package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/flexgate/flexgate/bench/wrk"
)

// checkTarget sends the benchmark's request once and checks the answer, so
// that a misconfigured target is skipped instead of measured answering
// errors fast.
func checkTarget(ctx context.Context, t *Target) error {
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
	}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, "GET", t.URL(pathFor("small")), nil)
	if err != nil {
		return err
	}
	for _, h := range benchHeaders {
		k, v, _ := strings.Cut(h, ":")
		req.Header[k] = []string{strings.TrimSpace(v)}
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s answered %d, want 200: %s %s", req.URL, resp.StatusCode, resp.Header, body)
	}
	if t.Chain && resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		return fmt.Errorf("GET %s lacks the response header the chain sets (X-Content-Type-Options: nosniff)", req.URL)
	}
	return nil
}

// IdleResult is the connection-scale run of one target.
type IdleResult struct {
	Target string
	// Asked is how many idle connections the run tried to open; Open how
	// many were held (fewer when the server refused more or opening ran out
	// of time).
	Asked, Open int
	// OpenSeconds is how long opening took.
	OpenSeconds float64
	// RSSBeforeKiB and RSSIdleKiB are the server's resident memory before
	// the connections were opened and as soon as the last one was;
	// RSSSettledKiB once they had been idle for idleSettle.
	RSSBeforeKiB, RSSIdleKiB, RSSSettledKiB int64
	// Load is wrk's run alongside the idle connections.
	Load wrk.Result
	// AliveAfter counts, out of a sample of the idle connections, those
	// still answering once wrk was done.
	AliveAfter, Sampled int
}

// idleSettle is how long the idle connections wait, all open, before the
// server's memory is read a second time: the connections opened last are
// still fresh from their request when the first reading is taken, and a
// server may free what serving them took only once they have been quiet a
// while (flexgate parks a connection after 1 s and returns the memory a
// wave of them used after it, within seconds).
const idleSettle = 10 * time.Second

// idleRun opens n keep-alive connections to t, makes one request on each
// so that the server holds a real HTTP connection, measures the server's
// memory, runs wrk alongside them, and closes them. Opening stops at the
// first failure or after p.idleOpen; the result then holds what was opened,
// with the error.
func idleRun(ctx context.Context, t *Target, n int, script string, p plan) (IdleResult, error) {
	ir := IdleResult{Target: t.Name, Asked: n}
	before, err := treeUsage(t.proc.PID())
	if err != nil {
		return ir, err
	}
	ir.RSSBeforeKiB = before.RSSKiB
	openCtx, cancel := context.WithTimeout(ctx, p.idleOpen)
	defer cancel()
	started := time.Now()
	conns := make([]*idleConn, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	// Each connection waits for a round trip: many at once keep the
	// server's accept loop, not the harness, the limit.
	const dialers = 128
	for w := 0; w < dialers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n && openCtx.Err() == nil; i += dialers {
				c, err := dialIdle(openCtx, idleSource(i), t.addr)
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() && openCtx.Err() == nil {
					// A busy machine drops a SYN now and then; a full
					// server drops them all, and fails the second try too.
					c, err = dialIdle(openCtx, idleSource(i), t.addr)
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil && openCtx.Err() == nil {
						firstErr = fmt.Errorf("connection %d of %d: %w", i+1, n, err)
					}
					mu.Unlock()
					cancel() // the server is full: measure what it holds
					return
				}
				conns[i] = c
			}
		}(w)
	}
	wg.Wait()
	ir.OpenSeconds = time.Since(started).Seconds()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.closeNow()
			}
		}
	}()
	var held []*idleConn
	for _, c := range conns {
		if c != nil {
			held = append(held, c)
		}
	}
	ir.Open = len(held)
	var openErr error
	switch {
	case ctx.Err() != nil:
		return ir, ctx.Err()
	case firstErr != nil:
		openErr = fmt.Errorf("held %d of %d idle connections: %w", ir.Open, n, firstErr)
	case ir.Open < n:
		openErr = fmt.Errorf("held %d of %d idle connections: opening took longer than %s", ir.Open, n, p.idleOpen)
	}
	if ir.Open == 0 {
		return ir, openErr
	}
	idle, err := treeUsage(t.proc.PID())
	if err != nil {
		return ir, err
	}
	ir.RSSIdleKiB = idle.RSSKiB
	select {
	case <-ctx.Done():
		return ir, ctx.Err()
	case <-time.After(idleSettle):
	}
	settled, err := treeUsage(t.proc.PID())
	if err != nil {
		return ir, err
	}
	ir.RSSSettledKiB = settled.RSSKiB
	ir.Load, err = runWrk(ctx, script, wrk.Load{URL: t.URL(pathFor("small")), Headers: benchHeaders, Conns: 64, Duration: p.idle})
	if err != nil {
		return ir, err
	}
	step := max(1, len(held)/100)
	for i := 0; i < len(held); i += step {
		ir.Sampled++
		if held[i].roundTrip() == nil {
			ir.AliveAfter++
		}
	}
	return ir, openErr
}

// idleSourcePer is how many idle connections share one source address:
// loopback offers about 28,000 ephemeral ports per source address, so
// 100,000 connections come from 127.0.0.2, .3, … (all of 127/8 is local).
const idleSourcePer = 20000

// idleSource is the local address of idle connection i.
func idleSource(i int) *net.TCPAddr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i/idleSourcePer))}
}

type idleConn struct {
	net.Conn
	r *bufio.Reader
}

func dialIdle(ctx context.Context, local *net.TCPAddr, addr string) (*idleConn, error) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: local}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	// A small read buffer: the harness holds 100,000 of these.
	ic := &idleConn{Conn: c, r: bufio.NewReaderSize(c, 512)}
	if err := ic.roundTrip(); err != nil {
		c.Close()
		return nil, err
	}
	return ic, nil
}

// closeNow closes with RST, leaving no TIME_WAIT to hold the source port.
func (c *idleConn) closeNow() {
	if tc, ok := c.Conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

// roundTrip sends one small GET and reads the whole response.
func (c *idleConn) roundTrip() error {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, "GET "+pathFor("small")+benchQuery+" HTTP/1.1\r\nHost: bench\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return err
}
