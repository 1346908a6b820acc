package userfile

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRead: a regular file is read; a device, a named pipe and a
// directory are refused at once, saying what they are.
func TestRead(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "ok.pem")
	if err := os.WriteFile(ok, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := Read(ok); err != nil || string(b) != "data" {
		t.Fatalf("Read(ok) = %q, %v", b, err)
	}
	pipe := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(pipe, 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"/dev/zero": "a device", pipe: "a named pipe", dir: "a directory"} {
		done := make(chan error, 1)
		go func() { _, err := Read(path); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
				t.Errorf("Read(%s) = %v, want an error saying it is %s", path, err, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Read(%s) did not return", path)
		}
	}
}
