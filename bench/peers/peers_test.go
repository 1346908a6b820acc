package peers

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func testParams(t *testing.T) Params {
	dir := t.TempDir()
	return Params{
		Listen: "127.0.0.1:18080", Host: "127.0.0.1", Upstream: "127.0.0.1:18081",
		Upstreams: []string{"127.0.0.1:18081", "127.0.0.1:18082", "127.0.0.1:18083"},
		Dir:       dir, CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key"),
		RatePerSecond: 1000000, NoFile: 4096, WorkerConnections: 2000, MaxConn: 1024, ClientID: "bench-client", ClientSecret: "bench-secret",
	}
}

func TestRenderFillsEveryField(t *testing.T) {
	p := testParams(t)
	for _, name := range Names {
		out, err := Render(name, p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		s := string(out)
		if strings.Contains(s, "{{") || strings.Contains(s, "<no value>") {
			t.Errorf("%s: unfilled field left in output:\n%s", name, s)
		}
		// Traefik's static file names the listener, its dynamic files the upstream.
		if name != TraefikDynamic && name != TraefikChainDynamic && !strings.Contains(s, p.Listen) {
			t.Errorf("%s: listen address missing from output", name)
		}
		if name != Traefik && !strings.Contains(s, p.Upstream) {
			t.Errorf("%s: upstream address missing from output", name)
		}
		// Every proxy that can sets what flexgate sets on each request, in
		// its own directive (comments do not count).
		for _, h := range forwardingDirectives(name) {
			if !containsLine(s, h) {
				t.Errorf("%s: no line starting %q", name, h)
			}
		}
		if name == NginxLB || name == HAProxyLB {
			for _, u := range p.Upstreams {
				if !strings.Contains(s, u) {
					t.Errorf("%s: origin %s missing from output", name, u)
				}
			}
		}
	}
}

func TestRenderUnknownNameSaysWhatExists(t *testing.T) {
	_, err := Render("envoy.yaml", Params{})
	if err == nil || !strings.Contains(err.Error(), Caddy) {
		t.Fatalf("got %v, want an error listing the known templates", err)
	}
}

// TestConfigsPassTheirOwnChecks runs each product's own config check on the
// rendered files where the product is installed (the harness installs them).
func TestConfigsPassTheirOwnChecks(t *testing.T) {
	p := testParams(t)
	if err := os.WriteFile(p.CertFile, []byte(testCert), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.KeyFile, []byte(testKey), 0o600); err != nil {
		t.Fatal(err)
	}
	check := func(bin, name string, args func(path string) []string, env ...string) {
		t.Run(name, func(t *testing.T) {
			if _, err := exec.LookPath(bin); err != nil {
				t.Skipf("%s not installed (make bench-compare installs it)", bin)
			}
			out, err := Render(name, p)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(p.Dir, name)
			if err := os.WriteFile(path, out, 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, args(path)...)
			cmd.Env = append(os.Environ(), env...)
			if msg, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s rejects %s: %v\n%s", bin, name, err, msg)
			}
		})
	}
	nginx := func(path string) []string {
		return []string{"-t", "-q", "-p", p.Dir, "-e", p.Dir + "/error.log", "-c", path}
	}
	check("nginx", Nginx, nginx)
	check("nginx", NginxTLS, nginx)
	check("nginx", NginxChain, nginx)
	check("nginx", NginxLB, nginx)
	haproxy := func(path string) []string { return []string{"-c", "-q", "-f", path} }
	check("haproxy", HAProxy, haproxy)
	check("haproxy", HAProxyLB, haproxy)
	// The Caddy configs use options of Caddy 2.11: they are checked with the
	// copy the harness built from the module (bench/compare/install.go),
	// when a run has built one here.
	caddyBin := ""
	if cache, err := os.UserCacheDir(); err == nil {
		found, _ := filepath.Glob(filepath.Join(cache, "flexgate-bench", "caddy-v2.*"))
		for _, f := range found {
			if !strings.HasSuffix(f, ".building") {
				caddyBin = f
			}
		}
	}
	caddy := func(path string) []string {
		return []string{"validate", "--adapter", "caddyfile", "--config", path}
	}
	if caddyBin == "" {
		caddyBin = "caddy (built from its module by make bench-compare)"
	}
	check(caddyBin, Caddy, caddy, "XDG_DATA_HOME="+p.Dir, "XDG_CONFIG_HOME="+p.Dir, "HOME="+p.Dir)
	check(caddyBin, CaddyChain, caddy, "XDG_DATA_HOME="+p.Dir, "XDG_CONFIG_HOME="+p.Dir, "HOME="+p.Dir)
}

// forwardingDirectives are how each peer's configs start the lines that set
// flexgate's forwarding headers (forwarding.tmpl). Caddy sets X-Forwarded-*
// by itself and has no placeholder for a traceparent; stock Traefik can set
// none of the others.
func forwardingDirectives(name string) []string {
	switch {
	case strings.HasPrefix(name, "nginx"):
		var d []string
		for _, h := range []string{"X-Forwarded-For", "Forwarded", "X-Real-IP", "X-Forwarded-Proto", "X-Forwarded-Host",
			"X-Forwarded-Port", "X-Request-ID", "traceparent"} {
			d = append(d, "proxy_set_header "+h+" ")
		}
		return append(d, "add_header X-Request-ID ")
	case strings.HasPrefix(name, "haproxy"):
		d := []string{"option forwardfor"}
		for _, h := range []string{"Forwarded", "X-Real-IP", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Port",
			"X-Request-ID", "traceparent"} {
			d = append(d, "http-request set-header "+h+" ")
		}
		return append(d, "http-response set-header X-Request-ID ")
	case strings.HasPrefix(name, "Caddyfile"):
		return []string{"header_up X-Real-IP ", "header_up X-Forwarded-Port ", "header_up Forwarded ",
			"header_up X-Request-ID ", "header_down X-Request-ID "}
	}
	return nil
}

// containsLine reports whether a line of s, leading space aside, starts
// with prefix.
func containsLine(s, prefix string) bool {
	for line := range strings.Lines(s) {
		if strings.HasPrefix(strings.TrimSpace(line), prefix) {
			return true
		}
	}
	return false
}
