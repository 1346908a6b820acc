package config

import (
	"testing"
	"time"
)

// TestLoadWebSocket: a route's websocket is true, false, or a mapping of
// its settings, through aliases too; anything else is an error at its
// place.
func TestLoadWebSocket(t *testing.T) {
	route := func(ws string) string {
		return head + "  routes:\n    - id: r\n      path: /x\n      upstream: {url: http://b}\n      websocket: " + ws + "\n"
	}
	for _, c := range []struct {
		ws   string
		want *WebSocket
	}{
		{"true", &WebSocket{IdleTimeout: DefaultWebSocketIdleTimeout}},
		{"false", nil},
		{"{idleTimeout: 30s}", &WebSocket{IdleTimeout: 30 * time.Second}},
		{"{}", &WebSocket{IdleTimeout: DefaultWebSocketIdleTimeout}},
	} {
		got := mustLoad(t, "a.yaml", route(c.ws)).Routes[0].WebSocket
		if (got == nil) != (c.want == nil) || got != nil && got.IdleTimeout != c.want.IdleTimeout {
			t.Errorf("websocket: %s loaded as %+v, want %+v", c.ws, got, c.want)
		}
	}
	if v := mustLoad(t, "a.yaml", route("{idleTimeout: 30s}")).Redacted().Routes[0].WebSocket; v == nil || v.IdleTimeout != "30s" {
		t.Errorf("/config shows the route's websocket as %+v, want idleTimeout 30s", v)
	}
	aliased := head + "  routes:\n    - id: r\n      path: /x\n      upstream: {url: http://b}\n      websocket: &ws {idleTimeout: 1m}\n" +
		"    - id: s\n      path: /y\n      upstream: {url: http://b}\n      websocket: *ws\n"
	if ws := mustLoad(t, "a.yaml", aliased).Routes[1].WebSocket; ws == nil || ws.IdleTimeout != time.Minute {
		t.Errorf("websocket through an alias loaded as %+v", ws)
	}

	for _, c := range []struct {
		ws, pos string
		words   []string
	}{
		{"yes", "a.yaml:10:18", []string{"websocket must be true, false or a mapping with fields idleTimeout"}},
		{"{idleTimeout: 0s}", "a.yaml:10:32", []string{"websocket idleTimeout must be positive"}},
		{"{idleTimeout: soon}", "a.yaml:10:32", []string{"websocket idleTimeout must be a duration"}},
		{"{idle: 1m}", "a.yaml:10:19", []string{`unknown field "idle"`, "idleTimeout"}},
	} {
		expectOne(t, loadErrors(t, "a.yaml", route(c.ws)), c.pos, c.words...)
	}
}
