package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"time"
)

func execCommand(ctx context.Context, bin string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, bin, args...)
}

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
	// Open is how many idle keep-alive connections were held.
	Open int
	// RSSBeforeKiB and RSSIdleKiB are the server's resident memory before
	// the connections were opened and with them open.
	RSSBeforeKiB, RSSIdleKiB int64
	// Load is wrk's run alongside the idle connections.
	Load Result
	// AliveAfter counts, out of a sample of the idle connections, those
	// still answering once wrk was done.
	AliveAfter, Sampled int
}

// idleRun opens n keep-alive connections to t, makes one request on each
// so that the server holds a real HTTP connection, measures the server's
// memory, runs wrk alongside them, and closes them.
func idleRun(ctx context.Context, t *Target, n int, script string, dur time.Duration) (IdleResult, error) {
	ir := IdleResult{Target: t.Name}
	before, err := treeUsage(t.proc.PID())
	if err != nil {
		return ir, err
	}
	ir.RSSBeforeKiB = before.RSSKiB
	conns := make([]*idleConn, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	const dialers = 32
	for w := 0; w < dialers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n && ctx.Err() == nil; i += dialers {
				c, err := dialIdle(t.addr)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("connection %d of %d: %w", i+1, n, err)
					}
					mu.Unlock()
					return
				}
				conns[i] = c
			}
		}(w)
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	for _, c := range conns {
		if c != nil {
			ir.Open++
		}
	}
	if firstErr != nil {
		return ir, fmt.Errorf("opened %d of %d idle connections to %s: %w", ir.Open, n, t.Name, firstErr)
	}
	idle, err := treeUsage(t.proc.PID())
	if err != nil {
		return ir, err
	}
	ir.RSSIdleKiB = idle.RSSKiB
	ir.Load, err = runWrk(ctx, script, Load{URL: t.URL(pathFor("small")), Headers: benchHeaders, Conns: 64, Duration: dur})
	if err != nil {
		return ir, err
	}
	step := max(1, n/100)
	for i := 0; i < n; i += step {
		ir.Sampled++
		if conns[i].roundTrip() == nil {
			ir.AliveAfter++
		}
	}
	return ir, nil
}

type idleConn struct {
	net.Conn
	r *bufio.Reader
}

func dialIdle(addr string) (*idleConn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	ic := &idleConn{Conn: c, r: bufio.NewReader(c)}
	if err := ic.roundTrip(); err != nil {
		c.Close()
		return nil, err
	}
	return ic, nil
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
