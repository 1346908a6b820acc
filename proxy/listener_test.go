package proxy

import (
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/config"
)

// flakyListener fails its first Accept as accept(2) does when the process
// is out of file descriptors: an error that is neither a timeout nor a
// closed listener.
type flakyListener struct {
	net.Listener
	failed atomic.Bool
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if !l.failed.Swap(true) {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	return l.Listener.Accept()
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestListenerSurvivesAcceptErrors: a failed accept (EMFILE) is retried;
// the listener does not stop serving its port for good.
func TestListenerSurvivesAcceptErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(path, []byte(`apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata: {name: t}
spec:
  routes:
    - {id: r, path: ["/*"], upstream: {url: "http://127.0.0.1:1"}}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load([]string{path})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	g, err := New(cfg, Options{
		Logger:    slog.New(slog.NewJSONHandler(logs, nil)),
		AdminAddr: "admin",
		listen: func(string) (net.Listener, error) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return nil, err
			}
			return &flakyListener{Listener: ln}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = g.Shutdown(t.Context()) }()
	c := &fasthttp.Client{}
	for _, tc := range []struct {
		server, path string
		want         int
	}{
		{"http", "/x", fasthttp.StatusBadGateway}, // the upstream is unreachable
		{"admin", "/healthz", fasthttp.StatusOK},
	} {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("http://" + g.Addrs()[tc.server] + tc.path)
		if err := c.DoTimeout(req, resp, 10*time.Second); err != nil {
			t.Errorf("after a failed accept the %s server does not answer: %v", tc.server, err)
		} else if resp.StatusCode() != tc.want {
			t.Errorf("%s server: status %d, want %d", tc.server, resp.StatusCode(), tc.want)
		}
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(resp)
	}
	if !strings.Contains(logs.String(), "cannot accept a connection; retrying") {
		t.Errorf("the failed accept was not logged:\n%s", logs.String())
	}
}
