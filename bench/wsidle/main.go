// Command wsidle measures what idle WebSocket connections cost flexgate.
//
// It starts a WebSocket origin in a process of its own (this program
// again, with -origin), which answers each upgrade with a 101 and then
// echoes bytes, builds and starts flexgate with one
// `websocket: true` route to it, opens -n WebSocket connections through
// flexgate, and reports flexgate's resident memory (VmRSS), Go heap and
// goroutines per connection, from /proc and flexgate's /metrics. A sample
// of the connections then sends a frame and reads it back, to show that
// they were alive; at the end flexgate gets SIGTERM and the run reports
// how many connections it closed.
//
// Usage (from the repository root):
//
//	go run ./bench/wsidle [-n 10000] [-flexgate path/to/flexgate]
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1" //nolint:gosec // RFC 6455's Sec-WebSocket-Accept
	"encoding/base64"
	"errors"
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
	"syscall"
	"time"

	"github.com/flexgate/flexgate/bench/procs"
)

func main() {
	n := flag.Int("n", 10000, "WebSocket connections to hold open")
	bin := flag.String("flexgate", "", "flexgate binary to measure (default: build ./cmd/flexgate)")
	settle := flag.Duration("settle", 3*time.Second, "wait this long once the connections are open before measuring")
	serveOrigin := flag.Bool("origin", false, "be the origin: serve on 127.0.0.1, print the address, until stdin closes")
	flag.Parse()
	if *serveOrigin {
		if err := runOrigin(*n); err != nil {
			fmt.Fprintln(os.Stderr, "wsidle origin:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*n, *bin, *settle); err != nil {
		fmt.Fprintln(os.Stderr, "wsidle:", err)
		os.Exit(1)
	}
}

func run(n int, bin string, settle time.Duration) error {
	// This process holds the client end of each connection, the origin
	// (a process of its own) the other, flexgate (which inherits this
	// process's limit) both of its ends and a few files more.
	if err := raiseFileLimit(uint64(2*n+1024), uint64(2*n+64)); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "wsidle-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if bin == "" {
		bin = filepath.Join(dir, "flexgate")
		build := exec.Command("go", "build", "-o", bin, "./cmd/flexgate")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("building flexgate (run from the repository root): %w", err)
		}
	}

	originAddr, stopOrigin, err := startOrigin(n)
	if err != nil {
		return err
	}
	defer stopOrigin()
	listen, err := procs.FreeAddr()
	if err != nil {
		return err
	}
	admin, err := procs.FreeAddr()
	if err != nil {
		return err
	}
	conf := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(gatewayYAML, 2*n+100, originAddr)), 0o600); err != nil {
		return err
	}
	cmd := exec.Command(bin, "run", "--config", conf, "--listen", listen, "--admin-addr", admin,
		"--log-level", "warn", "--drain-delay", "0s", "--shutdown-timeout", "10s")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill() // by PID; a no-op once it has exited
		<-exited
	}()
	if err := waitReady("http://"+admin+"/readyz", 15*time.Second); err != nil {
		return err
	}

	// One connection opened and closed first, so that the baseline holds
	// the code and pools every connection uses.
	warm, err := openWS(listen)
	if err != nil {
		return fmt.Errorf("first WebSocket connection: %w", err)
	}
	_ = warm.Close()
	time.Sleep(settle)
	pid := cmd.Process.Pid
	before, err := measure(pid, admin)
	if err != nil {
		return err
	}

	start := time.Now()
	conns, err := openAll(listen, n)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	if err != nil {
		return err
	}
	opened := time.Since(start)
	time.Sleep(settle)
	after, err := measure(pid, admin)
	if err != nil {
		return err
	}
	alive := echoSample(conns, 100)

	per := func(a, b float64) float64 { return (b - a) / float64(n) }
	fmt.Printf("flexgate, %d idle WebSocket connections (client -> flexgate -> origin), opened in %s\n", n, opened.Round(time.Millisecond))
	fmt.Printf("  open (flexgate_websocket_connections): %.0f\n", after.open)
	fmt.Printf("  RSS:        %7.1f MiB before, %7.1f MiB after: %5.1f KiB per connection\n",
		before.rss/(1<<20), after.rss/(1<<20), per(before.rss, after.rss)/1024)
	fmt.Printf("  Go heap:    %7.1f MiB before, %7.1f MiB after: %5.1f KiB per connection (go_memstats_heap_inuse_bytes)\n",
		before.heap/(1<<20), after.heap/(1<<20), per(before.heap, after.heap)/1024)
	fmt.Printf("  goroutines: %7.0f before, %7.0f after: %5.2f per connection\n",
		before.goroutines, after.goroutines, per(before.goroutines, after.goroutines))
	fmt.Printf("  alive afterwards: %d of a sample of %d echoed a frame\n", alive, min(100, n))

	// SIGTERM: the drain closes every WebSocket connection.
	_ = cmd.Process.Signal(syscall.SIGTERM)
	closed, goingAway := countClosed(conns, 15*time.Second)
	fmt.Printf("  on SIGTERM: %d of %d connections closed by flexgate, %d of them after a close frame\n", closed, n, goingAway)
	select {
	case err := <-exited:
		exited <- err
	case <-time.After(15 * time.Second):
		return errors.New("flexgate did not exit within 15 s of SIGTERM")
	}
	return nil
}

// gatewayYAML is one WebSocket route to the origin; the limits leave room
// for every connection.
const gatewayYAML = `apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata:
  name: bench-wsidle
spec:
  limits:
    maxConnections: %d
    maxConnectionsPerClient: 0
  routes:
    - id: ws
      path: ["/*"]
      upstream:
        url: "http://%s"
      websocket: {idleTimeout: 10m}
`

