package proxy

import (
	"bufio"
	"fmt"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkTrailerDrop: dropping a trailer section of n fields, a header
// section of ten beside it; its work should grow with n, not n².
func BenchmarkTrailerDrop(b *testing.B) {
	for _, n := range []int{1, maxTrailerFields} {
		b.Run(fmt.Sprintf("fields=%d", n), func(b *testing.B) {
			var head, trailer strings.Builder
			head.WriteString("POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n")
			for i := range 10 {
				fmt.Fprintf(&head, "X-Header-%d: value\r\n", i)
			}
			head.WriteString("\r\n")
			for i := range n {
				fmt.Fprintf(&trailer, "X-Trailer-%d: value\r\n", i)
			}
			trailer.WriteString("\r\n")
			var tmpl, h fasthttp.RequestHeader
			if err := tmpl.Read(bufio.NewReader(strings.NewReader(head.String()))); err != nil {
				b.Fatal(err)
			}
			if err := tmpl.ReadTrailer(bufio.NewReader(strings.NewReader(trailer.String()))); err != nil {
				b.Fatal(err)
			}
			var t trailerDrop
			b.ReportAllocs()
			for b.Loop() {
				tmpl.CopyTo(&h)
				t.h = &h
				t.drop()
			}
			if len(h.PeekTrailerKeys()) != 0 || len(h.Peek("X-Trailer-0")) != 0 {
				b.Fatal("the trailer is still there")
			}
		})
	}
}
