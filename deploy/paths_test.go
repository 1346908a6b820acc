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

// seedDir is the user's example files, read in place. CI clones the
// repository with shared/ beside the checkout; FLEXGATE_SEED_DIR overrides.
func seedDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("FLEXGATE_SEED_DIR")
	if dir == "" {
		dir = filepath.Join(repoRoot(t), "..", "shared", "seed")
	}
	if _, err := os.Stat(filepath.Join(dir, "local-values.yaml")); err != nil {
		t.Skipf("SKIPPED: the seed examples are not at %s (%v); lay shared/ beside the checkout or set FLEXGATE_SEED_DIR", dir, err)
	}
	return dir
}

// seedFile is one of the user's example files.
func seedFile(t *testing.T, name string) string {
	t.Helper()
	return filepath.Join(seedDir(t), name)
}
