package deploy

import (
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestMain(m *testing.M) {
	// Helm's lint reports each template failure on the standard logger as
	// well as in its result; the tests assert on the result.
	log.SetOutput(io.Discard)
	code := m.Run()
	if buildPath != "" {
		os.RemoveAll(filepath.Dir(buildPath))
	}
	os.Exit(code)
}

// tool finds an external program. deploy/test.sh installs every tool and sets
// FLEXGATE_REQUIRE_TOOLS=1, so there a missing tool fails instead of skipping.
func tool(t *testing.T, name, install string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("FLEXGATE_REQUIRE_TOOLS") != "" {
		t.Fatalf("%s not found in PATH but FLEXGATE_REQUIRE_TOOLS is set; install it: %s", name, install)
	}
	t.Skipf("SKIPPED: %s not found in PATH, so this check did not run; install it (%s) or run deploy/test.sh", name, install)
	return ""
}

// repoRoot is the flexgate checkout: the parent of this module's directory,
// where go test runs the tests.
func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatalf("cannot find the working directory: %v", err)
	}
	return filepath.Dir(wd)
}

// chartDir is the chart under test.
func chartDir(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatalf("cannot find the working directory: %v", err)
	}
	return filepath.Join(wd, "helm", "flexgate")
}

// examplesDir is the repository's examples/, the configs and values files
// users start from. This module does not import the root module's
// examples package, which finds the same directory for the gateway's
// tests: a require of the root module would pull its dependency versions
// into this module's build list, and every dependency bump there would
// leave this go.mod untidy and these tests failing until `go mod tidy`.
func examplesDir(t *testing.T) string {
	t.Helper()
	return filepath.Join(repoRoot(t), "examples")
}

// exampleFile is one of the example files; a missing one fails the test,
// since the examples are part of the repository.
func exampleFile(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(examplesDir(t), name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("example %s: %v", name, err)
	}
	return p
}
