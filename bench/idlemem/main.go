// Command idlemem measures what an idle keep-alive connection costs a
// flexgate process: it starts each binary given (side by side, rounds
// alternating A B A B, so that a busy machine affects them alike) as a
// passthrough gateway in front of an in-process origin, opens -n
// connections that each make one request and then stay open, and reports
// per connection the growth of the gateway's resident memory (VmRSS), of
// its Go heap in use and of its goroutine stacks (after a forced GC, from
// /debug/pprof/heap).
//
//	go build -o ./old ./cmd/flexgate   # on the old tree
//	go build -o ./new ./cmd/flexgate
//	go run ./bench/idlemem -n 10000 -rounds 3 ./old ./new
//
// The client side holds -n sockets and each gateway -n more: raise the file
// limit (ulimit -n) above both. Everything listens on 127.0.0.1 port 0 and
// every process started is stopped by its PID at the end.
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/bench/benchtls"
	"github.com/flexgate/flexgate/bench/procs"
)

func main() {
	n := flag.Int("n", 10000, "idle connections per gateway")
	rounds := flag.Int("rounds", 3, "rounds per binary; the report shows each and the median")
	header := flag.Int("header", 0, "bytes of an extra X-Pad header on the one request each connection makes")
	wait := flag.Duration("wait", 4*time.Second, "how long the connections idle before the figures are taken: more than the gateway's park delay (1 s)")
	useTLS := flag.Bool("tls", false, "an HTTPS listener (a fresh self-signed certificate); the clients speak TLS 1.3")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: idlemem [-n N] [-rounds R] [-header B] flexgate-binary...")
		flag.PrintDefaults()
	}
	flag.Parse()
	bins := flag.Args()
	if len(bins) == 0 {
		flag.Usage()
		os.Exit(2)
	}
	raiseFileLimit(uint64(*n) + 1024)

	up, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	body := []byte(`{"id":"PRD-42","name":"widget","price":9.99,"stock":12,"tags":["a","b"],"updated":"2026-01-01T00:00:00Z"}`)
	go (&fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBody(body)
	}, Concurrency: 1 << 20}).Serve(up)

	dir, err := os.MkdirTemp("", "idlemem")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	var certFile, keyFile string
	if *useTLS {
		if certFile, keyFile, err = benchtls.WriteSelfSigned(dir); err != nil {
			fail(err)
		}
	}
	// config writes the gateway's config for a listener on addr.
	config := func(addr string) (string, error) {
		listeners := ""
		if *useTLS {
			_, port, _ := net.SplitHostPort(addr)
			listeners = `
  listeners:
    - name: https
      address: 127.0.0.1
      port: ` + port + `
      protocol: HTTPS
      tls:
        mode: TERMINATE
        certificates:
          - certFile: ` + certFile + `
            keyFile: ` + keyFile
		}
		conf := filepath.Join(dir, "gateway.yaml")
		return conf, os.WriteFile(conf, []byte(`apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata:
  name: idlemem
spec:
  limits:
    maxConnections: `+strconv.Itoa(*n+1000)+`
    maxConnectionsPerClient: 0`+listeners+`
  routes:
    - id: passthrough
      path: ["/*"]
      upstream:
        url: "http://`+up.Addr().String()+`"
`), 0o644)
	}

	results := make(map[string][]sample)
	for r := 0; r < *rounds; r++ {
		for _, bin := range bins {
			s, err := measure(bin, config, *n, *header, *useTLS, *wait)
			if err != nil {
				fail(fmt.Errorf("%s: %w", bin, err))
			}
			fmt.Printf("round %d %-30s rss %6.2f KiB/conn  heap %6.2f  stack %6.2f  (rss %4.0f→%4.0f MiB)\n",
				r+1, bin, s.rss, s.heap, s.stack, s.rssBefore/1024, s.rssAfter/1024)
			results[bin] = append(results[bin], s)
		}
	}
	fmt.Printf("\n%d idle connections, one request each, median of %d rounds (KiB per connection)\n", *n, *rounds)
	fmt.Printf("%-30s %8s %8s %8s\n", "binary", "RSS", "heap", "stacks")
	for _, bin := range bins {
		ss := results[bin]
		fmt.Printf("%-30s %8.2f %8.2f %8.2f\n", bin,
			median(ss, func(s sample) float64 { return s.rss }),
			median(ss, func(s sample) float64 { return s.heap }),
			median(ss, func(s sample) float64 { return s.stack }))
	}
}

