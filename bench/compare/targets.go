package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/flexgate/flexgate/bench/peers"
	"github.com/flexgate/flexgate/bench/procs"
)

// Benchmark credentials: the one client the chain targets admit. The
// bearer token is an RS256 JWT made for the run (makeBenchJWT), which the
// local introspection endpoint calls active and jwt-validation verifies
// with the JWK set bench/upstream serves.
const (
	benchClientID     = "bench-client"
	benchClientSecret = "bench-secret"
	// The rate limits of the chain targets: high enough that neither
	// rejects, so that the limiter's cost is measured, not its 429s.
	// flexgate refuses more than a million a second; nginx counts per second.
	benchRatePerMinute = 60000000
	benchRatePerSecond = 1000000
)

// benchHeaders are sent by every wrk run to every target, so that all of
// them parse the same request; only the chain targets look at them.
// setBenchToken puts the run's token in.
var benchHeaders = []string{
	"client_id: " + benchClientID,
	"client_secret: " + benchClientSecret,
	"Authorization: Bearer bench-token",
	"X-Internal-Trace: 1",
}

// setBenchToken makes token the bearer token of every request.
func setBenchToken(token string) {
	for i, h := range benchHeaders {
		if strings.HasPrefix(h, "Authorization:") {
			benchHeaders[i] = "Authorization: Bearer " + token
		}
	}
}

// benchQuery makes the request valid for the seed's request-validation
// schema.
const benchQuery = "?productId=PRD-42&quantity=2"

// env is what every target's start needs.
type env struct {
	servers  *procs.Group
	dir      string
	upstream string
	// upstreams are three origins, upstream first, for the targets that
	// balance; nil when none is measured.
	upstreams []string
	// jwksFile is the JWK set the upstreams serve at /jwks.
	jwksFile string
	flexgate string // built binary; "" when it did not build
	// caddy and traefik are the peers built from their Go modules; ""
	// when they did not build (their targets are then skipped).
	caddy, traefik string
	// maxConns is the connection limit given to the servers that need one:
	// the idle connections of the connection-scale run plus room for wrk.
	maxConns int
	certFile string
	keyFile  string
	nofile   int
	// notef adds a line to the report's notes.
	notef func(format string, args ...any)
}

// Target is one thing wrk is pointed at.
type Target struct {
	// Name is short and stable: it is the column of the report and what
	// -targets selects.
	Name string
	// What says in words what is measured.
	What  string
	TLS   bool
	Chain bool
	// LB targets balance over three origins.
	LB bool
	// Flexgate targets are skipped when the gateway did not build.
	Flexgate bool
	start    func(e *env, name string) (*procs.Proc, string, error)

	proc *procs.Proc
	addr string
}

// plain targets proxy without TLS, policies or balancing (and the upstream
// itself): the ones measured at every connection count, open loop and with
// idle connections.
func (t *Target) plain() bool { return !t.TLS && !t.Chain && !t.LB }

// openLoop targets get the open-loop phase: the plain ones.
func (t *Target) openLoop() bool { return t.plain() }

// URL is where wrk sends the given path.
func (t *Target) URL(path string) string {
	scheme := "http"
	if t.TLS {
		scheme = "https"
	}
	return scheme + "://" + t.addr + path + benchQuery
}

