package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // RFC 6455's accept
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/proxy"
	"github.com/flexgate/flexgate/proxy/proxytest"
)

// chatServer is a WebSocket upstream: every message a client sends goes to
// every client connected, the sender too. It keeps each server-side
// connection, and reports how each ended.
type chatServer struct {
	URL    string // ws://host:port
	Addr   string
	joined chan *websocket.Conn
	// ended receives the close status each connection ended with (-1:
	// no close frame).
	ended chan websocket.StatusCode
	// headers receives the request headers of each upgrade.
	headers chan http.Header

	mu    sync.Mutex
	conns map[*websocket.Conn]struct{}
}

func startChat(t *testing.T, tlsConf *tls.Config) *chatServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &chatServer{Addr: ln.Addr().String(), joined: make(chan *websocket.Conn, 16),
		ended: make(chan websocket.StatusCode, 16), headers: make(chan http.Header, 16), conns: map[*websocket.Conn]struct{}{}}
	s.URL = "ws://" + s.Addr
	srv := &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 5 * time.Second}
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
		s.URL = "wss://" + s.Addr
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

func (s *chatServer) serve(w http.ResponseWriter, r *http.Request) {
	s.headers <- r.Header.Clone()
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"chat"}})
	if err != nil {
		return
	}
	c.SetReadLimit(4 << 20)
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	s.joined <- c
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.CloseNow()
	}()
	for {
		typ, msg, err := c.Read(context.Background())
		if err != nil {
			s.ended <- websocket.CloseStatus(err)
			return
		}
		s.mu.Lock()
		all := make([]*websocket.Conn, 0, len(s.conns))
		for o := range s.conns {
			all = append(all, o)
		}
		s.mu.Unlock()
		for _, o := range all {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = o.Write(ctx, typ, msg)
			cancel()
		}
	}
}

func wsRouteYAML(upstream, extra string) string {
	return fmt.Sprintf(preamble+`  routes:
    - id: chat
      path: ["/chat/*"]
      upstream: {url: "%s"}
      websocket: true
      policies:
        - response-headers-set:
            headers: {X-Chat-Policy: ran}
%s`, upstream, extra)
}

func dialWS(t *testing.T, url string, opts *websocket.DialOptions) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", url, err, status)
	}
	c.SetReadLimit(4 << 20)
	return c
}

func readWS(t *testing.T, c *websocket.Conn) (websocket.MessageType, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	typ, msg, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return typ, msg
}

