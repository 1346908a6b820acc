package main

import (
	"net"
	"net/http"
	"testing"
	"time"
)

// startEcho starts an upstream that answers every request with body,
// after delay when one is given.
func startEcho(t *testing.T, body string, delay ...time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(delay) > 0 {
			time.Sleep(delay[0])
		}
		_, _ = w.Write([]byte(body))
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}
