// Package userfile reads the files an operator names in a config (the
// config itself, certificates, trust bundles, specs, htpasswd and client
// files): regular files of a bounded size only. A device such as
// /dev/zero would otherwise be read until memory runs out, and a named
// pipe would block the reader for ever.
package userfile

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// MaxSize bounds a file: far above any real certificate, spec or config.
const MaxSize = 64 << 20

// Read returns the contents of the regular file at path (symbolic links
// followed, as Kubernetes mounts secrets). Its errors are *fs.PathError,
// as os.ReadFile's: a path that is something else, or too large, says so.
func Read(path string) ([]byte, error) {
	// Non-blocking, so that opening a named pipe does not wait for a
	// writer; a regular file ignores the flag.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("%s, not a regular file", kind(fi.Mode()))}
	}
	tooLarge := &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("larger than the %d MiB a file may be", MaxSize>>20)}
	if fi.Size() > MaxSize {
		return nil, tooLarge
	}
	// The file may have grown since it was looked at.
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxSize {
		return nil, tooLarge
	}
	return data, nil
}

func kind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a named pipe"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeDevice != 0:
		return "a device"
	}
	return "something else"
}