func writeWS(t *testing.T, c *websocket.Conn, typ websocket.MessageType, msg []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Write(ctx, typ, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// waitMetric waits until /metrics has a line matching re.
func waitMetric(t *testing.T, gw *proxytest.Gateway, re string) {
	t.Helper()
	rx := regexp.MustCompile(`(?m)^` + re + `$`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp := proxytest.Do(t, "GET", gw.AdminURL+"/metrics", nil, nil)
		body := string(resp.Body())
		fasthttp.ReleaseResponse(resp)
		if rx.MatchString(body) {
			return
		}
		if time.Now().After(deadline) {
			var ws []string
			for _, l := range strings.Split(body, "\n") {
				if strings.HasPrefix(l, "flexgate_websocket") {
					ws = append(ws, l)
				}
			}
			t.Fatalf("no metric matching %s within 10 s; WebSocket series:\n%s", re, strings.Join(ws, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWebSocketChat: two real WebSocket clients chat through the gateway
// with a real WebSocket server; a 1 MiB message crosses whole; a close
// from a client and one from the server each reach the other end with
// their status.
func TestWebSocketChat(t *testing.T) {
	chat := startChat(t, nil)
	gw := proxytest.Start(t, wsRouteYAML("http://"+chat.Addr, ""))
	url := strings.Replace(gw.URL, "http://", "ws://", 1) + "/chat/room"

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	alice, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"chat"}})
	if err != nil {
		t.Fatal(err)
	}
	alice.SetReadLimit(4 << 20)
	if resp.StatusCode != 101 || resp.Header.Get("X-Chat-Policy") != "ran" || alice.Subprotocol() != "chat" {
		t.Fatalf("handshake: %d, X-Chat-Policy %q, subprotocol %q; want 101 with the response policy's header and the subprotocol",
			resp.StatusCode, resp.Header.Get("X-Chat-Policy"), alice.Subprotocol())
	}
	h := receive(t, chat.headers, "upgrade at the upstream")
	if h.Get("X-Request-Id") == "" || h.Get("Sec-Websocket-Protocol") != "chat" || h.Get("X-Forwarded-For") == "" {
		t.Errorf("the upstream got headers %v; want the gateway's X-Request-Id, X-Forwarded-For and the client's subprotocol", h)
	}
	aliceAtServer := receive(t, chat.joined, "alice joining")
	bob := dialWS(t, url, &websocket.DialOptions{Subprotocols: []string{"chat"}})
	receive(t, chat.headers, "bob's upgrade")
	bobAtServer := receive(t, chat.joined, "bob joining")
	waitMetric(t, gw, `flexgate_websocket_connections\{route="chat"\} 2`)

	writeWS(t, alice, websocket.MessageText, []byte("hello bob"))
	for _, c := range []*websocket.Conn{alice, bob} {
		if typ, msg := readWS(t, c); typ != websocket.MessageText || string(msg) != "hello bob" {
			t.Fatalf("got %v %q, want the text hello bob", typ, msg)
		}
	}
	big := make([]byte, 1<<20)
	_, _ = rand.Read(big)
	writeWS(t, bob, websocket.MessageBinary, big)
	for _, c := range []*websocket.Conn{alice, bob} {
		if typ, msg := readWS(t, c); typ != websocket.MessageBinary || !bytes.Equal(msg, big) {
			t.Fatalf("the 1 MiB message arrived as %v of %d bytes, equal %v", typ, len(msg), bytes.Equal(msg, big))
		}
	}

	// Alice leaves: the server reads her close status.
	go func() { _ = alice.Close(websocket.StatusNormalClosure, "bye") }()
	if code := receive(t, chat.ended, "alice's close at the server"); code != websocket.StatusNormalClosure {
		t.Errorf("the server saw alice close with %d, want 1000", code)
	}
	_ = aliceAtServer
	// The server closes bob's connection: bob reads its status.
	go func() { _ = bobAtServer.Close(4000, "room closed") }()
	rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer rcancel()
	_, _, err = bob.Read(rctx)
	if code := websocket.CloseStatus(err); code != 4000 {
		t.Errorf("bob's read ended with %v (status %d), want the server's 4000", err, code)
	}
	receive(t, chat.ended, "bob's end at the server")
	waitMetric(t, gw, `flexgate_websocket_connections\{route="chat"\} 0`)
	waitMetric(t, gw, `flexgate_websocket_upgrades_total\{route="chat",result="ok"\} 2`)
}

// wsKey is a fixed Sec-WebSocket-Key and the accept it calls for.
const wsKey = "dGhlIHNhbXBsZSBub25jZQ=="

func acceptOf(key string) string {
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")) //nolint:gosec // RFC 6455
	return base64.StdEncoding.EncodeToString(sum[:])
}

func upgradeRequest(path string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + wsKey + "\r\n\r\n"
}

// frame is one unfragmented WebSocket frame; mask as a client must.
func frame(payload string, mask bool) []byte {
	b := []byte{0x81, byte(len(payload))}
	if !mask {
		return append(b, payload...)
	}
	key := [4]byte{1, 2, 3, 4}
	b[1] |= 0x80
	b = append(b, key[:]...)
	for i := 0; i < len(payload); i++ {
		b = append(b, payload[i]^key[i%4])
	}
	return b
}

// readFrame reads one short frame and returns its payload, unmasked.
func readFrame(br *bufio.Reader) (string, error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return "", err
	}
	n := int(h[1] & 0x7f)
	var key [4]byte
	if h[1]&0x80 != 0 {
		if _, err := io.ReadFull(br, key[:]); err != nil {
			return "", err
		}
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(br, p); err != nil {
		return "", err
	}
	if h[1]&0x80 != 0 {
		for i := range p {
			p[i] ^= key[i%4]
		}
	}
	return string(p), nil
}

// rawWSUpstream accepts upgrades and runs script on each connection once
// it has read the request: the script answers as it likes.
func rawWSUpstream(t *testing.T, script func(c net.Conn, br *bufio.Reader, req *http.Request)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(20 * time.Second))
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				script(c, br, req)
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

func switching(req *http.Request) string {
	return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		acceptOf(req.Header.Get("Sec-WebSocket-Key")) + "\r\n\r\n"
}

// openRaw sends raw to the gateway in one write and reads the answer's
// head.
func openRaw(t *testing.T, gw *proxytest.Gateway, raw []byte) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	return c, br, resp
}

// TestWebSocketBytesAroundTheSwitch: bytes the upstream sends in the same
// write as its 101, and bytes the client sends in the same write as its
// request, are relayed, not lost in a reader's buffer.
func TestWebSocketBytesAroundTheSwitch(t *testing.T) {
	got := make(chan string, 1)
	up := rawWSUpstream(t, func(c net.Conn, br *bufio.Reader, req *http.Request) {
		if _, err := io.WriteString(c, switching(req)+string(frame("early from upstream", false))); err != nil {
			return
		}
		msg, err := readFrame(br)
		if err != nil {
			msg = "error: " + err.Error()
		}
		got <- msg
		_, _ = c.Write(frame("got "+msg, false))
	})
	gw := proxytest.Start(t, wsRouteYAML(up, ""))
	_, br, resp := openRaw(t, gw, append([]byte(upgradeRequest("/chat/x")), frame("early from client", true)...))
	if resp.StatusCode != 101 || resp.Header.Get("Sec-Websocket-Accept") != acceptOf(wsKey) ||
		!strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") || !strings.EqualFold(resp.Header.Get("Connection"), "upgrade") {
		t.Fatalf("answer %d %v; want 101 with Upgrade, Connection and the accept", resp.StatusCode, resp.Header)
	}
	if resp.Header.Get("Content-Length") != "" || resp.Header.Get("Transfer-Encoding") != "" {
		t.Errorf("the 101 announces a body: %v", resp.Header)
	}
	if msg, err := readFrame(br); err != nil || msg != "early from upstream" {
		t.Fatalf("first frame after the 101: %q, %v", msg, err)
	}
	if msg := receive(t, got, "the client's early frame at the upstream"); msg != "early from client" {
		t.Fatalf("the upstream read %q", msg)
	}
	if msg, err := readFrame(br); err != nil || msg != "got early from client" {
		t.Fatalf("the upstream's answer: %q, %v", msg, err)
	}
}

// TestWebSocketHalfClose: a client that closes its sending side has that
// end passed on to the upstream, which can still answer before it closes.
func TestWebSocketHalfClose(t *testing.T) {
	up := rawWSUpstream(t, func(c net.Conn, br *bufio.Reader, req *http.Request) {
		_, _ = io.WriteString(c, switching(req))
		msg, _ := readFrame(br)
		rest, err := io.ReadAll(br) // until the client's end of stream
		if err != nil || len(rest) > 0 {
			return
		}
		_, _ = c.Write(frame("after your end: "+msg, false))
	})
	gw := proxytest.Start(t, wsRouteYAML(up, ""))
	c, br, resp := openRaw(t, gw, []byte(upgradeRequest("/chat/x")))
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if _, err := c.Write(frame("last words", true)); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if msg, err := readFrame(br); err != nil || msg != "after your end: last words" {
		t.Fatalf("after the client's half-close: %q, %v", msg, err)
	}
	if rest, err := io.ReadAll(br); err != nil || len(rest) > 0 {
		t.Fatalf("then %q, %v; want the end of the stream", rest, err)
	}
	// The client's end came first.
	waitMetric(t, gw, `flexgate_websocket_closes_total\{route="chat",reason="client"\} 1`)
}

// TestWebSocketUpstreamHalfClose: an upstream that closes its sending side
// has that end passed on to the client, which can still send before it
// closes. The gateway then sets the client's read deadline while another
// goroutine reads from it (run with -race).
func TestWebSocketUpstreamHalfClose(t *testing.T) {
	got := make(chan string, 1)
	up := rawWSUpstream(t, func(c net.Conn, br *bufio.Reader, req *http.Request) {
		_, _ = io.WriteString(c, switching(req))
		if c.(*net.TCPConn).CloseWrite() != nil {
			return
		}
		msg, _ := readFrame(br)
		got <- msg
	})
	gw := proxytest.Start(t, wsRouteYAML(up, ""))
	c, br, resp := openRaw(t, gw, []byte(upgradeRequest("/chat/x")))
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if rest, err := io.ReadAll(br); err != nil || len(rest) > 0 {
		t.Fatalf("got %q, %v; want the upstream's end of stream", rest, err)
	}
	if _, err := c.Write(frame("after your end", true)); err != nil {
		t.Fatal(err)
	}
	if msg := receive(t, got, "message at the upstream"); msg != "after your end" {
		t.Fatalf("the upstream got %q", msg)
	}
}

// TestWebSocketBadSwitchIs502: an upstream's 101 that does not complete the
// client's handshake, or has a header line other answers may not have, is
// answered 502, and nothing is tunnelled.
func TestWebSocketBadSwitchIs502(t *testing.T) {
	for _, c := range []struct {
		name   string
		answer func(req *http.Request) string
	}{
		{"wrong accept", func(*http.Request) string {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + acceptOf("other") + "\r\n\r\n"
		}},
		{"no accept", func(*http.Request) string {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
		}},
		{"another protocol", func(req *http.Request) string {
			return strings.Replace(switching(req), "Upgrade: websocket", "Upgrade: h2c", 1)
		}},
		{"no Connection: Upgrade", func(req *http.Request) string {
			return strings.Replace(switching(req), "Connection: Upgrade\r\n", "", 1)
		}},
		// Header lines a client could read otherwise than the gateway, as
		// in any other answer.
		{"a space in a field name", func(req *http.Request) string {
			return strings.Replace(switching(req), "\r\n\r\n", "\r\nSec-WebSocket Protocol: chat\r\n\r\n", 1)
		}},
		{"a folded field", func(req *http.Request) string {
			return strings.Replace(switching(req), "\r\n\r\n", "\r\nX-Chat: a\r\n b\r\n\r\n", 1)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			up := rawWSUpstream(t, func(conn net.Conn, _ *bufio.Reader, req *http.Request) {
				_, _ = io.WriteString(conn, c.answer(req)+string(frame("not for you", false)))
				_, _ = io.Copy(io.Discard, conn)
			})
			gw := proxytest.Start(t, wsRouteYAML(up, ""))
			_, _, resp := openRaw(t, gw, []byte(upgradeRequest("/chat/x")))
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			if resp.StatusCode != 502 || resp.Header.Get(proxy.HeaderError) != "upstream_protocol_error" || bytes.Contains(body, []byte("not for you")) {
				t.Fatalf("got %d %q %s; want 502 upstream_protocol_error", resp.StatusCode, resp.Header.Get(proxy.HeaderError), body)
			}
			waitMetric(t, gw, `flexgate_websocket_upgrades_total\{route="chat",result="failed"\} 1`)
		})
	}
}

// TestWebSocketHandshakeChecked: a request that asks to upgrade but is no
// valid WebSocket handshake is answered 400 before any policy or upstream
// sees it; a route without websocket forwards an upgrade request as a
// plain one, without its Upgrade header.
func TestWebSocketHandshakeChecked(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, fmt.Sprintf(preamble+`  routes:
    - id: chat
      path: ["/chat/*"]
      upstream: {url: "%s"}
      websocket: {idleTimeout: 1m}
    - id: plain
      path: ["/plain/*"]
      upstream: {url: "%s"}
`, up.URL, up.URL))
	valid := upgradeRequest("/chat/x")
	for _, c := range []struct{ name, raw string }{
		{"POST", strings.Replace(valid, "GET", "POST", 1)},
		{"HTTP/1.0", strings.Replace(valid, "HTTP/1.1", "HTTP/1.0", 1)},
		{"no key", strings.Replace(valid, "Sec-WebSocket-Key: "+wsKey+"\r\n", "", 1)},
		{"short key", strings.Replace(valid, wsKey, "c2hvcnQ=", 1)},
		{"two keys", strings.Replace(valid, "\r\n\r\n", "\r\nSec-WebSocket-Key: "+wsKey+"\r\n\r\n", 1)},
		{"version 8", strings.Replace(valid, "Version: 13", "Version: 8", 1)},
		{"a body", strings.Replace(valid, "\r\n\r\n", "\r\nContent-Length: 2\r\n\r\nhi", 1)},
	} {
		_, _, resp := openRaw(t, gw, []byte(c.raw))
		if resp.StatusCode != 400 || resp.Header.Get(proxy.HeaderError) != "websocket_handshake" {
			t.Errorf("%s: %d %q, want 400 websocket_handshake", c.name, resp.StatusCode, resp.Header.Get(proxy.HeaderError))
		}
		if c.name == "version 8" && resp.Header.Get("Sec-Websocket-Version") != "13" {
			t.Errorf("a wrong version is not told the one spoken: %v", resp.Header)
		}
	}
	if n := up.Count.Load(); n != 0 {
		t.Fatalf("the upstream received %d invalid upgrades", n)
	}
	_, _, resp := openRaw(t, gw, []byte(upgradeRequest("/plain/x")))
	if resp.StatusCode != 200 {
		t.Fatalf("upgrade on a route without websocket: %d", resp.StatusCode)
	}
	if h := up.Last(t).Header; h["Upgrade"] != "" || h["Sec-Websocket-Key"] != wsKey {
		t.Errorf("a route without websocket forwarded Upgrade %q (want none) and key %q", h["Upgrade"], h["Sec-Websocket-Key"])
	}
	waitMetric(t, gw, `flexgate_websocket_upgrades_total\{route="chat",result="bad_handshake"\} 7`)
}

// TestWebSocketPolicies: an upgrade passes the route's policies: one that
// refuses it is answered without an upgrade and the upstream never sees
// it; a rate limit counts upgrades.
func TestWebSocketPolicies(t *testing.T) {
	chat := startChat(t, nil)
	gw := proxytest.Start(t, fmt.Sprintf(preamble+`  clients:
    - id: app
      secret: app-secret-value
  routes:
    - id: guarded
      path: ["/guarded/*"]
      upstream: {url: "http://%s"}
      websocket: true
      policies:
        - client-id-enforcement
    - id: limited
      path: ["/limited/*"]
      upstream: {url: "http://%s"}
      websocket: true
      policies:
        - rate-limiting: {limit: 1, period: 3600}
`, chat.Addr, chat.Addr))
	base := strings.Replace(gw.URL, "http://", "ws://", 1)
	dial := func(path string, h http.Header) (*websocket.Conn, *http.Response, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return websocket.Dial(ctx, base+path, &websocket.DialOptions{HTTPHeader: h})
	}
	if _, resp, err := dial("/guarded/x", nil); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("upgrade without credentials: %v, %v; want 401", err, resp)
	}
	// The refusal is the gateway's usual JSON error.
	_, _, resp := openRaw(t, gw, []byte(upgradeRequest("/guarded/x")))
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != 401 || resp.Header.Get(proxy.HeaderError) == "" || resp.Header.Get("Upgrade") != "" ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || !bytes.Contains(body, []byte(`"reason":`)) {
		t.Fatalf("a refused upgrade got %d %v %s; want the JSON 401 with X-Flexgate-Error", resp.StatusCode, resp.Header, body)
	}
	c, _, err := dial("/guarded/x", http.Header{"Client_id": {"app"}, "Client_secret": {"app-secret-value"}})
	if err != nil {
		t.Fatalf("upgrade with credentials: %v", err)
	}
	defer c.CloseNow()
	receive(t, chat.headers, "the admitted upgrade")

	l, _, err := dial("/limited/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.CloseNow()
	receive(t, chat.headers, "the first limited upgrade")
	if _, resp, err := dial("/limited/x", nil); err == nil || resp == nil || resp.StatusCode != 429 {
		t.Fatalf("second upgrade over a limit of 1: %v, %v; want 429", err, resp)
	}
	select {
	case h := <-chat.headers:
		t.Fatalf("a refused upgrade reached the upstream: %v", h)
	default:
	}
	waitMetric(t, gw, `flexgate_websocket_upgrades_total\{route="guarded",result="rejected"\} 2`)
	waitMetric(t, gw, `flexgate_websocket_upgrades_total\{route="limited",result="rejected"\} 1`)
}

// TestWebSocketShutdownClosesTunnels: once the drain delay is over, the
// gateway closes its WebSocket connections, instead of waiting for them
// until the shutdown timeout: each end reads a close frame 1001 (going
// away).
func TestWebSocketShutdownClosesTunnels(t *testing.T) {
	chat := startChat(t, nil)
	gw := proxytest.Start(t, wsRouteYAML("http://"+chat.Addr, ""))
	c := dialWS(t, strings.Replace(gw.URL, "http://", "ws://", 1)+"/chat/x", nil)
	defer c.CloseNow()
	receive(t, chat.joined, "the connection at the server")
	writeWS(t, c, websocket.MessageText, []byte("ping"))
	readWS(t, c)

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
		defer cancel()
		done <- gw.GW.Shutdown(ctx)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("the client's connection ended with %v, want a close frame 1001", err)
	}
	if code := receive(t, chat.ended, "the end at the server"); code != websocket.StatusGoingAway {
		t.Errorf("the server's connection ended with status %d, want 1001", code)
	}
	if err := receive(t, done, "the shutdown's end"); err != nil {
		t.Fatalf("shutdown waited for the WebSocket connection: %v", err)
	}
}

