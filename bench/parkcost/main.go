// Command parkcost measures the CPU a flexgate process spends per request
// when each of its client connections sends a request, waits, and sends
// again: with a wait shorter than the park delay the connections stay in
// fasthttp's serve loop, with a longer one every request wakes a parked
// connection. It runs each binary given with each wait, alternated, three
// rounds, 1,000 connections for 8 s each:
//
//	go run ./bench/parkcost -park 1s ./old ./new
//
// Everything listens on 127.0.0.1 port 0; each gateway started is killed
// by its PID at the end of its run.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

func cpu(pid int) float64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.Atoi(f[11])
	s, _ := strconv.Atoi(f[12])
	return float64(u+s) / 100
}

func main() {
	up, _ := net.Listen("tcp4", "127.0.0.1:0")
	go (&fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString(`{"ok":true}`) }}).Serve(up)
	park := flag.Duration("park", time.Second, "the gateways' park delay: the waits are a third of it and one and a half times it")
	flag.Parse()
	dir, err := os.MkdirTemp("", "parkcost")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	conf := filepath.Join(dir, "gateway.yaml")
	_ = os.WriteFile(conf, []byte(`apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata: {name: r}
spec:
  limits: {maxConnectionsPerClient: 0}
  routes:
    - id: p
      path: ["/*"]
      upstream: {url: "http://`+up.Addr().String()+`"}
`), 0o644)
	for round := 0; round < 3; round++ {
		for _, bin := range flag.Args() {
			for _, gap := range []time.Duration{*park / 3, *park * 3 / 2} {
				run(bin, conf, gap)
			}
		}
	}
}

func run(bin, conf string, gap time.Duration) {
	l, _ := net.Listen("tcp4", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	al, _ := net.Listen("tcp4", "127.0.0.1:0")
	admin := al.Addr().String()
	al.Close()
	cmd := exec.Command(bin, "run", "--config", conf, "--listen", addr, "--admin-addr", admin, "--log-level", "warn", "--drain-delay", "0s")
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	for i := 0; i < 100; i++ {
		if r, err := http.Get("http://" + admin + "/readyz"); err == nil && r.StatusCode == 200 {
			r.Body.Close()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	const conns = 1000
	var n atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	c0 := cpu(cmd.Process.Pid)
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return
			}
			defer c.Close()
			br := bufio.NewReader(c)
			for {
				io.WriteString(c, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				n.Add(1)
				select {
				case <-stop:
					return
				case <-time.After(gap):
				}
			}
		}()
	}
	time.Sleep(8*time.Second + 2*gap)
	close(stop)
	wg.Wait()
	c1 := cpu(cmd.Process.Pid)
	fmt.Printf("%-22s wait %-6s requests %6d  CPU µs/request %.1f\n", bin, gap, n.Load(), (c1-c0)/float64(n.Load())*1e6)
}
