package procs

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestWaitReadyReportsAnEarlyExit(t *testing.T) {
	var g Group
	defer g.StopAll()
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	p, err := g.Start("broken", t.TempDir(), "sh", []string{"-c", "echo bad config: $BENCH_X; exit 3"}, []string{"BENCH_X=listen"})
	if err != nil {
		t.Fatal(err)
	}
	err = p.WaitReady(addr, false, 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "exited before") || !strings.Contains(err.Error(), "bad config: listen") {
		t.Errorf("WaitReady = %v, want an error saying it exited, with its log", err)
	}
	if !p.Exited() {
		t.Error("Exited = false after the process exited")
	}
}

func TestWaitReadyThenStopAllStopsTheProcessGroup(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var g Group
	defer g.StopAll()
	// The shell stands for nginx's master: what it forks must stop with it.
	p, err := g.Start("server", t.TempDir(), "sh", []string{"-c", "sleep 60 & echo $!; wait"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitReady(ln.Addr().String(), false, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	child := 0
	for deadline := time.Now().Add(10 * time.Second); child == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		child, _ = strconv.Atoi(p.Tail())
	}
	if child == 0 {
		t.Fatalf("the shell did not print its child's pid: %q", p.Tail())
	}
	g.StopAll()
	if !p.Exited() {
		t.Error("Exited = false after StopAll")
	}
	for deadline := time.Now().Add(10 * time.Second); running(child); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the server's child %d still runs after StopAll", child)
		}
	}
}

// running reports whether pid exists and is not a zombie waiting to be
// reaped.
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || !strings.HasPrefix(string(b[i+1:]), " Z")
}

func TestFreeAddr(t *testing.T) {
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("FreeAddr = %q, %v; want 127.0.0.1 and a port", addr, err)
	}
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		t.Fatalf("cannot listen on the free address: %v", err)
	}
	ln.Close()
}

func TestFirstLine(t *testing.T) {
	// Like wrk -v: a version line, more lines, and a non-zero exit.
	line, err := FirstLine(context.Background(), "sh", "-c", "echo '  wrk 4.1.0  '; echo Usage; exit 1")
	if line != "wrk 4.1.0" || err == nil {
		t.Errorf("FirstLine = %q, %v; want \"wrk 4.1.0\" and the exit error", line, err)
	}
}

func TestParseStat(t *testing.T) {
	f := func(line string, want Stat) {
		t.Helper()
		got, err := ParseStat([]byte(line))
		if err != nil || got != want {
			t.Errorf("ParseStat(%q) = %+v, %v; want %+v", line, got, err, want)
		}
	}
	f("4242 (flex gate) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 130 0 0 20 0 9 0 100 0 0", Stat{PPID: 1, CPUSeconds: 3.8})
	// A command name with spaces and parentheses, as /proc allows.
	f("4242 (nginx: (worker) x) S 4200 4200 4200 0 -1 4194624 120 0 0 0 350 125 0 0 20 0 1 0 100 1000 200", Stat{PPID: 4200, CPUSeconds: 4.75})

	for _, bad := range []string{"garbage", "4242 (x) S 1", "4242 (x) S 1 2 3 4 5 6 7 8 9 10 ten 12"} {
		if _, err := ParseStat([]byte(bad)); err == nil {
			t.Errorf("ParseStat(%q) accepted a malformed line", bad)
		}
	}
}

func TestReadStatOfThisProcess(t *testing.T) {
	s, err := ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.PPID != os.Getppid() || s.CPUSeconds < 0 {
		t.Errorf("ReadStat = %+v, want ppid %d", s, os.Getppid())
	}
}

func TestRedact(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "flexgate-bench-123")
	notes := []string{"wrk did not start: fork/exec " + dir + "/bin/wrk: no such file", "the run was interrupted"}
	Redact(notes, dir)
	if notes[0] != "wrk did not start: fork/exec <run dir>/bin/wrk: no such file" || notes[1] != "the run was interrupted" {
		t.Errorf("redacted: %q", notes)
	}
}
