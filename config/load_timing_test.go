package config

import (
	"testing"

	"github.com/flexgate/flexgate/examples"
)

// BenchmarkLoadSecuredSeed measures a reload of the user's six-step policy
// example: read, parse, substitute, validate.
func BenchmarkLoadSecuredSeed(b *testing.B) {
	b.Setenv("INTROSPECTION_CLIENT_ID", "id")
	b.Setenv("INTROSPECTION_CLIENT_SECRET", "secret")
	paths := []string{examples.Path(b, "secured-gateway-config.yaml"), examples.Path(b, "gateway-config.yaml")}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(paths); err != nil {
			b.Fatal(err)
		}
	}
}
