package main

import (
	"net"
	"net/http"
	"testing"
	"time"
)

// startEcho starts an upstream that answers every request with body.
func startEcho(t *testing.T, body string) string {
	url, _ := startSlowEcho(t, body, 0)
	return url
}

// startSlowEcho starts an upstream that answers every request with body
// after delay: a slow upstream. Each request is announced on arrived when
// it reaches the upstream (the channel holds 64; more are not announced).
func startSlowEcho(t *testing.T, body string, delay time.Duration) (url string, arrived <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	arrivals := make(chan struct{}, 64)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrivals <- struct{}{}:
		default:
		}
		time.Sleep(delay) // the slowness under test
		_, _ = w.Write([]byte(body))
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String(), arrivals
}
