// Package examples finds the example files of this directory, the configs
// and Helm values a user starts from, so that tests and tools read the very
// files users copy. The gateway itself never uses it.
//
// The examples are located from the working directory, which `go test`
// sets to the package's own directory: the nearest parent holding
// flexgate's go.mod is the checkout, and its examples/ directory is this
// one. Its functions keep no state and are safe for concurrent use.
package examples

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// modulePath is the module whose checkout holds the examples.
const modulePath = "github.com/flexgate/flexgate"

// Dir returns the absolute path of the examples directory of the flexgate
// checkout that holds the working directory.
func Dir() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("cannot find the examples: %w", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if isModuleRoot(dir) {
			return filepath.Join(dir, "examples"), nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("cannot find the examples: no parent of %s holds the go.mod of %s; run from inside a flexgate checkout", wd, modulePath)
		}
	}
}

// TB is the part of testing.TB that Path needs.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Path returns the absolute path of the example file name (slash-separated,
// relative to the examples directory: "gateway-config.yaml"). A missing
// file fails the test: the examples are part of the repository, so a test
// that needs one never skips.
func Path(tb TB, name string) string {
	tb.Helper()
	dir, err := Dir()
	if err != nil {
		tb.Fatalf("%v", err)
	}
	p := filepath.Join(dir, filepath.FromSlash(name))
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("example %s: %v", name, err)
	}
	return p
}

// isModuleRoot reports whether dir holds flexgate's own go.mod (not that
// of a nested module such as deploy/).
func isModuleRoot(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if rest, ok := bytes.CutPrefix(line, []byte("module")); ok && len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
			return string(bytes.Trim(bytes.TrimSpace(rest), `"`)) == modulePath
		}
	}
	return false
}
