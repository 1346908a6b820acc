package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// heldRequest opens a connection to addr, sends one GET and returns the
// answer; the connection stays open until the test ends.
func heldRequest(t *testing.T, addr, path string) *http.Response {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestMaxConnectionsFlag: --max-connections lowers the config's connection
// cap to what the pod's memory allows (the Helm chart derives it).
func TestMaxConnectionsFlag(t *testing.T) {
	g := startGateway(t, []string{"FLEXGATE_CONFIG="}, "--max-connections", "1")
	addr := strings.TrimPrefix(g.url("http"), "http://")
	if resp := heldRequest(t, addr, "/api/x"); resp.StatusCode != 200 {
		t.Fatalf("first connection: %d", resp.StatusCode)
	}
	if resp := heldRequest(t, addr, "/api/x"); resp.StatusCode != 503 || resp.Header.Get("X-Flexgate-Error") != "overloaded" {
		t.Fatalf("second connection under --max-connections 1: %d %q", resp.StatusCode, resp.Header.Get("X-Flexgate-Error"))
	}
	out, code := runBinary(t, nil, "run", "--max-connections", "-1")
	if code != 2 || !strings.Contains(out, "--max-connections -1: give a positive number") {
		t.Errorf("--max-connections -1: exit %d\n%s", code, out)
	}
}

// TestPprofFlag: the profiler is off unless run is given --pprof.
func TestPprofFlag(t *testing.T) {
	status := func(url string) int {
		t.Helper()
		code, _, _ := get(t, url)
		return code
	}
	off := startGateway(t, []string{"FLEXGATE_CONFIG="})
	if code := status(off.url("admin") + "/debug/pprof/cmdline"); code != 404 {
		t.Errorf("without --pprof, /debug/pprof/cmdline = %d, want 404", code)
	}
	on := startGateway(t, []string{"FLEXGATE_CONFIG="}, "--pprof")
	if code := status(on.url("admin") + "/debug/pprof/cmdline"); code != 200 {
		t.Errorf("with --pprof, /debug/pprof/cmdline = %d, want 200", code)
	}
}

// TestUsageNamesEveryFlag: the usage text lists the flags run and validate
// take.
func TestUsageNamesEveryFlag(t *testing.T) {
	out, code := runBinary(t, nil, "help")
	if code != 0 {
		t.Fatalf("help: exit %d", code)
	}
	for _, flag := range []string{"--config", "--listen", "--admin-addr", "--clients", "--log-level", "--access-log",
		"--drain-delay", "--shutdown-timeout", "--max-connections", "--pprof", "--skip-cert-files", "--without-secrets"} {
		if !strings.Contains(out, flag) {
			t.Errorf("usage lacks %s:\n%s", flag, out)
		}
	}
}
