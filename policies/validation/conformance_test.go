package validation

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/flexgate/flexgate/chain"
)

// suiteDir is the official JSON Schema Test Suite (draft 2020-12, core
// keywords), shared by the projects on this machine and read in place.
const suiteDir = "../../../shared/testdata/json-schema-test-suite/draft2020-12"

// knownFailures are the suite's cases the policy's validator does not
// pass, by "file / group / case", with the reason.
var knownFailures = map[string]string{}

type suiteGroup struct {
	Description string          `json:"description"`
	Schema      json.RawMessage `json:"schema"`
	Tests       []struct {
		Description string          `json:"description"`
		Data        json.RawMessage `json:"data"`
		Valid       bool            `json:"valid"`
	} `json:"tests"`
}

// TestConformance runs every case of the suite through the validator a
// route would use for the case's schema: the fast path when the schema is
// inside its subset (falling back to the library where it cannot decide),
// the library otherwise.
func TestConformance(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(suiteDir, "*.json"))
	if len(files) == 0 {
		t.Skip("SKIPPED LOUDLY: the JSON Schema Test Suite is not at " + suiteDir +
			"; conformance is NOT checked on this machine")
	}
	var fastCases, libCases, failed int
	seenKnown := map[string]bool{}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var groups []suiteGroup
		if err := json.Unmarshal(raw, &groups); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, g := range groups {
			v := &Validator{}
			fast, err := compileFast(g.Schema)
			var u *errUnsupported
			switch {
			case err == nil:
				v.fast = fast
			case !errors.As(err, &u):
				t.Errorf("%s / %s: fast compile: %v", filepath.Base(file), g.Description, err)
				continue
			}
			if v.lib, err = compileLibrary(g.Schema, 1); err != nil {
				t.Errorf("%s / %s: library compile: %v", filepath.Base(file), g.Description, err)
				continue
			}
			for _, c := range g.Tests {
				name := filepath.Base(file) + " / " + g.Description + " / " + c.Description
				ex := chain.AcquireExchange()
				got := v.checkBody(c.Data, ex)
				chain.ReleaseExchange(ex)
				if v.fast != nil {
					fastCases++
				} else {
					libCases++
				}
				if reason, known := knownFailures[name]; known {
					seenKnown[name] = true
					if got == c.Valid {
						t.Errorf("%s: listed as a known failure (%s) but passes now; remove it from knownFailures", name, reason)
					}
					continue
				}
				if got != c.Valid {
					failed++
					t.Errorf("%s: valid=%v, the suite says %v (schema %s, data %s)", name, got, c.Valid, g.Schema, c.Data)
				}
			}
		}
	}
	var stale []string
	for name := range knownFailures {
		if !seenKnown[name] {
			stale = append(stale, name)
		}
	}
	sort.Strings(stale)
	for _, name := range stale {
		t.Errorf("knownFailures lists %q, which is not in the suite", name)
	}
	t.Logf("%d cases: %d on schemas in the fast subset, %d on the library; %d known failures",
		fastCases+libCases, fastCases, libCases, len(knownFailures))
}
