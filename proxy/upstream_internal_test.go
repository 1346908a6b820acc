package proxy

import (
	"bufio"
	"bytes"
	"testing"

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
