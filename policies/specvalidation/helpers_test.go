package specvalidation_test

import (
	"io"
	"log/slog"
	"testing"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/config"
)

func testLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, nil))
}

// compileFile loads and provisions the config file at path.
func compileFile(t *testing.T, path string) (*config.Config, *chain.Set) {
	t.Helper()
	cfg, err := config.Load([]string{path})
	if err != nil {
		t.Fatal(err)
	}
	set, err := chain.CompileAll(cfg, nil, chain.Options{Provision: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = set.Retire(nil) })
	return cfg, set
}
