// Package redistest starts real redis-server processes for tests: a
// standalone server or a three-node Redis Cluster on free loopback ports,
// without persistence, stopped when the test ends. Tests that claim the
// shared rate-limit store is correct run against these, never a mock.
//
// A missing redis-server fails the test (CI installs it: the Debian package
// redis-server, which brings redis-cli), unless FLEXGATE_SKIP_REDIS=1 says
// skipping is intended.
//
// It also has what tests of the features that use shared storage need
// beside a server: a proxy that holds Redis's answers (Slow), and the log
// lines those features write (RecordLogs).
package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// SkipEnv, set to 1, lets tests that need redis-server skip when it is not
// installed.
const SkipEnv = "FLEXGATE_SKIP_REDIS"

// startTimeout bounds a server's start and a cluster's forming.
const startTimeout = 20 * time.Second

// Require fails t when redis-server or redis-cli is missing, or skips it
// when FLEXGATE_SKIP_REDIS=1.
func Require(t testing.TB) {
	t.Helper()
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv(SkipEnv) == "1" {
				t.Skipf("%s is not installed and %s=1: skipping a test that needs a real Redis", bin, SkipEnv)
			}
			t.Fatalf("%s is not installed: install the Debian package redis-server (apt-get install -y redis-server), "+
				"or set %s=1 to skip the tests that need it", bin, SkipEnv)
		}
	}
}

// Server is a redis-server process started by a test. Its methods are
// safe for concurrent use.
type Server struct {
	// Addr is 127.0.0.1:port.
	Addr string
	Port int

	t    testing.TB
	dir  string
	args []string
	// tls, when set, are the certificate, key and CA files of a server
	// that speaks only TLS.
	tls []string
	// sentinel, when set, is the config file of a sentinel.
	sentinel string

	mu   sync.Mutex
	cmd  *exec.Cmd
	exit chan struct{}
}

// Start starts a standalone redis-server on a free port with no
// persistence; extra are more redis-server arguments. It is killed when
// the test ends.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	return start(t, &Server{t: t, args: extra})
}

// StartTLS starts a server that speaks only TLS, with the certificate
// chain and key in certFile and keyFile, and requires clients to present
// a certificate that caFile verifies (caFile also holds what redis-cli
// trusts).
func StartTLS(t testing.TB, certFile, keyFile, caFile string, extra ...string) *Server {
	t.Helper()
	return start(t, &Server{t: t, args: extra, tls: []string{certFile, keyFile, caFile}})
}

// StartSentinel starts a sentinel that monitors master under the name
// masterName, and waits until it knows the master.
func StartSentinel(t testing.TB, master *Server, masterName string) *Server {
	t.Helper()
	Require(t)
	conf := filepath.Join(t.TempDir(), "sentinel.conf")
	text := fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 1\nsentinel down-after-milliseconds %s 5000\n", masterName, master.Port, masterName)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	s := start(t, &Server{t: t, sentinel: conf})
	deadline := time.Now().Add(startTimeout)
	for {
		out, _ := s.Do("SENTINEL", "GET-MASTER-ADDR-BY-NAME", masterName)
		if strings.Contains(out, strconv.Itoa(master.Port)) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("sentinel does not know master %s after %s: %s", masterName, startTimeout, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func start(t testing.TB, s *Server) *Server {
	t.Helper()
	Require(t)
	s.dir = t.TempDir()
	t.Cleanup(s.Kill)
	var err error
	for range 5 {
		var port int
		if port, err = freePort(false); err != nil {
			continue
		}
		s.Port, s.Addr = port, "127.0.0.1:"+strconv.Itoa(port)
		if err = s.start(); err == nil {
			return s
		}
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	t.Fatalf("cannot start redis-server: %v", err)
	return nil
}

var errPortTaken = errors.New("port taken")

// start runs the server on s.Port and waits until it accepts connections.
func (s *Server) start() error {
	var args []string
	if s.sentinel != "" {
		args = append(args, s.sentinel, "--sentinel")
	}
	args = append(args, "--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--logfile", "", "--daemonize", "no", "--protected-mode", "no")
	if s.tls != nil {
		args = append(args, "--port", "0", "--tls-port", strconv.Itoa(s.Port), "--tls-cert-file", s.tls[0],
			"--tls-key-file", s.tls[1], "--tls-ca-cert-file", s.tls[2], "--tls-auth-clients", "yes")
	}
	if debugFlag() && s.sentinel == "" {
		args = append(args, "--enable-debug-command", "yes")
	}
	args = append(args, s.args...)
	cmd := exec.Command("redis-server", args...)
	setDeathSignal(cmd)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return err
	}
	ready := make(chan error, 1)
	var log strings.Builder
	go func() {
		sc := bufio.NewScanner(out)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			if !sent {
				log.WriteString(line + "\n")
			}
			switch {
			case sent:
			case strings.Contains(line, "Ready to accept connections"), strings.Contains(line, "+monitor master"):
				ready <- nil
				sent = true
			case strings.Contains(line, "Address already in use"):
				ready <- errPortTaken
				sent = true
			}
		}
		if !sent {
			ready <- fmt.Errorf("redis-server exited before it was ready:\n%s", log.String())
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	exit := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exit)
	}()
	select {
	case err = <-ready:
	case <-time.After(startTimeout):
		err = fmt.Errorf("redis-server not ready after %s:\n%s", startTimeout, log.String())
	}
	if err != nil {
		_ = cmd.Process.Kill()
		<-exit
		return err
	}
	s.mu.Lock()
	s.cmd, s.exit = cmd, exit
	s.mu.Unlock()
	return nil
}

// Kill stops the server at once (SIGKILL) and waits for it to exit.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, exit := s.cmd, s.exit
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exit
}

// Restart starts the server again on the same port, empty (there is no
// persistence).
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	var err error
	for range 50 {
		// The port is ours until another process takes it; a restart
		// right after a kill may find it still held by the dead
		// server's sockets for a moment.
		if err = s.start(); !errors.Is(err, errPortTaken) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("cannot restart redis-server on port %d: %v", s.Port, err)
	}
}

