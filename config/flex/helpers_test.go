package flex_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flexgate/flexgate/config"
	_ "github.com/flexgate/flexgate/policies/all"
)

// writeDir writes name/content pairs (names may hold a directory) into a
// fresh directory and returns it.
func writeDir(t *testing.T, pairs ...string) string {
	t.Helper()
	dir := t.TempDir()
	for i := 0; i+1 < len(pairs); i += 2 {
		p := filepath.Join(dir, filepath.FromSlash(pairs[i]))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(pairs[i+1]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// load loads the files as one directory; it fails the test on errors.
func load(t *testing.T, pairs ...string) *config.Config {
	t.Helper()
	dir := writeDir(t, pairs...)
	cfg, err := config.Load([]string{dir})
	if err != nil {
		t.Fatalf("load:\n%s", strip(err.Error(), dir))
	}
	return cfg
}

// loadErrors loads the files as one directory and returns the errors, one
// per line, with the directory cut off ("a.yaml:7:5: ...").
func loadErrors(t *testing.T, pairs ...string) []string {
	t.Helper()
	dir := writeDir(t, pairs...)
	_, err := config.Load([]string{dir})
	if err == nil {
		return nil
	}
	var errs *config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error is %T: %v", err, err)
	}
	var out []string
	for _, e := range errs.List {
		out = append(out, strip(e.Error(), dir))
	}
	return out
}

func strip(s, dir string) string { return strings.ReplaceAll(s, dir+string(filepath.Separator), "") }

// warnings renders the config's warnings with the directory cut off.
func warnings(cfg *config.Config) []string {
	var out []string
	for _, w := range cfg.Warnings {
		s := w.String()
		if i := strings.LastIndex(w.Pos.File, string(filepath.Separator)); i >= 0 {
			s = strings.ReplaceAll(s, w.Pos.File[:i+1], "")
		}
		out = append(out, s)
	}
	return out
}

// expectErrors asserts the errors, each by its position and words, in
// order.
func expectErrors(t *testing.T, got []string, want ...[]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w[0]+": ") {
			t.Errorf("error %d not at %s:\n%s", i, w[0], got[i])
		}
		for _, word := range w[1:] {
			if !strings.Contains(got[i], word) {
				t.Errorf("error %d lacks %q:\n%s", i, word, got[i])
			}
		}
	}
}

func route(t *testing.T, cfg *config.Config, id string) *config.Route {
	t.Helper()
	for i := range cfg.Routes {
		if cfg.Routes[i].ID == id {
			return &cfg.Routes[i]
		}
	}
	var ids []string
	for _, r := range cfg.Routes {
		ids = append(ids, r.ID)
	}
	t.Fatalf("no route %q; routes: %s", id, strings.Join(ids, ", "))
	return nil
}

func policyNames(r *config.Route) string {
	var names []string
	for _, p := range r.Policies {
		names = append(names, p.Name)
	}
	return strings.Join(names, ",")
}

// doc is the envelope of a Flex resource; spec follows at two spaces.
func doc(kind, name string, extra ...string) string {
	s := "apiVersion: gateway.mulesoft.com/v1alpha1\nkind: " + kind + "\nmetadata:\n  name: " + name + "\n"
	for _, e := range extra {
		s += e
	}
	return s + "spec:\n"
}
