package chain

import (
	"fmt"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/internal/memguard"
)

func TestDecodeSubstitutesEnv(t *testing.T) {
	t.Setenv("FG_DEC_SECRET", "pa$$word")
	t.Setenv("FG_DEC_LIMIT", "42")
	var doc yaml.Node
	src := `a: &secret $env.FG_DEC_SECRET
b:
  limit: $env.FG_DEC_LIMIT
  secret: *secret
  expr: "$env.FG_DEC_SECRET-$request.method"
`
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	params := doc.Content[0].Content[3]
	var p struct {
		Limit  int        `yaml:"limit"`
		Secret string     `yaml:"secret"`
		Expr   Expression `yaml:"expr"`
	}
	if err := Decode(params, &p); err != nil {
		t.Fatal(err)
	}
	if p.Limit != 42 || p.Secret != "pa$$word" || p.Expr != "$env.FG_DEC_SECRET-$request.method" {
		t.Errorf("decoded %+v", p)
	}
	// The node is left as written, for the admin view.
	if v := params.Content[1].Value; v != "$env.FG_DEC_LIMIT" {
		t.Errorf("Decode changed the node: %q", v)
	}
}

func TestDecodeUnsetEnvIsAnErrorAtTheValue(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte("secret: $env.FG_DEC_UNSET_VARIABLE\n"), &doc); err != nil {
		t.Fatal(err)
	}
	var p struct {
		Secret string `yaml:"secret"`
	}
	err := Decode(doc.Content[0], &p)
	if err == nil || !strings.Contains(err.Error(), "1:9: environment variable FG_DEC_UNSET_VARIABLE is not set") {
		t.Fatalf("error = %v", err)
	}
}

// TestDecodeBoundsAliases: Decode copies the parameters with their aliases
// expanded; a few hundred bytes of nested aliases must not become billions
// of values, nor an anchor that contains its own alias an endless copy.
func TestDecodeBoundsAliases(t *testing.T) {
	memguard.Run(t, 256<<20, func(t *testing.T) {
		laughs := "headers:\n  X-A: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
		for c := 'b'; c <= 'i'; c++ {
			laughs += fmt.Sprintf("  X-%c: &%c [%s]\n", c-'a'+'A', c, strings.TrimSuffix(strings.Repeat("*"+string(c-1)+", ", 9), ", "))
		}
		for _, c := range []struct{ src, want string }{
			{laughs, "7:12: alias *e stands for 66430 values"},
			{"headers: &h\n  X-A: [*h]\n", "2:9: alias *h refers to the anchor &h at line 1, which contains it"},
		} {
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(c.src), &doc); err != nil {
				t.Fatal(err)
			}
			var p struct {
				Headers map[string]any `yaml:"headers"`
			}
			if err := Decode(doc.Content[0], &p); err == nil || !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("error = %v, want %s", err, c.want)
			}
		}
	})
}

// TestDecodeChecksParametersBehindAliases: strict decoding holds for a
// block reused through an alias too; the error is where the block is written.
func TestDecodeChecksParametersBehindAliases(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte("base: &w {limit: 10, perod: 60}\nparams:\n  windows: [*w]\n"), &doc); err != nil {
		t.Fatal(err)
	}
	var p struct {
		Windows []struct {
			Limit  int `yaml:"limit"`
			Period int `yaml:"period"`
		} `yaml:"windows"`
	}
	err := Decode(doc.Content[0].Content[3], &p)
	if err == nil || !strings.HasPrefix(err.Error(), `1:22: unknown parameter "perod"; known parameters: limit, period`) {
		t.Fatalf("error = %v", err)
	}
}
