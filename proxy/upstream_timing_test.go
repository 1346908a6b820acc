package proxy

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/valyala/fasthttp"
)

// answerHead is a realistic upstream answer head: 16 lines, about 500
// bytes.
const answerHead = "HTTP/1.1 200 OK\r\n" +
	"Date: Thu, 03 Dec 2026 21:18:53 GMT\r\n" +
	"Content-Type: application/json; charset=utf-8\r\n" +
	"Content-Length: 1234\r\n" +
	"Connection: keep-alive\r\n" +
	"Cache-Control: private, max-age=0, must-revalidate\r\n" +
	"ETag: \"5f2b8c1e-4d2\"\r\n" +
	"Vary: Accept-Encoding, Origin\r\n" +
	"X-Request-Id: 4bf92f3577b34da6a3ce929d0e0e4736\r\n" +
	"Strict-Transport-Security: max-age=31536000; includeSubDomains\r\n" +
	"X-Content-Type-Options: nosniff\r\n" +
	"X-Frame-Options: DENY\r\n" +
	"Server: nginx\r\n" +
	"Set-Cookie: session=abc123; Path=/; HttpOnly; Secure; SameSite=Lax\r\n" +
	"Access-Control-Allow-Origin: https://shop.example\r\n" +
	"Last-Modified: Wed, 02 Dec 2026 10:00:00 GMT\r\n" +
	"\r\n"

// BenchmarkCheckFraming is the gateway's own look at an answer head, and
// fasthttp's read of it for scale.
func BenchmarkCheckFraming(b *testing.B) {
	b.Run("checkFraming", func(b *testing.B) {
		br := bufio.NewReaderSize(bytes.NewReader([]byte(answerHead)), 4096)
		if _, err := br.Peek(len(answerHead)); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := checkFraming(br); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Header.Read", func(b *testing.B) {
		r := bytes.NewReader([]byte(answerHead))
		br := bufio.NewReaderSize(r, 4096)
		var h fasthttp.ResponseHeader
		b.ReportAllocs()
		for b.Loop() {
			r.Reset([]byte(answerHead))
			br.Reset(r)
			if err := h.Read(br); err != nil {
				b.Fatal(err)
			}
		}
	})
}