// Do runs one command with redis-cli and returns its output, trimmed.
func (s *Server) Do(args ...string) (string, error) {
	if s.tls != nil {
		args = append([]string{"--tls", "--cacert", s.tls[2], "--cert", s.tls[0], "--key", s.tls[1]}, args...)
	}
	return cli(s.Addr, args...)
}

// MustDo is Do that fails the test on an error.
func (s *Server) MustDo(args ...string) string {
	s.t.Helper()
	out, err := s.Do(args...)
	if err != nil {
		s.t.Fatalf("redis-cli %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func cli(addr string, args ...string) (string, error) {
	host, port, _ := net.SplitHostPort(addr)
	out, err := exec.Command("redis-cli", append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
	s := strings.TrimSpace(string(out))
	if err == nil && strings.HasPrefix(s, "ERR") {
		err = errors.New(s)
	}
	if err != nil {
		return s, fmt.Errorf("%v: %s", err, s)
	}
	return s, nil
}

// debugFlag reports whether redis-server knows --enable-debug-command
// (7.0 and later), which DEBUG SLEEP needs.
var debugFlag = sync.OnceValue(func() bool {
	out, err := exec.Command("redis-server", "--version").Output()
	if err != nil {
		return false
	}
	_, v, _ := strings.Cut(string(out), " v=")
	major, _, _ := strings.Cut(v, ".")
	n, _ := strconv.Atoi(major)
	return n >= 7
})

// freePort finds a loopback port no one listens on; with bus, its
// cluster bus port (port + 10000) is free too.
func freePort(bus bool) (int, error) {
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
		if !bus {
			return port, nil
		}
		if port+10000 > 65535 {
			continue
		}
		bl, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		if err != nil {
			continue
		}
		_ = bl.Close()
		return port, nil
	}
	return 0, errors.New("no free port pair for a cluster node")
}

// Cluster is a Redis Cluster of three masters started by a test.
type Cluster struct {
	Nodes []*Server
}

// Addrs are the nodes' addresses.
func (c *Cluster) Addrs() []string {
	var a []string
	for _, n := range c.Nodes {
		a = append(a, n.Addr)
	}
	return a
}

// StartCluster starts three cluster-enabled nodes and forms a cluster of
// them with redis-cli --cluster create, each master holding a third of the
// slots, and waits until every node says cluster_state:ok.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	Require(t)
	c := &Cluster{}
	for i := range 3 {
		s := &Server{t: t, dir: filepath.Join(t.TempDir(), strconv.Itoa(i)),
			args: []string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000"}}
		if err := os.MkdirAll(s.dir, 0o700); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Kill)
		var err error
		for range 5 {
			var port int
			if port, err = freePort(true); err != nil {
				continue
			}
			s.Port, s.Addr = port, "127.0.0.1:"+strconv.Itoa(port)
			if err = s.start(); !errors.Is(err, errPortTaken) {
				break
			}
		}
		if err != nil {
			t.Fatalf("cannot start cluster node %d: %v", i, err)
		}
		c.Nodes = append(c.Nodes, s)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(startTimeout)
	for _, n := range c.Nodes {
		for {
			info, _ := n.Do("CLUSTER", "INFO")
			if strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s: cluster not ok after %s:\n%s", n.Addr, startTimeout, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
}

// Slow starts a TCP proxy on loopback in front of s that holds each of
// Redis's answers for delay before passing it on, as a Redis far away or
// busy would, and returns its address. Commands pass at once and in order;
// the proxy stops when the test ends.
func (s *Server) Slow(t testing.TB, delay time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	track := func(c net.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		if conns == nil {
			return false
		}
		conns = append(conns, c)
		return true
	}
	conns = []net.Conn{}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		conns = nil
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", s.Addr)
			if err != nil {
				client.Close()
				continue
			}
			if !track(client) || !track(server) {
				client.Close()
				server.Close()
				return
			}
			wg.Add(2)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(server, client)
				server.Close()
			}()
			go func() {
				defer wg.Done()
				delayCopy(client, server, delay)
				client.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

// delayCopy copies from src to dst, each read delay after it arrived.
func delayCopy(dst io.Writer, src io.Reader, delay time.Duration) {
	type chunk struct {
		at time.Time
		b  []byte
	}
	q := make(chan chunk, 1024)
	go func() {
		defer close(q)
		for {
			b := make([]byte, 32<<10)
			n, err := src.Read(b)
			if n > 0 {
				q <- chunk{time.Now().Add(delay), b[:n]}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range q {
		time.Sleep(time.Until(c.at))
		if _, err := dst.Write(c.b); err != nil {
			for range q {
			}
			return
		}
	}
}

// WriteRefusal is a way a Redis that still answers reads refuses every
// write: a read-only replica (the old master after a failover), a full
// Redis that may not evict (maxmemory-policy noeviction), a master short of
// the replicas min-replicas-to-write asks for.
type WriteRefusal struct {
	Name string
	// Code is the error code Redis answers a write with.
	Code string
}

// WriteRefusals are the write refusals RefuseWrites makes.
var WriteRefusals = []WriteRefusal{
	{Name: "read-only replica", Code: "READONLY"},
	{Name: "out of memory", Code: "OOM"},
	{Name: "too few replicas", Code: "NOREPLICAS"},
}

// RefuseWrites has s refuse writes as r says, until the returned function
// undoes it. A read-only replica replicates a master started for it, whose
// empty data set replaces s's; a Cluster node cannot be one.
func (s *Server) RefuseWrites(r WriteRefusal) (undo func()) {
	s.t.Helper()
	switch r.Code {
	case "READONLY":
		master := Start(s.t)
		s.MustDo("REPLICAOF", "127.0.0.1", strconv.Itoa(master.Port))
		return func() { s.MustDo("REPLICAOF", "NO", "ONE") }
	case "OOM":
		s.MustDo("CONFIG", "SET", "maxmemory-policy", "noeviction")
		s.MustDo("CONFIG", "SET", "maxmemory", "1")
		return func() { s.MustDo("CONFIG", "SET", "maxmemory", "0") }
	case "NOREPLICAS":
		s.MustDo("CONFIG", "SET", "min-replicas-to-write", "1")
		return func() { s.MustDo("CONFIG", "SET", "min-replicas-to-write", "0") }
	}
	s.t.Fatalf("no way to refuse writes with %s", r.Code)
	return nil
}

// Refused is how many errors with code s has answered since it started,
// inside scripts or not (INFO errorstats).
func (s *Server) Refused(code string) int {
	s.t.Helper()
	info := s.MustDo("INFO", "errorstats")
	_, rest, ok := strings.Cut(info, "errorstat_"+code+":count=")
	if !ok {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(rest, "\n", 2)[0]))
	return n
}

// RecordLogs has the default logger, from now until the test ends, write
// into the lines the returned function gives: what the features' shared
// storage connections say of Redis. Not for parallel tests: it swaps the
// default logger.
func RecordLogs(t testing.TB) func() []string {
	var mu sync.Mutex
	var buf bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Split(strings.TrimSpace(buf.String()), "\n")
	}
}

// CountLines counts the lines holding s.
func CountLines(lines []string, s string) int {
	n := 0
	for _, l := range lines {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
