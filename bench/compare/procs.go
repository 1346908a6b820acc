package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is a server the harness started. It runs in its own process group
// so that stopping it by its PID also stops the workers it forked (nginx).
type Proc struct {
	Name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// Procs tracks every server the harness started, so that all of them are
// stopped at the end, on error and on SIGINT alike. Safe for concurrent use.
type Procs struct {
	mu    sync.Mutex
	procs []*Proc
}

// Start launches bin with its output in dir/<name>.log.
func (ps *Procs) Start(name, dir, bin string, args []string, env []string) (*Proc, error) {
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("cannot start %s (%s): %w", name, bin, err)
	}
	p := &Proc{Name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	ps.mu.Lock()
	ps.procs = append(ps.procs, p)
	ps.mu.Unlock()
	return p, nil
}

// PID is the process id of the server (nginx's master).
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

// WaitReady polls addr until a connection (and a TLS handshake when
// useTLS) succeeds, the process exits, or the timeout passes.
func (p *Proc) WaitReady(addr string, useTLS bool, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	backoff := 5 * time.Millisecond
	for {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it served %s: %v\n%s", p.Name, addr, p.err, p.Tail())
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			if useTLS {
				tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
				err = tc.Handshake()
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
		if backoff < 200*time.Millisecond {
			backoff *= 2
		}
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

// StopAll stops every server still running, newest first.
func (ps *Procs) StopAll() {
	ps.mu.Lock()
	procs := ps.procs
	ps.procs = nil
	ps.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].Stop()
	}
}

// freeAddr returns 127.0.0.1:port with a port the kernel just handed out.
// Another program could take it before the server binds; the server's
// readiness check would then fail loudly rather than measure the wrong thing.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// goBuild builds a main package of this module into dir.
func goBuild(ctx context.Context, dir, pkg, name string) (string, error) {
	out := filepath.Join(dir, name)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, pkg)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, msg)
	}
	return out, nil
}
