package config

import (
	"os"
	"testing"
)

func TestLoadEnvSubstitution(t *testing.T) {
	t.Setenv("FG_LIMIT", "100")
	t.Setenv("FG_HOST", "orders")
	t.Setenv("FG_EMPTY", "")
	t.Setenv("FG_NULLISH", "null")
	t.Setenv("FG_TOKEN", "t0k: en\n- x")
	t.Setenv("FG_PORT", "9443")
	cfg := mustLoad(t, "a.yaml", head+`  listeners:
    - {name: web, port: $env.FG_PORT}
  routes:
    - id: r
      path: /x
      upstream:
        url: http://$env.FG_HOST.internal:8080
      policies:
        - custom:
            limit: $env.FG_LIMIT
            quoted: "$env.FG_LIMIT"
            header: "Bearer $env.FG_TOKEN"
            empty: x$env.FG_EMPTY
            nullish: $env.FG_NULLISH
            expr: $request.headers['x']
            $env.FG_HOST: key stays
`)
	if cfg.Listeners[0].Address != ":9443" {
		t.Errorf("listener address = %q", cfg.Listeners[0].Address)
	}
	if h := cfg.Routes[0].Upstream.Targets[0].Host; h != "orders.internal:8080" {
		t.Errorf("upstream host = %q", h)
	}
	// Policy parameters are left as written for the chain to decode; each
	// scalar expands as ExpandEnv says.
	params := cfg.Routes[0].Policies[0].Params
	want := map[string]struct{ value, tag string }{
		"limit":   {"100", "!!int"},
		"quoted":  {"100", "!!str"},
		"header":  {"Bearer t0k: en\n- x", "!!str"},
		"empty":   {"x", "!!str"},
		"nullish": {"null", "!!str"},
		"expr":    {"$request.headers['x']", "!!str"},
	}
	for i := 0; i+1 < len(params.Content); i += 2 {
		k, v := params.Content[i], params.Content[i+1]
		w, ok := want[k.Value]
		if !ok {
			if k.Value != "$env.FG_HOST" {
				t.Errorf("mapping key %q was changed", k.Value)
			}
			continue
		}
		if err := ExpandEnv(v); err != nil {
			t.Fatal(err)
		}
		if v.Value != w.value || v.ShortTag() != w.tag {
			t.Errorf("%s = %q %s, want %q %s", k.Value, v.Value, v.ShortTag(), w.value, w.tag)
		}
	}
}

func TestLoadEnvUnsetReportsEveryValue(t *testing.T) {
	os.Unsetenv("FG_UNSET_A")
	os.Unsetenv("FG_UNSET_B")
	got := loadErrors(t, "a.yaml", head+"  clients:\n    - {id: a, secret: $env.FG_UNSET_A}\n    - {id: b, secret: \"pre-$env.FG_UNSET_B\"}\n")
	if len(got) != 2 {
		t.Fatalf("got %d errors: %q", len(got), got)
	}
	expectOne(t, got[:1], "a.yaml:7:23", "FG_UNSET_A", "not set")
	expectOne(t, got[1:], "a.yaml:8:23", "FG_UNSET_B", "not set")
}

// TestLoadEnvBraced: ${env.NAME}, which expressions accept, is a reference in
// every other value too, not literal text: a client secret written so must
// not become the text "${env.NAME}".
func TestLoadEnvBraced(t *testing.T) {
	t.Setenv("FG_SECRET", "s3cret")
	t.Setenv("FG_HOST", "orders")
	t.Setenv("FG_PORT", "9443")
	cfg := mustLoad(t, "a.yaml", head+`  listeners:
    - name: web
      port: ${env.FG_PORT}
  routes:
    - {id: r, path: /x, upstream: {url: "http://${env.FG_HOST}-v2:8080", host: "${env.FG_HOST}$env.FG_HOST"}}
  clients:
    - {id: a, secret: "${env.FG_SECRET}"}
`)
	if cfg.Clients[0].Secret != "s3cret" {
		t.Errorf("secret = %q", cfg.Clients[0].Secret)
	}
	if u := cfg.Routes[0].Upstream; u.Targets[0].Host != "orders-v2:8080" || u.HostHeader != "ordersorders" {
		t.Errorf("upstream = %+v", u)
	}
	if cfg.Listeners[0].Address != ":9443" {
		t.Errorf("listener address = %q", cfg.Listeners[0].Address)
	}
	os.Unsetenv("FG_UNSET_C")
	for _, c := range []struct{ secret, words string }{
		{"${env.FG_UNSET_C}", "environment variable FG_UNSET_C is not set"},
		{"${env.FG_SECRET", "${env. is not closed"},
		{"${env.FG-SECRET}", `"FG-SECRET" is not an environment variable name`},
		{"${env.}", "$env. must be followed by a variable name"},
	} {
		got := loadErrors(t, "a.yaml", head+"  clients:\n    - {id: a, secret: \""+c.secret+"\"}\n")
		expectOne(t, got, "a.yaml:7:23", c.words)
	}
}
