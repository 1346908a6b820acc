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

// The official JSON Schema Test Suite is third-party data and stays out of
// the repository. FLEXGATE_JSON_SCHEMA_TEST_SUITE names a checkout of
// github.com/json-schema-org/JSON-Schema-Test-Suite (tested at commit
// 44401e0c); without it, a copy beside the repository is read if there is
// one. Set, it must hold the suite: a wrong path fails instead of skipping.
const (
	suiteEnv     = "FLEXGATE_JSON_SCHEMA_TEST_SUITE"
	defaultSuite = "../../../shared/testdata/json-schema-test-suite"
	suiteGet     = "git clone https://github.com/json-schema-org/JSON-Schema-Test-Suite and set " + suiteEnv + " to the checkout"
)

// suiteFiles are the suite's draft 2020-12 files the test runs: the core
// keywords a request schema uses. The others need remote references,
// format assertions or vocabularies, which request validation leaves out.
var suiteFiles = []string{
	"additionalProperties.json", "allOf.json", "anyOf.json", "boolean_schema.json", "const.json", "enum.json",
	"exclusiveMaximum.json", "exclusiveMinimum.json", "items.json", "maxItems.json", "maxLength.json",
	"maxProperties.json", "maximum.json", "minItems.json", "minLength.json", "minProperties.json", "minimum.json",
	"multipleOf.json", "not.json", "oneOf.json", "pattern.json", "patternProperties.json", "prefixItems.json",
	"properties.json", "required.json", "type.json", "uniqueItems.json",
}

// suiteDraftDir returns the directory of the suite's draft 2020-12 files:
// tests/draft2020-12 in a checkout, draft2020-12 in the copy beside the
// repository. It skips, saying how to get the suite, when none is there.
func suiteDraftDir(t *testing.T) string {
	t.Helper()
	root, set := os.LookupEnv(suiteEnv)
	if !set || root == "" {
		root = defaultSuite
	}
	for _, dir := range []string{filepath.Join(root, "tests", "draft2020-12"), filepath.Join(root, "draft2020-12")} {
		if _, err := os.Stat(filepath.Join(dir, suiteFiles[0])); err == nil {
			return dir
		}
	}
	if set && root != defaultSuite {
		t.Fatalf("%s=%s holds no tests/draft2020-12/%s: point it at a checkout of the JSON Schema Test Suite", suiteEnv, root, suiteFiles[0])
	}
	t.Skipf("SKIPPED: conformance with the JSON Schema Test Suite is NOT checked: it is not at %s; to check it, %s", root, suiteGet)
	return ""
}

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
	dir := suiteDraftDir(t)
	var fastCases, libCases, failed int
	seenKnown := map[string]bool{}
	for _, name := range suiteFiles {
		file := filepath.Join(dir, name)
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("the suite lacks a keyword file: %v", err)
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