// TestWebSocketIdleTimeout: a connection on which nothing moves for the
// route's idle timeout is closed, both sides.
func TestWebSocketIdleTimeout(t *testing.T) {
	chat := startChat(t, nil)
	gw := proxytest.Start(t, strings.Replace(wsRouteYAML("http://"+chat.Addr, ""), "websocket: true", "websocket: {idleTimeout: 300ms}", 1))
	_, br, resp := openRaw(t, gw, []byte(upgradeRequest("/chat/x")))
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if rest, err := io.ReadAll(br); err != nil || len(rest) > 0 {
		t.Fatalf("an idle connection read %q, %v; want its end", rest, err)
	}
	receive(t, chat.ended, "the end at the server")
	waitMetric(t, gw, `flexgate_websocket_closes_total\{route="chat",reason="idle_timeout"\} 1`)
}

// TestWebSocketCountsAgainstClientConnections: a WebSocket connection
// keeps its place under maxConnectionsPerClient until it closes.
func TestWebSocketCountsAgainstClientConnections(t *testing.T) {
	chat := startChat(t, nil)
	gw := proxytest.Start(t, wsRouteYAML("http://"+chat.Addr, "  limits: {maxConnectionsPerClient: 1}\n"))
	c, _, resp := openRaw(t, gw, []byte(upgradeRequest("/chat/x")))
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	_, _, resp = openRaw(t, gw, []byte("GET /chat/x HTTP/1.1\r\nHost: x\r\n\r\n"))
	if resp.StatusCode != 503 || resp.Header.Get(proxy.HeaderError) != "client_connection_limit" {
		t.Fatalf("a second connection beside a WebSocket one under a limit of 1: %d %q", resp.StatusCode, resp.Header.Get(proxy.HeaderError))
	}
	c.Close()
	receive(t, chat.ended, "the end at the server")
	waitMetric(t, gw, `flexgate_websocket_connections\{route="chat"\} 0`)
	_, _, resp = openRaw(t, gw, []byte(upgradeRequest("/chat/x")))
	if resp.StatusCode != 101 {
		t.Fatalf("once the WebSocket connection closed: %d", resp.StatusCode)
	}
}

