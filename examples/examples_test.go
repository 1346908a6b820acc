package examples

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// fatalRecorder is a TB whose Fatalf records instead of stopping.
type fatalRecorder struct{ msg string }

func (r *fatalRecorder) Helper()                        {}
func (r *fatalRecorder) Fatalf(format string, a ...any) { r.msg = fmt.Sprintf(format, a...) }

// TestFoundFromEveryModule: tests of the root module and of the nested
// deploy/ module, which has a go.mod of its own, find the same directory.
func TestFoundFromEveryModule(t *testing.T) {
	here, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{".", "..", filepath.Join("..", "deploy"), filepath.Join("..", "deploy", "helm")} {
		t.Run(dir, func(t *testing.T) {
			t.Chdir(filepath.Join(here, dir))
			got, err := Dir()
			if err != nil || got != here {
				t.Fatalf("Dir() = %q, %v; want %q", got, err, here)
			}
			if p := Path(t, "gateway-config.yaml"); p != filepath.Join(here, "gateway-config.yaml") {
				t.Errorf("Path = %q", p)
			}
		})
	}
}

func TestMissingExampleFails(t *testing.T) {
	r := &fatalRecorder{}
	Path(r, "no-such-example.yaml")
	if r.msg == "" {
		t.Fatal("a missing example did not fail the test")
	}
}

func TestOutsideACheckout(t *testing.T) {
	t.Chdir(t.TempDir())
	if dir, err := Dir(); err == nil {
		t.Fatalf("Dir() outside a checkout = %q, want an error", dir)
	}
}
