package config

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/internal/memguard"
)

// laughs is the "billion laughs": nine anchors, each a list of nine aliases
// to the one before, 9^9 values in some 500 bytes. Written under
// `headers:` at the indent given, its first line is X-A.
func laughs(indent string) string {
	var b strings.Builder
	b.WriteString(indent + `X-A: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]` + "\n")
	for c := 'b'; c <= 'i'; c++ {
		prev := string(c - 1)
		fmt.Fprintf(&b, "%sX-%c: &%c [%s]\n", indent, c-'a'+'A', c, strings.TrimSuffix(strings.Repeat("*"+prev+",", 9), ","))
	}
	return b.String()
}

// bombRoute is a route whose response-headers-set parameters hold laughs;
// X-A is on line 14 of a document that starts with head.
var bombRoute = `  routes:
    - id: r
      path: /x
      upstream: {url: "http://b:80"}
      policies:
        - response-headers-set:
            headers:
              X-Ok: "1"
` + laughs("              ")

// TestLoadRefusesAliasBombs: a few hundred bytes of anchors and aliases must
// not make a reader build billions of values, nor an alias inside its own
// anchor make one loop; Load refuses both at the alias.
func TestLoadRefusesAliasBombs(t *testing.T) {
	memguard.Run(t, 256<<20, func(t *testing.T) {
		// X-F (line 19) is the first to pass the limit: its first *e
		// (66,430 values) comes on top of the 75,000 counted before.
		expectOne(t, loadErrors(t, "a.yaml", head+bombRoute), "a.yaml:19:24",
			"alias *e stands for 66430 values", "anchor &e at line 18", "100000 values that aliases may add",
			"write the values out")

		expectOne(t, loadErrors(t, "a.yaml", head+`  routes:
    - id: r
      path: /x
      upstream: {url: "http://b:80"}
      policies:
        - response-headers-set:
            headers: &h
              X-A: [*h]
`), "a.yaml:13:21", "alias *h refers to the anchor &h at line 12, which contains it", "never end")

		// An alias may name an anchor of an earlier document of the file.
		expectOne(t, loadErrors(t, "a.yaml", head+bombRoute[:strings.Index(bombRoute, "              X-F")]+`---
`+head+`  routes:
    - id: r2
      path: /y
      upstream: {url: "http://b:80"}
      policies:
        - response-headers-set:
            headers: {X-Many: [*e, *e]}
`), "a.yaml:31:36", "alias *e stands for 66430 values")

		// The client registry file is read the same way.
		dir, paths := writeFiles(t, "clients.yaml", "clients:\n  - id: app\n    secret: s\n    extra:\n"+laughs("      "))
		_, err := LoadClients(paths[0])
		expectOne(t, errorLines(t, err, dir), "clients.yaml:10:16", "alias *e stands for 66430 values")
	})
}

// TestLoadAcceptsAliasesThatReuse: reusing blocks is what aliases are for;
// 90,000 values added by aliases load.
func TestLoadAcceptsAliasesThatReuse(t *testing.T) {
	list := strings.TrimSuffix(strings.Repeat(`"v",`, 9000), ",")
	cfg := mustLoad(t, "a.yaml", head+`  routes:
    - id: r
      path: /x
      upstream: {url: "http://b:80"}
      policies:
        - request-validation:
            schema: "{}"
            extra: &big [`+list+`]
            more: [`+strings.TrimSuffix(strings.Repeat("*big,", 10), ",")+`]
`)
	if n := len(cfg.Routes[0].Policies[0].Params.Content); n != 6 {
		t.Fatalf("params have %d nodes", n)
	}
}

// TestRedactedBoundsAliases: the admin view walks parameters through their
// aliases; given a config that was not loaded by Load, it still does not
// expand a bomb or loop on a recursive alias.
func TestRedactedBoundsAliases(t *testing.T) {
	memguard.Run(t, 256<<20, func(t *testing.T) {
		for _, text := range []string{"headers:\n" + laughs("  "), "headers: &h\n  X-A: [*h, *h]\n"} {
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
				t.Fatal(err)
			}
			cfg := &Config{Routes: []Route{{ID: "r", Policies: []PolicySpec{{Name: "response-headers-set", Params: doc.Content[0]}}}}}
			b, err := json.Marshal(cfg.Redacted())
			if err != nil {
				t.Fatal(err)
			}
			if out := string(b); !strings.Contains(out, `"params":"[not shown: alias *`) || len(out) > 2000 {
				t.Errorf("view of a bomb: %.2000s", out)
			}
		}
	})
}
