package hopbyhop

import "testing"

func TestIs(t *testing.T) {
	for _, name := range []string{"Connection", "connection", "Keep-Alive", "te", "TE", "Te", "trailer", "UPGRADE", "Proxy-Authorization"} {
		if !Is(name) {
			t.Errorf("Is(%q) = false", name)
		}
	}
	for _, name := range []string{"Host", "Content-Length", "Transfer-Encoding", "Trailers", "X-Upgrade", ""} {
		if Is(name) {
			t.Errorf("Is(%q) = true", name)
		}
	}
}
