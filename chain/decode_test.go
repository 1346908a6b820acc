package chain

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
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
