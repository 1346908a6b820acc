// Package procs starts, watches and stops the servers a benchmark program
// measures, and reads what they cost from /proc.
package procs

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is a server the harness started, in its own process group so that
// stopping it by its PID stops whatever it forked too (nginx's workers).
// Its methods are safe for concurrent use.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// Group tracks every server the harness started, so that all of them are
// stopped at the end, on error and on Ctrl-C alike. The zero value is ready
// to use. Safe for concurrent use.
type Group struct {
	mu    sync.Mutex
	procs []*Proc
}

// Start launches bin in dir with env added to the harness's environment,
// its output in dir/<name>.log.
func (g *Group) Start(name, dir, bin string, args, env []string) (*Proc, error) {
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("cannot start %s (%s): %w", name, bin, err)
	}
	p := &Proc{Name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	g.mu.Lock()
	g.procs = append(g.procs, p)
	g.mu.Unlock()
	return p, nil
}

// StopAll stops every server still running, newest first.
func (g *Group) StopAll() {
	g.mu.Lock()
	procs := g.procs
	g.procs = nil
	g.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].Stop()
	}
}

// PID is the server's process id (nginx's master).
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Tail returns the last lines of the server's log, for error messages.
func (p *Proc) Tail() string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

// Exited reports whether the server has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// WaitReady polls addr until a connection (and a TLS handshake when
// useTLS) succeeds, the process exits, or the timeout passes.
func (p *Proc) WaitReady(addr string, useTLS bool, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	backoff := 5 * time.Millisecond
	for {
		if p.Exited() {
			return fmt.Errorf("%s exited before it served %s: %v\n%s", p.Name, addr, p.err, p.Tail())
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			if useTLS {
				err = tls.Client(c, &tls.Config{InsecureSkipVerify: true}).Handshake()
			}
			c.Close()
			if err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not accept connections on %s within %s: %v\n%s", p.Name, addr, timeout, err, p.Tail())
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

// Stop sends SIGTERM to the server's process group, and SIGKILL if it has
// not exited after a few seconds.
func (p *Proc) Stop() {
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
}

// FreeAddr returns 127.0.0.1:port with a port the kernel just handed out.
// Another program could take it before the server binds; the readiness
// check then fails loudly rather than measure the wrong thing.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// GoBuild builds a main package of this module (pkg, such as
// "./cmd/flexgate") into dir/name, as `make build` does (static, trimmed
// paths), and returns the binary's path.
func GoBuild(ctx context.Context, dir, pkg, name string) (string, error) {
	out := filepath.Join(dir, name)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, msg)
	}
	return out, nil
}

// FirstLine runs a short command, such as `nginx -v`, and returns the first
// line of its output, trimmed, with the command's error. Some tools print
// their version and exit non-zero (wrk -v), so the line is returned either
// way.
func FirstLine(ctx context.Context, bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line), err
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. It
// is 100 on every Linux ABI Go supports; reading it would need cgo.
const clockTicks = 100

// Stat is what the harness reads from a process's /proc/PID/stat.
type Stat struct {
	PPID int
	// CPUSeconds is the user+system time the process has used.
	CPUSeconds float64
}

// ReadStat reads /proc/PID/stat of process pid.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	return ParseStat(b)
}

// CPUSeconds is the user+system time process pid has used.
func CPUSeconds(pid int) (float64, error) {
	s, err := ReadStat(pid)
	return s.CPUSeconds, err
}

// ParseStat reads ppid, utime and stime (fields 4, 14 and 15) of a
// /proc/PID/stat line. The command name, field 2, is in parentheses and may
// hold spaces and parentheses, so fields are counted after the last ')'.
func ParseStat(b []byte) (Stat, error) {
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return Stat{}, fmt.Errorf("cannot parse /proc stat %q", s)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state): ppid is f[1], utime f[11], stime f[12].
	if len(f) < 13 {
		return Stat{}, fmt.Errorf("cannot parse /proc stat %q: too few fields", s)
	}
	ppid, err1 := strconv.Atoi(f[1])
	u, err2 := strconv.ParseUint(f[11], 10, 64)
	st, err3 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return Stat{}, fmt.Errorf("cannot parse /proc stat %q: ppid %q, utime %q, stime %q", s, f[1], f[11], f[12])
	}
	return Stat{PPID: ppid, CPUSeconds: float64(u+st) / clockTicks}, nil
}

// Redact replaces dir, a run's temporary directory, with "<run dir>" in
// notes, so that a report committed with the repository names no path of
// the machine it ran on (an error that a program under it could not start
// quotes its path).
func Redact(notes []string, dir string) {
	for i, n := range notes {
		notes[i] = strings.ReplaceAll(n, dir, "<run dir>")
	}
}
