package all_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// rawDo sends one raw HTTP/1.1 request to addr on a new connection and
// reads the answer: header names repeat, and are spelt, exactly as written.
func rawDo(t *testing.T, addr, raw string) *fasthttp.Response {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	resp := new(fasthttp.Response)
	if err := resp.Read(bufio.NewReader(conn)); err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	return resp
}

// TestSeedRefusesAmbiguousCredentials sends the seed's chain requests whose
// credential and header names an upstream could read differently from the
// policies: a second copy, or a spelling with '_' for '-'. No such request
// may reach the upstream with an identity or header no policy checked.
func TestSeedRefusesAmbiguousCredentials(t *testing.T) {
	s := startSeed(t, 1000)
	var mu sync.Mutex
	var seen string // the header block of the upstream's last request
	s.up.Handler = func(ctx *fasthttp.RequestCtx) {
		mu.Lock()
		seen = ctx.Request.Header.String()
		mu.Unlock()
		ctx.SetBodyString(`{"ok":true}`)
	}
	addr := s.gw.URL[len("http://"):]
	const good = "GET /api/products/PRD-42?productId=PRD-42&quantity=2 HTTP/1.1\r\nHost: shop\r\n" +
		"client_id: shop-app\r\nclient_secret: shop-secret\r\nAuthorization: Bearer good-token\r\n"

	refused := func(name, extra, policy, header string) {
		t.Helper()
		before := s.up.Count.Load()
		resp := rawDo(t, addr, good+extra+"Connection: close\r\n\r\n")
		if resp.StatusCode() != 400 || string(resp.Header.Peek("X-Flexgate-Error")) != "duplicate_credentials" {
			t.Errorf("%s: %d %q, want 400 duplicate_credentials; body %s", name, resp.StatusCode(),
				resp.Header.Peek("X-Flexgate-Error"), resp.Body())
		}
		var body struct{ Error, Policy string }
		if err := json.Unmarshal(resp.Body(), &body); err != nil {
			t.Errorf("%s: body is not JSON: %s", name, resp.Body())
		}
		if body.Policy != policy || !strings.Contains(body.Error, "the "+header+" header more than once") {
			t.Errorf("%s: body names policy %q, error %q; want %s about %s", name, body.Policy, body.Error, policy, header)
		}
		if s.up.Count.Load() != before {
			t.Errorf("%s: the request reached the upstream", name)
		}
	}
	refused("second client_id", "client_id: other-app\r\n", "client-id-enforcement", "client_id")
	refused("client-id beside client_id", "Client-Id: other-app\r\n", "client-id-enforcement", "client_id")
	refused("second client_secret", "CLIENT_SECRET: x\r\n", "client-id-enforcement", "client_secret")
	refused("second Authorization", "Authorization: Bearer forged\r\n", "token-introspection", "Authorization")

	// Headers the route removes or sets do not survive in another spelling
	// or a second copy.
	resp := rawDo(t, addr, good+"X-Internal_Baz: secret\r\nX_Internal_Qux: secret\r\nX-API-Version: forged-1\r\n"+
		"X-API-Version: forged-2\r\nX_API_Version: forged-3\r\nConnection: close\r\n\r\n")
	if resp.StatusCode() != 200 {
		t.Fatalf("good caller with extra headers: %d %s", resp.StatusCode(), resp.Body())
	}
	upstreamSaw := func(name string) {
		t.Helper()
		mu.Lock()
		got := seen
		mu.Unlock()
		for _, forged := range []string{"secret", "forged", "Internal_", "_api_"} {
			if strings.Contains(strings.ToLower(got), strings.ToLower(forged)) {
				t.Errorf("%s: upstream saw %q:\n%s", name, forged, got)
			}
		}
		if n := strings.Count(got, "X-Api-Version: v1\r\n"); n != 1 || strings.Count(strings.ToLower(got), "x-api-version") != 1 {
			t.Errorf("%s: upstream saw X-API-Version %d times as v1, want exactly once and nothing else:\n%s", name, n, got)
		}
	}
	upstreamSaw("copies and spellings")

	// A header the client announces as a trailer is set in the trailer
	// section, and joins the header block again when the gateway drops
	// Trailer: the client's copy must be gone by then, or it comes first.
	resp = rawDo(t, addr, good+"X-API-Version: forged\r\nTrailer: X-Api-Version\r\nConnection: close\r\n\r\n")
	if resp.StatusCode() != 200 {
		t.Fatalf("good caller announcing a trailer: %d %s", resp.StatusCode(), resp.Body())
	}
	upstreamSaw("announced as a trailer")
}