// usage is what flexgate holds at one moment.
type usage struct{ rss, heap, goroutines, open float64 }

func measure(pid int, admin string) (usage, error) {
	var u usage
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kib, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				return u, fmt.Errorf("VmRSS %q: %w", rest, err)
			}
			u.rss = kib * 1024
		}
	}
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		return u, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		switch {
		case name == "go_memstats_heap_inuse_bytes":
			u.heap = v
		case name == "go_goroutines":
			u.goroutines = v
		case strings.HasPrefix(name, "flexgate_websocket_connections{"):
			u.open += v
		}
	}
	return u, sc.Err()
}

// wsKey is the Sec-WebSocket-Key of every connection; the origin checks
// nothing but answers with its accept, which flexgate checks.
const wsKey = "dGhlIHNhbXBsZSBub25jZQ=="

func accept(key string) string {
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")) //nolint:gosec // RFC 6455
	return base64.StdEncoding.EncodeToString(sum[:])
}

// wsConn is a client's WebSocket connection, read raw.
type wsConn struct {
	net.Conn
	br *bufio.Reader
}

func openWS(addr string) (*wsConn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: bench\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "+wsKey+"\r\n\r\n"); err != nil {
		_ = c.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(c, 512)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		_ = c.Close()
		return nil, fmt.Errorf("answered %s (X-Flexgate-Error %q)", resp.Status, resp.Header.Get("X-Flexgate-Error"))
	}
	_ = c.SetDeadline(time.Time{})
	return &wsConn{Conn: c, br: br}, nil
}

// openAll opens n connections, 32 at a time.
func openAll(addr string, n int) ([]*wsConn, error) {
	conns := make([]*wsConn, n)
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				c, err := openWS(addr)
				if err != nil {
					once.Do(func() { firstErr = fmt.Errorf("connection %d: %w", i, err) })
					next.Store(int64(n))
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	open := conns[:0]
	for _, c := range conns {
		if c != nil {
			open = append(open, c)
		}
	}
	return open, firstErr
}

// echoSample sends a masked text frame on up to k connections spread over
// all of them and counts those that read it back from the echoing origin.
func echoSample(conns []*wsConn, k int) int {
	if len(conns) == 0 {
		return 0
	}
	frame := []byte{0x81, 0x84, 1, 2, 3, 4, 'p' ^ 1, 'i' ^ 2, 'n' ^ 3, 'g' ^ 4}
	alive := 0
	step := max(1, len(conns)/k)
	for i := 0; i < len(conns) && i/step < k; i += step {
		c := conns[i]
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		got := make([]byte, len(frame))
		if _, err := c.Write(frame); err == nil {
			if _, err := io.ReadFull(c.br, got); err == nil && bytes.Equal(got, frame) {
				alive++
			}
		}
		_ = c.SetDeadline(time.Time{})
	}
	return alive
}

// countClosed waits until every connection has been closed by the far end,
// or until timeout, and counts those that were, and those that read a close
// frame first.
func countClosed(conns []*wsConn, timeout time.Duration) (closed, goingAway int) {
	deadline := time.Now().Add(timeout)
	var nClosed, nAway atomic.Int64
	var wg sync.WaitGroup
	work := make(chan *wsConn)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				_ = c.SetReadDeadline(deadline)
				// flexgate's close frame 1001, or the one it sent the origin,
				// echoed back (masked) before flexgate's own went out.
				var first [2]byte
				if _, err := io.ReadFull(c.br, first[:]); err == nil && first[0] == 0x88 && first[1]&0x7f == 2 {
					nAway.Add(1)
				}
				if _, err := io.Copy(io.Discard, c.br); err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
					nClosed.Add(1)
				}
			}
		}()
	}
	for _, c := range conns {
		work <- c
	}
	close(work)
	wg.Wait()
	return int(nClosed.Load()), int(nAway.Load())
}

// startOrigin runs this program again as the origin, in a process of its
// own so that each process holds one end of each connection.
func startOrigin(n int) (addr string, stop func(), err error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(self, "-origin", "-n", strconv.Itoa(n))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill() // by PID
		_ = cmd.Wait()
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("the origin did not start: %w", err)
	}
	return strings.TrimSpace(line), stop, nil
}

// runOrigin is the WebSocket server behind flexgate: it answers each
// upgrade with a 101 and echoes what follows, until stdin closes.
func runOrigin(n int) error {
	if err := raiseFileLimit(uint64(n+1024), uint64(n+64)); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					fmt.Fprintln(os.Stderr, "wsidle origin:", err)
				}
				return
			}
			go serveOrigin(c)
		}
	}()
	fmt.Println(ln.Addr().String())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return ln.Close()
}

func serveOrigin(c net.Conn) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 1024)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	if _, err := io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Accept: "+accept(req.Header.Get("Sec-WebSocket-Key"))+"\r\n\r\n"); err != nil {
		return
	}
	// Not io.Copy: between two TCP connections it splices through a pipe,
	// two more open files per connection.
	buf := make([]byte, 512)
	for {
		n, err := br.Read(buf)
		if n > 0 {
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func waitReady(url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("flexgate was not ready within %s", timeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// raiseFileLimit lifts RLIMIT_NOFILE towards want, up to the hard limit,
// or says why it cannot reach need.
func raiseFileLimit(want, need uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= want {
		return nil
	}
	if lim.Max < want {
		// Root with CAP_SYS_RESOURCE may raise the hard limit too.
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: want, Max: want}); err == nil {
			return nil
		}
		if lim.Max < need {
			return fmt.Errorf("this -n needs %d open files per process, the hard limit is %d: raise it (ulimit -Hn) or lower -n", need, lim.Max)
		}
		want = lim.Max
	}
	lim.Cur = want
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}