// sample is one gateway's growth per idle connection, in KiB.
type sample struct {
	rss, heap, stack    float64
	rssBefore, rssAfter float64 // KiB
}

func median(ss []sample, f func(sample) float64) float64 {
	v := make([]float64, len(ss))
	for i, s := range ss {
		v[i] = f(s)
	}
	sort.Float64s(v)
	return v[len(v)/2]
}

func measure(bin string, config func(addr string) (string, error), n, header int, useTLS bool, wait time.Duration) (sample, error) {
	var s sample
	addr, err := procs.FreeAddr()
	if err != nil {
		return s, err
	}
	admin, err := procs.FreeAddr()
	if err != nil {
		return s, err
	}
	conf, err := config(addr)
	if err != nil {
		return s, err
	}
	args := []string{"run", "--config", conf, "--admin-addr", admin,
		"--log-level", "warn", "--drain-delay", "0s", "--shutdown-timeout", "2s", "--pprof"}
	if !useTLS {
		args = append(args, "--listen", addr)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return s, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	if err := waitReady(admin); err != nil {
		return s, err
	}
	// A few requests first, so that the pools and the upstream connection
	// exist before the baseline.
	warm, err := dial(addr, header, useTLS)
	if err != nil {
		return s, err
	}
	defer warm.Close()
	before, err := usage(cmd.Process.Pid, admin)
	if err != nil {
		return s, err
	}
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < n; i++ {
		c, err := dial(addr, header, useTLS)
		if err != nil {
			return s, fmt.Errorf("connection %d: %w", i, err)
		}
		conns = append(conns, c)
	}
	// Let the connections reach their idle state (parked, in a gateway
	// that parks), and the goroutines that served them leave fasthttp's
	// worker pool.
	time.Sleep(wait)
	after, err := usage(cmd.Process.Pid, admin)
	if err != nil {
		return s, err
	}
	f := float64(n)
	s.rss = (after.rss - before.rss) / f
	s.heap = (after.heap - before.heap) / f
	s.stack = (after.stack - before.stack) / f
	s.rssBefore, s.rssAfter = before.rss, after.rss
	return s, nil
}

// dial opens a connection and makes one request on it, reading the whole
// answer, so that the connection is idle in keep-alive when it returns.
func dial(addr string, header int, useTLS bool) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	if useTLS {
		c = tls.Client(c, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // a self-signed certificate made for the run
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET /api/products/small?productId=PRD-42&quantity=2 HTTP/1.1\r\nHost: bench\r\n"
	if header > 0 {
		req += "X-Pad: " + strings.Repeat("p", header) + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		c.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	if err == nil && resp.Close {
		err = errors.New("the gateway closed the connection after the request")
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// figures are KiB.
type figures struct{ rss, heap, stack float64 }

// usage reads, after two GCs the pprof handler forces (sync.Pool keeps
// what it holds for one), the process's heap in use, stack memory and
// VmRSS.
func usage(pid int, admin string) (figures, error) {
	var f figures
	var b []byte
	for range 2 {
		resp, err := http.Get("http://" + admin + "/debug/pprof/heap?gc=1&debug=1")
		if err != nil {
			return f, err
		}
		b, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return f, err
		}
	}
	f.heap = memstat(b, "# HeapInuse = ") / 1024
	f.stack = memstat(b, "# Stack = ") / 1024
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return f, err
	}
	f.rss = memstat(status, "VmRSS:")
	return f, nil
}

// memstat reads the first number after key.
func memstat(b []byte, key string) float64 {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0
	}
	fields := strings.Fields(string(b[i+len(key):]))
	if len(fields) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(strings.TrimSuffix(fields[0], ","), 64)
	return v
}

func waitReady(admin string) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("not ready after 15 s")
}

func raiseFileLimit(want uint64) {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) != nil {
		return
	}
	if lim.Cur < want {
		lim.Cur = min(want, lim.Max)
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "idlemem:", err)
	os.Exit(1)
}
