package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// laughs is the "billion laughs": nine anchors, each a list of nine aliases
// to the one before, 9^9 values in some 500 bytes, written at indent.
func laughs(indent string) string {
	var b strings.Builder
	b.WriteString(indent + `X-A: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]` + "\n")
	for c := 'b'; c <= 'i'; c++ {
		fmt.Fprintf(&b, "%sX-%c: &%c [%s]\n", indent, c-'a'+'A', c, strings.TrimSuffix(strings.Repeat("*"+string(c-1)+",", 9), ","))
	}
	return b.String()
}

// gatewayYAML is a one-route config for upstream; policies, when given, are
// the lines of its policies list. Its line 10 is the first policy line.
func gatewayYAML(upstream, policies string) string {
	text := fmt.Sprintf("apiVersion: gateway.mulesoft.com/v1alpha1\nkind: Gateway\nmetadata: {name: t}\nspec:\n  routes:\n    - id: r\n      path: [\"/*\"]\n      upstream: {url: %q}\n", upstream)
	if policies != "" {
		text += "      policies:\n" + policies
	}
	return text
}

// bombPolicy holds laughs in response-headers-set's headers; X-F, the
// first alias past the limit, is on line 17 of gatewayYAML.
var bombPolicy = "        - response-headers-set:\n            headers:\n" + laughs("              ")

func writeFile(t *testing.T, path, text string) string {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	// A rename, as a ConfigMap update or an editor does: the watcher sees
	// the whole file at once.
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestValidateRefusesAliasBombs(t *testing.T) {
	dir := t.TempDir()
	bomb := writeFile(t, filepath.Join(dir, "bomb.yaml"), gatewayYAML("http://b:80", bombPolicy))
	if st, _ := os.Stat(bomb); st.Size() > 1000 {
		t.Fatalf("the bomb is %d bytes; it should stay under 1000", st.Size())
	}
	out, code := runBinary(t, nil, "validate", bomb)
	if code != 1 || strings.Count(out, "\n") != 1 ||
		!strings.HasPrefix(out, bomb+":17:24: alias *e stands for 66430 values (the anchor &e at line 16") {
		t.Fatalf("validate of an alias bomb: exit %d, want 1 and one error at the alias\n%.3000s", code, out)
	}

	loop := writeFile(t, filepath.Join(dir, "loop.yaml"), gatewayYAML("http://b:80",
		"        - request-headers-set:\n            headers: &h {X-A: *h}\n"))
	out, code = runBinary(t, nil, "validate", loop)
	if code != 1 || !strings.HasPrefix(out, loop+":11:31: alias *h refers to the anchor &h at line 11, which contains it") {
		t.Fatalf("validate of a recursive alias: exit %d\n%.3000s", code, out)
	}

	ok := writeFile(t, filepath.Join(dir, "ok.yaml"), gatewayYAML("http://b:80", "        - client-id-enforcement\n"))
	clients := writeFile(t, filepath.Join(dir, "clients.yaml"), "clients:\n  - id: app\n    secret: s\n    labels:\n"+laughs("      "))
	out, code = runBinary(t, nil, "validate", "--clients", clients, ok)
	if code != 1 || !strings.HasPrefix(out, clients+":10:16: alias *e stands for 66430 values") {
		t.Fatalf("validate --clients with an alias bomb: exit %d\n%.3000s", code, out)
	}
}

// TestLiveReloadRefusesAliasBomb: a ConfigMap edit that holds an alias bomb
// is refused like any bad config; the gateway lives on and keeps serving
// the config it had.
func TestLiveReloadRefusesAliasBomb(t *testing.T) {
	upstream := startEcho(t, "one")
	dir := t.TempDir()
	cfgPath := writeFile(t, filepath.Join(dir, "gateway.yaml"), gatewayYAML(upstream, ""))
	g := startGateway(t, nil, "--config", dir)
	base := g.url("http")
	if _, body, _ := get(t, base+"/x"); body != "one" {
		t.Fatalf("before reload: %q", body)
	}

	writeFile(t, cfgPath, gatewayYAML(upstream, bombPolicy))
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(g.logs(), "config reload failed") {
		select {
		case err := <-g.exit:
			t.Fatalf("flexgate died on the reload: %v\n%.3000s", err, g.logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reload failure logged\n%.3000s", g.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(g.logs(), "gateway.yaml:17:24: alias *e stands for 66430 values") {
		t.Errorf("the reload failure does not name the alias:\n%.3000s", g.logs())
	}
	if _, body, _ := get(t, base+"/x"); body != "one" {
		t.Fatalf("after the refused reload: %q", body)
	}
}