// allTargets in the order rounds visit them.
func allTargets() []*Target {
	return []*Target{
		{Name: "direct", What: "the upstream alone (the ceiling)", start: startDirect},
		{Name: "flexgate", What: "flexgate, one route, no policies", Flexgate: true, start: startFlexgate(flexgatePassthrough)},
		{Name: "nginx", What: "nginx keep-alive reverse proxy", start: startPeer(peers.Nginx)},
		{Name: "haproxy", What: "HAProxy keep-alive reverse proxy", start: startPeer(peers.HAProxy)},
		{Name: "caddy", What: "Caddy 2 reverse_proxy (built from its Go module)", start: startPeer(peers.Caddy)},
		{Name: "traefik", What: "Traefik v3, one router (built from its Go module)", start: startTraefik(peers.TraefikDynamic)},
		{Name: "flexgate-chain", What: "flexgate with the seed's six-step policy chain and jwt-validation", Chain: true, Flexgate: true, start: startFlexgate(flexgateChain)},
		{Name: "flexgate-chain-flex", What: "flexgate with the seed's chain and jwt-validation-flex written as Flex Gateway resources", Chain: true, Flexgate: true, start: startFlexgate(flexgateChainFlex)},
		{Name: "nginx-chain", What: "nginx with limit_req and header rules (nearest equivalent)", Chain: true, start: startPeer(peers.NginxChain)},
		{Name: "caddy-chain", What: "Caddy with query, client and header rules; no rate limit (nearest equivalent)", Chain: true, start: startPeer(peers.CaddyChain)},
		{Name: "traefik-chain", What: "Traefik with rateLimit, rule checks and headers (nearest equivalent)", Chain: true, start: startTraefik(peers.TraefikChainDynamic)},
		{Name: "flexgate-tls", What: "flexgate terminating TLS, no policies", TLS: true, Flexgate: true, start: startFlexgate(flexgateTLS)},
		{Name: "nginx-tls", What: "nginx terminating TLS", TLS: true, start: startPeer(peers.NginxTLS)},
		{Name: "flexgate-lb3", What: "flexgate balancing three origins (least-request)", LB: true, Flexgate: true, start: startFlexgate(flexgateLB)},
		{Name: "nginx-lb3", What: "nginx balancing three origins (least_conn)", LB: true, start: startPeer(peers.NginxLB)},
		{Name: "haproxy-lb3", What: "HAProxy balancing three origins (leastconn)", LB: true, start: startPeer(peers.HAProxyLB)},
	}
}

// startUpstream starts bench/upstream, the origin every target forwards
// to, as process name.
func startUpstream(e *env, bin, name string) (*procs.Proc, string, error) {
	addr, err := procs.FreeAddr()
	if err != nil {
		return nil, "", err
	}
	args := []string{"-listen", addr}
	if e.jwksFile != "" {
		args = append(args, "-jwks", e.jwksFile)
	}
	p, err := e.servers.Start(name, e.dir, bin, args, nil)
	if err != nil {
		return nil, "", err
	}
	return p, addr, p.WaitReady(addr, false, 10*time.Second)
}

// startDirect measures the upstream itself: no new process.
func startDirect(e *env, _ string) (*procs.Proc, string, error) {
	return nil, e.upstream, nil
}

func startPeer(tmpl string) func(e *env, name string) (*procs.Proc, string, error) {
	return func(e *env, name string) (*procs.Proc, string, error) {
		addr, err := procs.FreeAddr()
		if err != nil {
			return nil, "", err
		}
		dir := filepath.Join(e.dir, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, "", err
		}
		host, _, _ := net.SplitHostPort(addr)
		conf, err := peers.Render(tmpl, peers.Params{
			Listen: addr, Host: host, Upstream: e.upstream, Upstreams: e.upstreams, Dir: dir,
			CertFile: e.certFile, KeyFile: e.keyFile, RatePerSecond: benchRatePerSecond, NoFile: e.nofile, WorkerConnections: e.nofile - 100,
			MaxConn: e.maxConns, ClientID: benchClientID, ClientSecret: benchClientSecret,
		})
		if err != nil {
			return nil, "", err
		}
		confPath := filepath.Join(dir, tmpl)
		if err := os.WriteFile(confPath, conf, 0o644); err != nil {
			return nil, "", err
		}
		var bin string
		var args, environ []string
		switch {
		case strings.HasPrefix(tmpl, "nginx"):
			bin, args = "nginx", []string{"-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", confPath}
		case tmpl == peers.HAProxy || tmpl == peers.HAProxyLB:
			bin, args = "haproxy", []string{"-db", "-f", confPath}
		case tmpl == peers.Caddy || tmpl == peers.CaddyChain:
			if e.caddy == "" {
				return nil, "", fmt.Errorf("caddy did not build")
			}
			bin, args = e.caddy, []string{"run", "--adapter", "caddyfile", "--config", confPath}
			environ = []string{"XDG_DATA_HOME=" + dir, "XDG_CONFIG_HOME=" + dir, "HOME=" + dir}
		default:
			return nil, "", fmt.Errorf("no way to start %s", tmpl)
		}
		p, err := e.servers.Start(name, dir, bin, args, environ)
		if err != nil {
			return nil, "", err
		}
		tls := tmpl == peers.NginxTLS
		return p, addr, p.WaitReady(addr, tls, 15*time.Second)
	}
}