// TestWebSocketTLS: wss through an HTTPS listener to an https upstream
// whose certificate the gateway verifies.
func TestWebSocketTLS(t *testing.T) {
	dir := t.TempDir()
	ca := proxytest.NewCA(t, "upstream CA")
	upCert, err := tls.X509KeyPair(ca.Issue(t, "127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	chat := startChat(t, &tls.Config{Certificates: []tls.Certificate{upCert}, MinVersion: tls.VersionTLS12})
	caFile := proxytest.WriteFile(t, dir, "ca.crt", ca.PEM)
	certFile, keyFile := proxytest.WriteCert(t, dir, "gateway")
	gw := proxytest.Start(t, fmt.Sprintf(preamble+`  listeners:
    - name: https
      port: 8443
      protocol: HTTPS
      tls: {certificates: [{certFile: %s, keyFile: %s}]}
  routes:
    - id: chat
      path: ["/chat/*"]
      upstream: {url: "https://%s", caFile: "%s"}
      websocket: true
`, certFile, keyFile, chat.Addr, caFile))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the test's own certificate
	c := dialWS(t, strings.Replace(gw.URL, "https://", "wss://", 1)+"/chat/x", &websocket.DialOptions{HTTPClient: client})
	receive(t, chat.joined, "the connection at the server")
	for i := range 3 {
		msg := []byte("over TLS " + strconv.Itoa(i))
		writeWS(t, c, websocket.MessageText, msg)
		if _, got := readWS(t, c); !bytes.Equal(got, msg) {
			t.Fatalf("got %q, want %q", got, msg)
		}
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	writeWS(t, c, websocket.MessageBinary, big)
	if _, got := readWS(t, c); !bytes.Equal(got, big) {
		t.Fatalf("a 1 MiB message over TLS arrived as %d bytes", len(got))
	}
	go func() { _ = c.Close(websocket.StatusGoingAway, "") }()
	if code := receive(t, chat.ended, "the close at the server"); code != websocket.StatusGoingAway {
		t.Fatalf("the server saw close status %d, want 1001", code)
	}
	waitMetric(t, gw, `flexgate_websocket_connections\{route="chat"\} 0`)
}

// listenersChatYAML is a chat route to chatAddr behind listener a, and b
// too when both, with the idle timeout idle.
func listenersChatYAML(chatAddr, idle string, both bool) string {
	ls := "    - {name: a, port: 8081, protocol: HTTP}\n"
	if both {
		ls += "    - {name: b, port: 8082, protocol: HTTP}\n"
	}
	return preamble + "  listeners:\n" + ls + "  limits: {idleTimeout: " + idle + "}\n" +
		strings.TrimPrefix(wsRouteYAML("http://"+chatAddr, ""), preamble)
}

// TestWebSocketThroughReloads: a reload that builds the listeners anew on
// their sockets (a server limit changed) keeps the WebSocket connections
// open; one that removes a listener closes those that came through it.
func TestWebSocketThroughReloads(t *testing.T) {
	chat := startChat(t, nil)
	cfg := func(idle string, both bool) string { return listenersChatYAML(chat.Addr, idle, both) }
	gw := proxytest.Start(t, cfg("90s", true))
	a := dialWS(t, strings.Replace(gw.URLs["a"], "http://", "ws://", 1)+"/chat/x", nil)
	defer a.CloseNow()
	receive(t, chat.joined, "a's connection")
	b := dialWS(t, strings.Replace(gw.URLs["b"], "http://", "ws://", 1)+"/chat/x", nil)
	defer b.CloseNow()
	receive(t, chat.joined, "b's connection")

	if err := gw.Reload(t, cfg("60s", false)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// b's listener is gone: so is its connection (the chat server may
	// have sent it nothing, or a's message below).
	for {
		if _, _, err := b.Read(ctx); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatal("the connection through the removed listener stayed open")
			}
			break
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(gw.Logs.String(), `"msg":"listener drained"`) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the old listeners did not drain:\n%s", gw.Logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	writeWS(t, a, websocket.MessageText, []byte("still here"))
	if _, msg := readWS(t, a); string(msg) != "still here" {
		t.Fatalf("after the reload a read %q", msg)
	}
	waitMetric(t, gw, `flexgate_websocket_closes_total\{route="chat",reason="shutdown"\} 1`)
}

// TestWebSocketClosedWithItsPortAfterRebuilds: a connection that outlived
// one reload (its listener built anew on its socket) still closes when a
// later reload removes that port.
func TestWebSocketClosedWithItsPortAfterRebuilds(t *testing.T) {
	chat := startChat(t, nil)
	cfg := func(idle string, both bool) string { return listenersChatYAML(chat.Addr, idle, both) }
	gw := proxytest.Start(t, cfg("90s", true))
	b := dialWS(t, strings.Replace(gw.URLs["b"], "http://", "ws://", 1)+"/chat/x", nil)
	defer b.CloseNow()
	receive(t, chat.joined, "b's connection")
	if err := gw.Reload(t, cfg("60s", true)); err != nil {
		t.Fatal(err)
	}
	writeWS(t, b, websocket.MessageText, []byte("kept"))
	if _, msg := readWS(t, b); string(msg) != "kept" {
		t.Fatalf("after the rebuild b read %q", msg)
	}
	if err := gw.Reload(t, cfg("60s", false)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if _, _, err := b.Read(ctx); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatal("the connection through the removed port stayed open")
			}
			if code := websocket.CloseStatus(err); code != websocket.StatusGoingAway {
				t.Fatalf("closed with %v (status %d), want a close frame 1001", err, code)
			}
			break
		}
	}
}

// TestWebSocketHalfClosedIsBounded: once the client has ended its stream
// (here: closed its socket), an upstream that neither answers nor closes
// keeps the tunnel for halfClosedIdle (5 s), not the whole idle timeout.
func TestWebSocketHalfClosedIsBounded(t *testing.T) {
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	up := rawWSUpstream(t, func(c net.Conn, br *bufio.Reader, req *http.Request) {
		_, _ = io.WriteString(c, switching(req))
		_, _ = io.ReadAll(br) // the client's end: then nothing, as if it had not noticed
		<-hold
	})
	gw := proxytest.Start(t, wsRouteYAML(up, ""))
	c, _, resp := openRaw(t, gw, []byte(upgradeRequest("/chat/x")))
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	c.Close()
	waitMetric(t, gw, `flexgate_websocket_closes_total\{route="chat",reason="idle_timeout"\} 1`)
	waitMetric(t, gw, `flexgate_websocket_connections\{route="chat"\} 0`)
}

// TestWebSocketCircuitBreaker: a WebSocket connection holds its place
// under the upstream's circuitBreaker thresholds (an upstream connection,
// a request in flight) until it closes.
func TestWebSocketCircuitBreaker(t *testing.T) {
	for _, limit := range []string{"maxConnections", "maxRequests"} {
		t.Run(limit, func(t *testing.T) {
			chat := startChat(t, nil)
			gw := proxytest.Start(t, fmt.Sprintf(preamble+`  routes:
    - id: chat
      path: ["/chat/*"]
      upstream:
        url: "http://%s"
        circuitBreaker: {%s: 1}
      websocket: true
`, chat.Addr, limit))
			c, _, resp := openRaw(t, gw, []byte(upgradeRequest("/chat/x")))
			if resp.StatusCode != 101 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			receive(t, chat.joined, "the first connection at the server")
			_, _, resp = openRaw(t, gw, []byte(upgradeRequest("/chat/x")))
			if resp.StatusCode != 503 || resp.Header.Get(proxy.HeaderError) != "upstream_overloaded" {
				t.Fatalf("a second WebSocket connection under %s: 1: %d %q, want 503 upstream_overloaded",
					limit, resp.StatusCode, resp.Header.Get(proxy.HeaderError))
			}
			if v := metricValue(t, gw, `flexgate_upstream_overloaded_total{upstream="http://`+chat.Addr+`",limit="`+limit+`"}`); v != 1 {
				t.Errorf("flexgate_upstream_overloaded_total{limit=%q} = %v, want 1", limit, v)
			}
			c.Close()
			receive(t, chat.ended, "the end at the server")
			waitMetric(t, gw, `flexgate_websocket_connections\{route="chat"\} 0`)
			_, _, resp = openRaw(t, gw, []byte(upgradeRequest("/chat/x")))
			if resp.StatusCode != 101 {
				t.Fatalf("once the first closed: %d", resp.StatusCode)
			}
		})
	}
}

// TestWebSocketUpstreamRefuses: an upstream that answers an upgrade
// without switching has its answer relayed as any response, body and all.
func TestWebSocketUpstreamRefuses(t *testing.T) {
	const body = `{"error":"no such room"}`
	up := rawWSUpstream(t, func(c net.Conn, _ *bufio.Reader, _ *http.Request) {
		_, _ = io.WriteString(c, "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: "+
			strconv.Itoa(len(body))+"\r\n\r\n"+body)
	})
	gw := proxytest.Start(t, wsRouteYAML(up, ""))
	_, _, resp := openRaw(t, gw, []byte(upgradeRequest("/chat/x")))
	got, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != 404 || string(got) != body || resp.Header.Get("Upgrade") != "" ||
		resp.Header.Get(proxy.HeaderError) != "" || resp.Header.Get("X-Chat-Policy") != "ran" {
		t.Fatalf("got %d %v %q; want the upstream's 404 and body, through the response policies", resp.StatusCode, resp.Header, got)
	}
	waitMetric(t, gw, `flexgate_websocket_upgrades_total\{route="chat",result="upstream_refused"\} 1`)
}

// TestWebSocketOtherUpgrades: on a route with websocket, an Upgrade to
// another protocol (h2c) is not proxied: it goes on as a plain request,
// without its Upgrade and Connection headers.
func TestWebSocketOtherUpgrades(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, wsRouteYAML(up.URL, ""))
	_, _, resp := openRaw(t, gw, []byte("GET /chat/x HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"+
		"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n"))
	if resp.StatusCode != 200 || resp.Header.Get("Upgrade") != "" {
		t.Fatalf("an h2c upgrade got %d %v; want the upstream's plain 200", resp.StatusCode, resp.Header)
	}
	if h := up.Last(t).Header; h["Upgrade"] != "" || h["Http2-Settings"] != "" || strings.Contains(strings.ToLower(h["Connection"]), "upgrade") {
		t.Errorf("the upstream got Upgrade %q, HTTP2-Settings %q, Connection %q; want none", h["Upgrade"], h["Http2-Settings"], h["Connection"])
	}
}

// TestWebSocketClientThatNeverReads: a client that stops reading while the
// upstream sends has its connection closed after limits.writeTimeout, and
// the upstream's with it: the upstream's writes stop.
func TestWebSocketClientThatNeverReads(t *testing.T) {
	stopped := make(chan error, 1)
	up := rawWSUpstream(t, func(c net.Conn, _ *bufio.Reader, req *http.Request) {
		_, _ = io.WriteString(c, switching(req))
		chunk := bytes.Repeat([]byte{0x82, 0x7e, 0xff, 0xff}, 1<<14) // frame headers as payload: bytes are bytes
		var err error
		for sent := 0; err == nil && sent < 1<<30; sent += len(chunk) {
			_, err = c.Write(chunk)
		}
		stopped <- err
	})
	gw := proxytest.Start(t, wsRouteYAML(up, "  limits: {writeTimeout: 500ms}\n"))
	c, _, resp := openRaw(t, gw, []byte(upgradeRequest("/chat/x")))
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	defer c.Close()
	if err := receive(t, stopped, "the upstream's writes to end"); err == nil {
		t.Fatal("the upstream sent 1 GiB to a client that reads nothing")
	}
	waitMetric(t, gw, `flexgate_websocket_closes_total\{route="chat",reason="write_timeout"\} 1`)
	waitMetric(t, gw, `flexgate_websocket_connections\{route="chat"\} 0`)
}

// TestWebSocketShutdownMidFrame: a close frame the gateway sends on
// shutdown goes between two frames, never inside one: the upstream, which
// has half a frame from the client, gets the rest of it, then the close
// frame; the client, to which nothing is under way, gets its close frame
// at once.
func TestWebSocketShutdownMidFrame(t *testing.T) {
	half := make(chan struct{})
	got := make(chan []byte, 1)
	up := rawWSUpstream(t, func(c net.Conn, br *bufio.Reader, req *http.Request) {
		_, _ = io.WriteString(c, switching(req))
		b := make([]byte, 6+10)
		if _, err := io.ReadFull(br, b[:6+5]); err != nil {
			got <- []byte("error: " + err.Error())
			return
		}
		close(half)
		rest, _ := io.ReadAll(br) // until the gateway closes
		got <- append(b[:11], rest...)
	})
	gw := proxytest.Start(t, wsRouteYAML(up, ""))
	c, br, resp := openRaw(t, gw, []byte(upgradeRequest("/chat/x")))
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	whole := frame("0123456789", true) // 6 bytes of header, 10 of payload
	if _, err := c.Write(whole[:11]); err != nil {
		t.Fatal(err)
	}
	receive(t, half, "half the frame at the upstream")
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
		defer cancel()
		done <- gw.GW.Shutdown(ctx)
	}()
	// The client's close frame comes at once, unmasked: 1001.
	var closeFrame [4]byte
	if _, err := io.ReadFull(br, closeFrame[:]); err != nil || closeFrame != [4]byte{0x88, 0x02, 0x03, 0xe9} {
		t.Fatalf("the client read % x, %v; want a close frame 1001", closeFrame, err)
	}
	if _, err := c.Write(whole[11:]); err != nil {
		t.Fatal(err)
	}
	b := receive(t, got, "what the upstream read")
	if len(b) != len(whole)+8 || !bytes.Equal(b[:len(whole)], whole) {
		t.Fatalf("the upstream read % x; want the client's frame whole, then a masked close frame", b)
	}
	cl := b[len(whole):]
	if cl[0] != 0x88 || cl[1] != 0x82 || cl[6]^cl[2] != 0x03 || cl[7]^cl[3] != 0xe9 {
		t.Fatalf("after the client's frame the upstream read % x; want a masked close frame 1001", cl)
	}
	if err := receive(t, done, "the shutdown's end"); err != nil {
		t.Fatal(err)
	}
}

// TestWebSocketHugeFrame: a frame longer than anything the gateway could
// hold (its header says 2⁶² bytes) streams through as it comes.
func TestWebSocketHugeFrame(t *testing.T) {
	const sent = 16 << 20
	got := make(chan int64, 1)
	up := rawWSUpstream(t, func(c net.Conn, br *bufio.Reader, req *http.Request) {
		_, _ = io.WriteString(c, switching(req))
		n, _ := io.Copy(io.Discard, io.LimitReader(br, 14+sent))
		got <- n
	})
	gw := proxytest.Start(t, wsRouteYAML(up, ""))
	c, _, resp := openRaw(t, gw, []byte(upgradeRequest("/chat/x")))
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	hdr := []byte{0x82, 0x80 | 127, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4} // masked, 2⁶² bytes
	if _, err := c.Write(hdr); err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for range sent / len(chunk) {
		if _, err := c.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if n := receive(t, got, "the bytes at the upstream"); n != 14+sent {
		t.Fatalf("the upstream read %d bytes of the frame, want %d", n, 14+sent)
	}
}
