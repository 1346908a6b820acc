package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/internal/ascii"
)

// FuzzCheckFraming: whatever head checkFraming lets through and fasthttp
// then reads has fields that every parser reads alike: names that are
// tokens, values without CR, LF or NUL, one field per line. And no head
// makes checkFraming fail otherwise than with an error.
func FuzzCheckFraming(f *testing.F) {
	for _, s := range []string{
		answerHead,
		"HTTP/1.1 200 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nSet-Cookie : a=b\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\n\r\n",
		"HTTP/1.1 200 OK\r\n X-A: a\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n",
		"HTTP/1.1 200 OK\nX-A: a\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(b), 4096)
		if checkStatusLine(br) != nil || checkFraming(br) != nil {
			return
		}
		var h fasthttp.ResponseHeader
		if h.Read(br) != nil {
			return
		}
		for k, v := range h.All() {
			if len(k) == 0 {
				t.Fatalf("an empty field name went through: %q", b)
			}
			for _, c := range k {
				if !ascii.IsTokenByte(c) {
					t.Fatalf("field name %q went through: %q", k, b)
				}
			}
			if bytes.ContainsAny(v, "\r\n\x00") {
				t.Fatalf("field %q: value %q went through: %q", k, v, b)
			}
		}
	})
}

// TestDialBoundedByConnectTimeout: fasthttp hands a dial the time a request
// may wait for a connection, which MaxConnWait may make longer than the
// connect timeout; the dial itself still gets the connect timeout.
func TestDialBoundedByConnectTimeout(t *testing.T) {
	var got time.Duration
	dial := dialUpstream(func(addr string, timeout time.Duration) (net.Conn, error) {
		got = timeout
		return nil, errors.New("refused")
	}, nil, 2*time.Second)
	for _, tc := range []struct{ given, want time.Duration }{
		{15 * time.Second, 2 * time.Second}, {0, 2 * time.Second}, {time.Second, time.Second},
	} {
		if _, err := dial("127.0.0.1:1", tc.given); err == nil || got != tc.want {
			t.Errorf("a dial given %s got %s (err %v), want %s", tc.given, got, err, tc.want)
		}
	}
}
