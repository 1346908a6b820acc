//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"strconv"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"
)

// gatewayWork is a loop's header work for -headers: fasthttp's request
// and response headers, reused from exchange to exchange as a gateway
// reuses them, so that the work allocates nothing. It does less than
// flexgate does per request, so its cost is a lower bound: it removes no
// hop-by-hop header, replaces rather than appends to a client's
// X-Forwarded-For and Forwarded, ignores a request id or traceparent the
// client sent, and does not route, count or log.
type gatewayWork struct {
	req  fasthttp.RequestHeader
	resp fasthttp.ResponseHeader
	rd   bytes.Reader
	br   *bufio.Reader
	port []byte
	// scratch for the values built per request
	fwd, trace []byte
	// failures counts the heads fasthttp could not parse.
	failures int
}

// failed reports a head that could not be parsed: the exchange is closed,
// which a run would otherwise show only as fewer requests per second. The
// first and every 1,000th are logged.
func (g *gatewayWork) failed(what string, err error) {
	if g.failures%1000 == 0 {
		fmt.Fprintf(os.Stderr, "evloop: cannot parse the %s's head (%d so far): %v\n", what, g.failures+1, err)
	}
	g.failures++
}

func newGatewayWork(port uint16) *gatewayWork {
	return &gatewayWork{br: bufio.NewReaderSize(nil, 64<<10), port: strconv.AppendUint(nil, uint64(port), 10)}
}

// peerAddr is the address of an accepted client, as text.
func peerAddr(sa unix.Sockaddr) []byte {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrFrom4(sa.Addr).AppendTo(nil)
	case *unix.SockaddrInet6:
		return netip.AddrFrom16(sa.Addr).AppendTo(nil)
	}
	return []byte("unknown")
}

// head parses msg's head with read and returns the body after it.
func (g *gatewayWork) head(msg []byte, read func(*bufio.Reader) error) ([]byte, error) {
	g.rd.Reset(msg)
	g.br.Reset(&g.rd)
	if err := read(g.br); err != nil {
		return nil, err
	}
	return msg[len(msg)-g.rd.Len()-g.br.Buffered():], nil
}

// request appends to dst the request msg (head and body) as the upstream
// gets it: its head parsed and written anew with the forwarding headers.
func (g *gatewayWork) request(dst, msg []byte, c *conn) ([]byte, error) {
	h := &g.req
	body, err := g.head(msg, h.Read)
	if err != nil {
		return dst, err
	}
	randomID(&c.id)
	host := h.Host()
	h.SetBytesV("X-Forwarded-For", c.addr)
	g.fwd = append(append(append(append(g.fwd[:0], "for="...), c.addr...), ";proto=http;host=\""...), host...)
	g.fwd = append(g.fwd, '"')
	h.SetBytesV("Forwarded", g.fwd)
	h.SetBytesV("X-Real-IP", c.addr)
	h.Set("X-Forwarded-Proto", "http")
	h.SetBytesV("X-Forwarded-Host", host)
	h.SetBytesV("X-Forwarded-Port", g.port)
	h.SetBytesV("X-Request-Id", c.id[:])
	g.trace = append(append(append(append(g.trace[:0], "00-"...), c.id[:]...), '-'), c.id[:16]...)
	g.trace = append(g.trace, "-01"...)
	h.SetBytesV("Traceparent", g.trace)
	dst = h.AppendBytes(dst)
	return append(dst, body...), nil
}

// response appends to dst the answer msg as the client gets it: its head
// parsed and written anew with the request's X-Request-Id.
func (g *gatewayWork) response(dst, msg []byte, c *conn) ([]byte, error) {
	h := &g.resp
	body, err := g.head(msg, h.Read)
	if err != nil {
		return dst, err
	}
	h.SetBytesV("X-Request-Id", c.id[:])
	dst = h.AppendBytes(dst)
	return append(dst, body...), nil
}

// randomID fills id with 32 random hex digits.
func randomID(id *[32]byte) {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		v := rand.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	hex.Encode(id[:], b[:])
}
