package flex_test

import (
	"strings"
	"testing"

	"github.com/flexgate/flexgate/config"
)

// api is an ApiInstance with one service; its spec starts on line 6.
func api(name, address string, more ...string) string {
	return doc("ApiInstance", name) + "  address: " + address + "\n  services:\n    up:\n      address: http://127.0.0.1:9000\n" + strings.Join(more, "")
}

// TestErrors: each problem is an error at the line and column where it is
// written, that says what is wrong and how to fix it.
func TestErrors(t *testing.T) {
	cert, key := selfSigned(t)
	t.Setenv("FLEX_TEST_CRT", cert)
	t.Setenv("FLEX_TEST_KEY", key)
	for _, c := range []struct {
		name  string
		files []string
		want  [][]string
	}{
		{"port 0", []string{"a.yaml", api("a", "http://0.0.0.0:0/shop")},
			[][]string{{"a.yaml:6:12", `ApiInstance address "http://0.0.0.0:0/shop" has port 0: the gateway would listen on a port the kernel picks, ` +
				"which its clients cannot know; use a port from 1 to 65535"}}},
		{"unknown field", []string{"a.yaml", api("a", "http://0.0.0.0:8081", "  service: {}\n")},
			[][]string{{"a.yaml:10:3", `unknown field "service" in ApiInstance spec`, "known fields: address, policies, services"}}},
		{"Extension", []string{"a.yaml", api("a", "http://0.0.0.0:8081") + "---\n" + doc("Extension", "custom-flex") + "  extends: [{name: proxy-wasm-filter}]\n"},
			[][]string{{"a.yaml:12:7", "kind: Extension", "is not supported", "remove this document"}}},
		{"policyRef kind Extension", []string{"a.yaml", api("a", "http://0.0.0.0:8081", "  policies:\n    - policyRef: {kind: Extension, name: custom-flex}\n")},
			[][]string{{"a.yaml:11:25", "policyRef kind: Extension", "which flexgate does not run"}}},
		{"not supported yet", []string{"a.yaml", api("a", "http://0.0.0.0:8081", "  policies:\n    - policyRef: {name: ldap-authentication-flex}\n")},
			[][]string{{"a.yaml:11:25", `policy "ldap-authentication-flex" (LDAP authentication) is not supported yet`}}},
		{"unknown policy", []string{"a.yaml", api("a", "http://0.0.0.0:8081", "  policies:\n    - policyRef: {name: rate-limit-flex}\n")},
			[][]string{{"a.yaml:11:25", `unknown policy "rate-limit-flex"`, "rate-limiting-flex", "flexgate's own: client-id-enforcement"}}},
		{"dangling ApiInstance", []string{"a.yaml", api("a", "http://0.0.0.0:8081"), "b.yaml",
			doc("PolicyBinding", "b") + "  targetRef: {name: nope}\n  policyRef: {name: header-removal-flex}\n  config: {inboundHeaders: [x]}\n"},
			[][]string{{"b.yaml:6:21", "PolicyBinding default/b targets ApiInstance default/nope, which is not defined", "default/a"}}},
		{"dangling in another namespace", []string{"a.yaml", api("a", "http://0.0.0.0:8081"), "b.yaml",
			doc("PolicyBinding", "b", "  namespace: shop\n") + "  targetRef: {name: a}\n  policyRef: {name: header-removal-flex}\n  config: {inboundHeaders: [x]}\n"},
			[][]string{{"b.yaml:7:21", "targets ApiInstance shop/a, which is not defined", "default/a"}}},
		{"dangling Service", []string{"a.yaml", doc("ApiInstance", "a") + "  address: http://0.0.0.0:8081\n", "b.yaml",
			doc("PolicyBinding", "r") + "  targetRef: {name: a}\n  policyRef: {name: route}\n  config: {destinationRef: {name: orders}}\n"},
			[][]string{{"b.yaml:8:35", "route destinationRef names Service default/orders, which is not defined"}}},
		{"duplicate", []string{"a.yaml", api("a", "http://0.0.0.0:8081"), "b.yaml", api("a", "http://0.0.0.0:8082")},
			[][]string{{"b.yaml:4:9", "ApiInstance default/a is already defined at ", "a.yaml:4:9"}}},
		{"inline service named like a Service", []string{"a.yaml", api("a", "http://0.0.0.0:8081"), "b.yaml", doc("Service", "a-up") + "  address: http://x\n"},
			[][]string{{"b.yaml:4:9", "Service default/a-up is already defined at ", "a.yaml:8:5"}}},
		{"base paths clash", []string{"a.yaml", api("cats", "http://0.0.0.0:8081/cats"), "b.yaml", api("dogs", "http://0.0.0.0:8081/cats/dogs")},
			[][]string{{"b.yaml:6:12", `ApiInstance default/dogs (base path "/cats/dogs") clashes with ApiInstance default/cats at `, `a.yaml:6:12 (base path "/cats") on port 8081`}}},
		{"root clashes with any", []string{"a.yaml", api("a", "http://0.0.0.0:8081"), "b.yaml", api("b", "http://0.0.0.0:8081/b")},
			[][]string{{"b.yaml:6:12", `(base path "/b") clashes with ApiInstance default/a`, `(base path "/")`}}},
		{"http and https on one port", []string{"a.yaml", api("a", "http://0.0.0.0:8081/a"), "b.yaml", api("b", "https://0.0.0.0:8081/b")},
			[][]string{{"b.yaml:6:12", "ApiInstance default/b is https on port 8081, and ApiInstance default/a at ", "is http there"}}},
		{"https without tls", []string{"a.yaml", api("a", "https://0.0.0.0:8443")},
			[][]string{{"a.yaml:6:12", "ApiInstance default/a is https but no tls policy is bound to it"}}},
		{"tls on http", []string{"a.yaml", api("a", "http://0.0.0.0:8081"), "b.yaml",
			doc("PolicyBinding", "t") + "  targetRef: {name: a}\n  policyRef: {name: tls}\n  config: {certificate: {crt: $FLEX_TEST_CRT, key: $FLEX_TEST_KEY}}\n"},
			[][]string{{"b.yaml:7:21", "tls is bound to ApiInstance default/a, whose address is http://"}}},
		{"unset variable in a policy's config", []string{"a.yaml", api("a", "http://0.0.0.0:8081", "  policies:\n    - policyRef: {name: header-injection-flex}\n      config: {inboundHeaders: [{key: x-k, value: $FLEXGATE_TEST_UNSET}]}\n")},
			[][]string{{"a.yaml:12:51", "environment variable FLEXGATE_TEST_UNSET is not set", "($FLEXGATE_TEST_UNSET is used here)"}}},
		{"unset variable in an address", []string{"a.yaml", doc("Service", "s") + "  address: $FLEXGATE_TEST_UNSET\n"},
			[][]string{{"a.yaml:6:12", "environment variable FLEXGATE_TEST_UNSET is not set"}}},
		{"bad rule", []string{"a.yaml", doc("ApiInstance", "a") + "  address: http://0.0.0.0:8081\n  services:\n    up:\n      address: http://x\n      routes:\n        - rules: [{path: \"/a(?=b)\"}]\n"},
			[][]string{{"a.yaml:11:26", `rule path "/a(?=b)" is not a regular expression flexgate can run`, "RE2"}}},
		{"apiVersion typo", []string{"a.yaml", strings.Replace(api("a", "http://0.0.0.0:8081"), "gateway.mulesoft.com/v1alpha1", "gateway.mulesoft.com.v1alpha1", 1)},
			[][]string{{"a.yaml:1:13", `unsupported apiVersion "gateway.mulesoft.com.v1alpha1"`, "write a / before the version: gateway.mulesoft.com/v1alpha1"}}},
		{"tls-outbound inline", []string{"a.yaml", api("a", "http://0.0.0.0:8081", "  policies:\n    - policyRef: {name: tls-outbound}\n")},
			[][]string{{"a.yaml:11:25", "tls-outbound applies to a Service's connections: bind it with a PolicyBinding whose targetRef is {kind: Service"}}},
		{"tls-outbound on an ApiInstance", []string{"a.yaml", api("a", "http://0.0.0.0:8081"), "b.yaml",
			doc("PolicyBinding", "t") + "  targetRef: {name: a}\n  policyRef: {name: tls-outbound}\n  config: {skipValidation: true}\n"},
			[][]string{{"b.yaml:7:21", "tls-outbound applies to a Service's connections; set targetRef kind: Service"}}},
		{"tls-outbound on an http Service", []string{"a.yaml", api("a", "http://0.0.0.0:8081"), "b.yaml",
			doc("PolicyBinding", "t") + "  targetRef: {kind: Service, name: a-up}\n  policyRef: {name: tls-outbound}\n  config: {skipValidation: true}\n"},
			[][]string{{"b.yaml:7:21", "tls-outbound is bound to Service default/a-up, whose address is http://127.0.0.1:9000"}}},
		{"a request policy on a Service", []string{"a.yaml", api("a", "http://0.0.0.0:8081"), "b.yaml",
			doc("PolicyBinding", "t") + "  targetRef: {kind: Service, name: a-up}\n  policyRef: {name: header-removal-flex}\n  config: {inboundHeaders: [x]}\n"},
			[][]string{{"b.yaml:7:21", "header-removal-flex runs on requests, which a Service does not see; bind it to an ApiInstance"}}},
		{"rules on tls", []string{"a.yaml", api("a", "https://0.0.0.0:8443", "  policies:\n    - policyRef: {name: tls}\n      rules: [{path: /x}]\n      config: {certificate: {crt: x, key: y}}\n")},
			// Both problems, as the Gateway kind reports every one.
			[][]string{{"a.yaml:12:14", "tls applies to every request of what it is bound to; remove rules"},
				{"a.yaml:13:29", "tls certificate: key holds no PEM private key"}}},
		{"services and a route policy", []string{"a.yaml", api("a", "http://0.0.0.0:8081"), "b.yaml",
			doc("Service", "s") + "  address: http://x\n---\n" + doc("PolicyBinding", "r") + "  targetRef: {name: a}\n  policyRef: {name: route}\n  config: {destinationRef: {name: s}}\n"},
			[][]string{{"b.yaml:14:21", "ApiInstance default/a has services, which route its requests, so route would never apply"}}},
		{"log level", []string{"a.yaml", api("a", "http://0.0.0.0:8081"), "c.yaml", doc("Configuration", "log") + "  logging: {runtimeLogs: {logLevel: verbose}}\n"},
			[][]string{{"c.yaml:6:37", `logLevel "verbose" is not a log level; use debug, info, warn, error or fatal`}}},
		{"no name", []string{"a.yaml", "apiVersion: gateway.mulesoft.com/v1alpha1\nkind: Service\nmetadata: {namespace: x}\nspec: {address: http://x}\n"},
			[][]string{{"a.yaml:1:1", "Service has no metadata.name"}}},
		{"binding without target", []string{"a.yaml", api("a", "http://0.0.0.0:8081"), "b.yaml", doc("PolicyBinding", "b") + "  policyRef: {name: route}\n"},
			[][]string{{"b.yaml:6:3", "PolicyBinding default/b has no targetRef"},
				{"b.yaml:6:21", "route needs config: {destinationRef: {name: <Service>}}"}}},
		{"capital Kind in targetRef", []string{"a.yaml", api("a", "http://0.0.0.0:8081"), "b.yaml",
			doc("PolicyBinding", "b") + "  targetRef: {Kind: Service, name: a-up}\n  policyRef: {name: circuit-breaker-flex}\n"},
			// The kind left is the default, ApiInstance, which the policy
			// does not apply to.
			[][]string{{"b.yaml:6:15", `unknown field "Kind" in targetRef; known fields: kind, name, namespace, selector`},
				{"b.yaml:7:21", "circuit-breaker-flex applies to a Service's connections; set targetRef kind: Service"}}},
		{"config under policyRef", []string{"a.yaml", api("a", "http://0.0.0.0:8081", "  policies:\n    - policyRef:\n        name: header-injection-flex\n        config: {inboundHeaders: [{key: a, value: b}]}\n")},
			[][]string{{"a.yaml:13:9", `unknown field "config" in policyRef; known fields: kind, name, namespace`}}},
		{"route-weighted weight", []string{"a.yaml", doc("ApiInstance", "a") + "  address: http://0.0.0.0:8081\n  policies:\n    - policyRef: {name: route-weighted}\n      config: {routes: [{weight: 0, destinationRef: {name: s}}]}\n", "b.yaml", doc("Service", "s") + "  address: http://x\n"},
			[][]string{{"a.yaml:9:34", "weight must be a whole number from 1 to 100, not 0"}}},
		{"sharedStorage twice, differently", []string{"a.yaml", api("a", "http://0.0.0.0:8081"),
			"c.yaml", doc("Configuration", "one") + "  sharedStorage: {redis: {address: \"r:6379\"}}\n", "d.yaml", doc("Configuration", "two") + "  sharedStorage: {redis: {address: \"s:6379\"}}\n"},
			[][]string{{"d.yaml:6:3", "sharedStorage differs from the one set at ", "c.yaml:6:3"}}},
		{"port of a Gateway listener", []string{"a.yaml", api("a", "http://0.0.0.0:8081"),
			"g.yaml", "apiVersion: gateway.mulesoft.com/v1alpha1\nkind: Gateway\nmetadata: {name: g}\nspec:\n  listeners: [{name: web, port: 8081}]\n  routes: [{id: r, path: /x, upstream: {url: http://x}}]\n"},
			[][]string{{"a.yaml:6:12", "port 8081 is already used by the listener at ", "g.yaml:5:33"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			expectErrors(t, loadErrors(t, c.files...), c.want...)
		})
	}
}

// TestEveryErrorIsReported: as for the Gateway kind, one problem of a
// resource does not hide the next: a binding's envelope, its policy's name
// and config, a tls policy's settings, and the spec of a resource without
// a name or with another's are all checked.
func TestEveryErrorIsReported(t *testing.T) {
	expectErrors(t, loadErrors(t,
		"a.yaml", api("a", "https://0.0.0.0:8443"),
		"b.yaml", doc("PolicyBinding", "nothing")+"  order: 3\n",
		"c.yaml", doc("PolicyBinding", "c")+"  targetRef: {name: a}\n  policyRef: {name: nonexistent-flex}\n  order: x\n",
		"d.yaml", doc("PolicyBinding", "d")+"  targetRef: {name: a}\n  policyRef: {name: tls}\n  order: y\n"+
			"  config:\n    alpn: [h2]\n    skipValidation: true\n    requireClientCertificate: true\n",
		"e.yaml", doc("PolicyBinding", "e")+"  targetRef: {kind: Selector, name: a}\n  policyRef: {name: header-removal-flex}\n",
		"f.yaml", "apiVersion: gateway.mulesoft.com/v1alpha1\nkind: Service\nmetadata: {namespace: x}\nspec: {address: ftp://x}\n",
		"g.yaml", doc("Service", "a-up")+"  address: ftp://y\n"),
		[]string{"b.yaml:6:3", "PolicyBinding spec has no policyRef"},
		[]string{"b.yaml:6:3", "PolicyBinding default/nothing has no targetRef"},
		[]string{"c.yaml:7:21", `unknown policy "nonexistent-flex"`},
		[]string{"c.yaml:8:10", `order must be a whole number`, `not "x"`},
		[]string{"d.yaml:8:10", `order must be a whole number`, `not "y"`},
		[]string{"d.yaml:10:5", "tls needs the port's certificate"},
		[]string{"d.yaml:10:12", "alpn offers h2 only"},
		[]string{"d.yaml:11:5", "skipValidation applies to tls-outbound"},
		[]string{"d.yaml:12:31", "requireClientCertificate needs trustedCA"},
		[]string{"e.yaml:6:14", "targetRef kind: Selector needs `selector:"},
		[]string{"e.yaml:6:37", "targetRef of kind Selector selects by labels; remove name"},
		[]string{"f.yaml:1:1", "Service has no metadata.name"},
		[]string{"f.yaml:4:17", `Service address "ftp://x" must start with http:// or https://`},
		[]string{"g.yaml:4:9", "Service default/a-up is already defined at ", "a.yaml:8:5"},
		[]string{"g.yaml:6:12", `Service address "ftp://y" must start with http:// or https://`})
}

// TestEphemeralPortsForTests: the loader the end-to-end tests use accepts
// port 0, which they serve on a port the kernel picks; Load refuses it
// (TestErrors).
func TestEphemeralPortsForTests(t *testing.T) {
	dir := writeDir(t, "a.yaml", api("a", "http://127.0.0.1:0/shop"))
	cfg, err := config.LoadWith([]string{dir}, config.LoadOptions{EphemeralPorts: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Listeners) != 1 || cfg.Listeners[0].Address != "127.0.0.1:0" {
		t.Errorf("listeners = %+v", cfg.Listeners)
	}
}
