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
	if h := cfg.Routes[0].Upstream.Host; h != "orders.internal:8080" {
		t.Errorf("upstream host = %q", h)
	}
	var p struct {
		Limit   int               `yaml:"limit"`
		Quoted  string            `yaml:"quoted"`
		Header  string            `yaml:"header"`
		Empty   string            `yaml:"empty"`
		Nullish string            `yaml:"nullish"`
		Expr    string            `yaml:"expr"`
		Rest    map[string]string `yaml:",inline"`
	}
	if err := cfg.Routes[0].Policies[0].Params.Decode(&p); err != nil {
		t.Fatal(err)
	}
	if p.Limit != 100 || p.Quoted != "100" || p.Header != "Bearer t0k: en\n- x" || p.Empty != "x" ||
		p.Nullish != "null" || p.Expr != "$request.headers['x']" || p.Rest["$env.FG_HOST"] != "key stays" {
		t.Errorf("params = %+v", p)
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