// startTraefik starts the Traefik built from its module with the static
// configuration peers.Traefik and the given dynamic one. Traefik opens its
// port before the file provider has loaded the routers, so readiness is the
// benchmark request answering 200.
func startTraefik(dynamic string) func(e *env, name string) (*procs.Proc, string, error) {
	return func(e *env, name string) (*procs.Proc, string, error) {
		if e.traefik == "" {
			return nil, "", fmt.Errorf("traefik did not build")
		}
		addr, err := procs.FreeAddr()
		if err != nil {
			return nil, "", err
		}
		dir := filepath.Join(e.dir, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, "", err
		}
		params := peers.Params{Listen: addr, Upstream: e.upstream, Dir: dir, RatePerSecond: benchRatePerSecond,
			ClientID: benchClientID, ClientSecret: benchClientSecret}
		for _, f := range []struct{ tmpl, file string }{{peers.Traefik, "traefik.yaml"}, {dynamic, "dynamic.yaml"}} {
			conf, err := peers.Render(f.tmpl, params)
			if err != nil {
				return nil, "", err
			}
			if err := os.WriteFile(filepath.Join(dir, f.file), conf, 0o644); err != nil {
				return nil, "", err
			}
		}
		p, err := e.servers.Start(name, dir, e.traefik, []string{"--configFile=" + filepath.Join(dir, "traefik.yaml")}, nil)
		if err != nil {
			return nil, "", err
		}
		if err := p.WaitReady(addr, false, 15*time.Second); err != nil {
			return p, addr, err
		}
		t := &Target{Name: name, addr: addr}
		deadline := time.Now().Add(15 * time.Second)
		for {
			err := checkTarget(context.Background(), t)
			if err == nil {
				return p, addr, nil
			}
			if time.Now().After(deadline) {
				return p, addr, fmt.Errorf("%s did not route the benchmark request within 15s: %v\n%s", name, err, p.Tail())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// flexgateParams fill the flexgate config templates.
type flexgateParams struct {
	Upstream, Port, CertFile, KeyFile string
	// Listen is the address a Flex ApiInstance declares.
	Listen                 string
	Upstreams              []string
	ClientID, ClientSecret string
	Rate                   int
	MaxConns               int
}

// flexgatePassthrough is one route to the upstream with no policies.
// maxConnections is raised above the connection-scale run's idle
// connections plus wrk's, and the per-client limit (256 by default) is off
// in every flexgate config here: all the load comes from a few loopback
// addresses, and the peers have no such limit. Idle client connections live
// 300 s in every target (Caddy's default; the others are raised to it) so
// that the connection-scale run's first connections outlive opening the
// last.
const flexgatePassthrough = `apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata:
  name: bench-passthrough
spec:
  limits:
    maxConnections: {{.MaxConns}}
    maxConnectionsPerClient: 0
    idleTimeout: 300s
  routes:
    - id: passthrough
      path: ["/*"]
      upstream:
        url: "http://{{.Upstream}}"
`

// flexgateLB is one route balancing over three origins, with the default
// policy spelled out.
const flexgateLB = `apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata:
  name: bench-balanced
spec:
  limits:
    maxConnections: {{.MaxConns}}
    maxConnectionsPerClient: 0
    idleTimeout: 300s
  routes:
    - id: balanced
      path: ["/*"]
      upstream:
        loadBalancing: least-request
        targets:
{{- range .Upstreams}}
          - url: "http://{{.}}"
{{- end}}
`

// flexgateTLS is the passthrough route behind an HTTPS listener, as the
// seed's gateway-config.yaml declares one.
const flexgateTLS = `apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata:
  name: bench-tls
spec:
  limits:
    maxConnections: {{.MaxConns}}
    maxConnectionsPerClient: 0
    idleTimeout: 300s
  listeners:
    - name: https-main
      address: 127.0.0.1
      port: {{.Port}}
      protocol: HTTPS
      tls:
        mode: TERMINATE
        certificates:
          - certFile: {{.CertFile}}
            keyFile: {{.KeyFile}}
  routes:
    - id: passthrough
      path: ["/*"]
      upstream:
        url: "http://{{.Upstream}}"
`

// flexgateChain is examples/secured-gateway-config.yaml with its
// addresses made local, a client registry added, and the rate limit raised
// from 100 per minute so that the benchmark measures the limiter rather than
// its 429s. Its policies are appended from chainPolicies; compare_test.go
// checks they still match the example's.
const flexgateChain = `apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata:
  name: secured-product-gateway
spec:
  limits:
    maxConnections: {{.MaxConns}}
    maxConnectionsPerClient: 0
    idleTimeout: 300s
  clients:
    - id: {{.ClientID}}
      secret: {{.ClientSecret}}
  routes:
    - id: product-catalog
      path: ["/api/products/*"]
      methods: ["GET"]
      upstream:
        url: "http://{{.Upstream}}"
      policies:
`

// chainPolicies are the seed's six steps (seven entries), in its order,
// and jwt-validation after token-introspection (extra: not in the seed):
// the bearer token is a real RS256 JWT whose signature and claims are
// checked, with keys from the JWK set the upstream serves (fetched once; a
// verified token is cached until its exp).
var chainPolicies = []struct {
	name, yaml string
	extra      bool
}{
	{"rate-limiting", `        - rate-limiting:
            limit: {{.Rate}}
            period: 60
            identifier: $request.remoteAddress
`, false},
	{"request-validation", `        - request-validation:
            schema: |
              {
                "type": "object",
                "required": ["productId", "quantity"],
                "properties": {
                  "productId": { "type": "string", "pattern": "^PRD-[0-9]+$" },
                  "quantity":  { "type": "integer", "minimum": 1 }
                },
                "additionalProperties": false // deny unlisted fields — strict allow-list
              }
`, false},
	{"client-id-enforcement", `        - client-id-enforcement
`, false},
	{"token-introspection", `        - token-introspection:
            url: "http://{{.Upstream}}/introspect"
            clientId: $env.INTROSPECTION_CLIENT_ID
            clientSecret: $env.INTROSPECTION_CLIENT_SECRET
            cacheTtl: 60
`, false},
	{"jwt-validation", `        - jwt-validation:
            jwks: {url: "http://{{.Upstream}}/jwks"}
            issuer: https://bench.flexgate.local
            audiences: [products]
`, true},
	{"request-headers-remove", `        - request-headers-remove:
            headers: ["X-Internal-*", "Authorization"]
`, false},
	{"request-headers-set", `        - request-headers-set:
            headers:
              X-API-Version: "v1"
              X-Gateway-Time: $datetime
`, false},
	{"response-headers-set", `        - response-headers-set:
            headers:
              Strict-Transport-Security: "max-age=31536000; includeSubDomains"
              X-Content-Type-Options: "nosniff"
`, false},
}

// flexgateChainFlex is the seed's chain written as Flex Gateway writes it:
// one ApiInstance with its upstream inline and a PolicyBinding per step,
// ordered by `order`. The steps Flex has a policy for use Flex's names and
// parameters (rate-limiting-flex, client-id-enforcement-flex,
// oauth2-token-introspection-flex, jwt-validation-flex as flexgate-chain
// adds jwt-validation, header-removal-flex, header-injection-flex);
// request-validation has no Flex counterpart that
// checks query parameters against a JSON schema, so the binding names
// flexgate's own. Flex's expressions have no clock, so the request does not
// get the X-Gateway-Time header flexgate-chain stamps with $datetime: one
// header fewer. The client registry comes from --clients, as Flex users of
// flexgate run it. It answers what a user switching from Flex pays for
// keeping their files: its ratio to flexgate-chain.
const flexgateChainFlex = `apiVersion: gateway.mulesoft.com/v1alpha1
kind: ApiInstance
metadata:
  name: secured-product-gateway
spec:
  address: http://{{.Listen}}/
  services:
    products:
      address: http://{{.Upstream}}/
      routes:
        - rules:
            - path: (/api/products/.*)
              methods: GET
---
apiVersion: gateway.mulesoft.com/v1alpha1
kind: PolicyBinding
metadata:
  name: rate-limit
spec:
  targetRef:
    name: secured-product-gateway
  policyRef:
    name: rate-limiting-flex
  order: 1
  config:
    rateLimits:
      - maximumRequests: {{.Rate}}
        timePeriodInMilliseconds: 60000
    keySelector: "#[attributes.remoteAddress]"
    clusterizable: false
---
apiVersion: gateway.mulesoft.com/v1alpha1
kind: PolicyBinding
metadata:
  name: validate-query
spec:
  targetRef:
    name: secured-product-gateway
  policyRef:
    name: request-validation
  order: 2
  config:
    schema: |
      {
        "type": "object",
        "required": ["productId", "quantity"],
        "properties": {
          "productId": { "type": "string", "pattern": "^PRD-[0-9]+$" },
          "quantity":  { "type": "integer", "minimum": 1 }
        },
        "additionalProperties": false
      }
---
apiVersion: gateway.mulesoft.com/v1alpha1
kind: PolicyBinding
metadata:
  name: client-id
spec:
  targetRef:
    name: secured-product-gateway
  policyRef:
    name: client-id-enforcement-flex
  order: 3
---
apiVersion: gateway.mulesoft.com/v1alpha1
kind: PolicyBinding
metadata:
  name: introspection
spec:
  targetRef:
    name: secured-product-gateway
  policyRef:
    name: oauth2-token-introspection-flex
  order: 4
  config:
    introspectionURL: http://{{.Upstream}}/introspect
    authorizationValue: $INTROSPECTION_AUTHORIZATION
    validatedTokenTTL: 60
    skipClientIdValidation: true
---
apiVersion: gateway.mulesoft.com/v1alpha1
kind: PolicyBinding
metadata:
  name: jwt
spec:
  targetRef:
    name: secured-product-gateway
  policyRef:
    name: jwt-validation-flex
  order: 5
  config:
    jwtKeyOrigin: jwks
    jwksUrl: http://{{.Upstream}}/jwks
    validateAudClaim: true
    supportedAudiences: products
    skipClientIdValidation: true
---
apiVersion: gateway.mulesoft.com/v1alpha1
kind: PolicyBinding
metadata:
  name: strip-internal
spec:
  targetRef:
    name: secured-product-gateway
  policyRef:
    name: header-removal-flex
  order: 6
  config:
    inboundHeaders: ["x-internal-.*", "authorization"]
---
apiVersion: gateway.mulesoft.com/v1alpha1
kind: PolicyBinding
metadata:
  name: set-headers
spec:
  targetRef:
    name: secured-product-gateway
  policyRef:
    name: header-injection-flex
  order: 7
  config:
    inboundHeaders:
      - key: X-API-Version
        value: v1
    outboundHeaders:
      - key: Strict-Transport-Security
        value: "max-age=31536000; includeSubDomains"
      - key: X-Content-Type-Options
        value: nosniff
`

// chainConfig is flexgateChain with every policy not in skip.
func chainConfig(skip map[string]bool) string {
	var b strings.Builder
	b.WriteString(flexgateChain)
	for _, p := range chainPolicies {
		if !skip[p.name] {
			b.WriteString(p.yaml)
		}
	}
	return b.String()
}

// unknownPolicyRE finds the policies a flexgate build does not have yet in
// `flexgate validate` output.
var unknownPolicyRE = regexp.MustCompile(`unknown policy "([a-z-]+)"`)

// missingPolicies asks the flexgate binary which of the chain's policies
// it lacks, so that the chain target runs with the rest (the report says
// which were left out) rather than not at all.
func missingPolicies(ctx context.Context, bin, dir string, p flexgateParams) ([]string, error) {
	conf, err := renderFlexgate(chainConfig(nil), p)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "chain-probe.yaml")
	if err := os.WriteFile(path, conf, 0o644); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "validate", path)
	cmd.Env = append(os.Environ(), flexgateEnv...)
	out, err := cmd.CombinedOutput()
	if err == nil {
		return nil, nil
	}
	var missing []string
	for _, m := range unknownPolicyRE.FindAllStringSubmatch(string(out), -1) {
		missing = append(missing, m[1])
	}
	if len(missing) == 0 {
		return nil, fmt.Errorf("flexgate validate rejects the chain config: %s", strings.TrimSpace(string(out)))
	}
	return missing, nil
}

// flexgateEnv is the environment the seed's $env references need.
var flexgateEnv = []string{
	"INTROSPECTION_CLIENT_ID=bench-introspector",
	"INTROSPECTION_CLIENT_SECRET=bench-introspector-secret",
	// The same credentials as the Authorization value Flex's
	// oauth2-token-introspection-flex sends as written.
	"INTROSPECTION_AUTHORIZATION=Basic YmVuY2gtaW50cm9zcGVjdG9yOmJlbmNoLWludHJvc3BlY3Rvci1zZWNyZXQ=",
}

// renderFlexgate fills one of the templates above.
func renderFlexgate(src string, p flexgateParams) ([]byte, error) {
	t, err := template.New("flexgate").Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	if err := t.Execute(&b, p); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}

func startFlexgate(src string) func(e *env, name string) (*procs.Proc, string, error) {
	return func(e *env, name string) (*procs.Proc, string, error) {
		if e.flexgate == "" {
			return nil, "", fmt.Errorf("flexgate did not build")
		}
		addr, err := procs.FreeAddr()
		if err != nil {
			return nil, "", err
		}
		_, port, _ := net.SplitHostPort(addr)
		params := flexgateParams{
			Upstream: e.upstream, Upstreams: e.upstreams, Port: port, Listen: addr, CertFile: e.certFile, KeyFile: e.keyFile,
			ClientID: benchClientID, ClientSecret: benchClientSecret, Rate: benchRatePerMinute,
			MaxConns: e.maxConns,
		}
		dir := filepath.Join(e.dir, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, "", err
		}
		if src == flexgateChain {
			missing, err := missingPolicies(context.Background(), e.flexgate, dir, params)
			if err != nil {
				return nil, "", err
			}
			if len(missing) > 0 {
				skip := map[string]bool{}
				for _, m := range missing {
					skip[m] = true
				}
				src = chainConfig(skip)
				e.notef("%s ran without %s: this flexgate build does not register them yet", name, strings.Join(missing, ", "))
			} else {
				src = chainConfig(nil)
			}
		}
		conf, err := renderFlexgate(src, params)
		if err != nil {
			return nil, "", err
		}
		confPath := filepath.Join(dir, "gateway.yaml")
		if err := os.WriteFile(confPath, conf, 0o644); err != nil {
			return nil, "", err
		}
		admin, err := procs.FreeAddr()
		if err != nil {
			return nil, "", err
		}
		// No drain delay: nothing routes traffic here, and stopping must be quick.
		args := []string{"run", "--config", confPath, "--admin-addr", admin, "--log-level", "warn",
			"--drain-delay", "0s", "--shutdown-timeout", "2s"}
		switch src {
		case flexgateTLS:
		case flexgateChainFlex:
			// The ApiInstance declares the listener; the client registry
			// and the connection cap are flags, as for any Flex file.
			clients := filepath.Join(dir, "clients.yaml")
			reg := fmt.Sprintf("clients:\n  - id: %s\n    secret: %s\n", benchClientID, benchClientSecret)
			if err := os.WriteFile(clients, []byte(reg), 0o600); err != nil {
				return nil, "", err
			}
			args = append(args, "--clients", clients, "--max-connections", strconv.Itoa(params.MaxConns))
		default:
			args = append(args, "--listen", addr)
		}
		p, err := e.servers.Start(name, dir, e.flexgate, args, flexgateEnv)
		if err != nil {
			return nil, "", err
		}
		return p, addr, p.WaitReady(addr, src == flexgateTLS, 15*time.Second)
	}
}
