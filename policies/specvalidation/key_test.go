package specvalidation

import (
	"os"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/config"
)

// TestSpecFileKeyReadsTheFileNamedByEnv: with specFile: $env.NAME the key
// digests the file the variable names, so that a reload after the file
// was edited builds the policy anew.
func TestSpecFileKeyReadsTheFileNamedByEnv(t *testing.T) {
	file := filepath.Join(t.TempDir(), "spec.yaml")
	t.Setenv("FLEXGATE_TEST_SPEC", file)
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var n yaml.Node
	if err := yaml.Unmarshal([]byte("{specFile: $env.FLEXGATE_TEST_SPEC}"), &n); err != nil {
		t.Fatal(err)
	}
	route := &config.Route{Policies: []config.PolicySpec{{Name: "spec-validation", Params: n.Content[0]}}}
	write("openapi: 3.0.3 # one")
	k1 := specFilesKey(nil, route)
	if specFilesKey(nil, route) != k1 {
		t.Fatal("the same file gave two keys")
	}
	write("openapi: 3.0.3 # two")
	if specFilesKey(nil, route) == k1 {
		t.Error("an edited spec file gave the same key")
	}
}
