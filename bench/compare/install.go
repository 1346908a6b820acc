package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/flexgate/flexgate/bench/apt"
)

// tools are the programs the comparison needs, with the Debian package
// that provides each. Caddy and Traefik are built from their Go modules
// instead (modulePeer): Debian's Caddy is 2.6, and Debian ships no Traefik.
var tools = []apt.Tool{
	{Bin: "wrk", Pkg: "wrk"},
	{Bin: "nginx", Pkg: "nginx"},
	{Bin: "haproxy", Pkg: "haproxy"},
}

// versions returns one line per tool saying which version ran, for the
// report (Caddy's and Traefik's are added when they are built).
func versions(ctx context.Context) []string {
	probe := func(name string, args ...string) string {
		// wrk -v prints its version and exits 1; only no output is a failure.
		out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
		if err != nil && len(out) == 0 {
			return name + ": not available"
		}
		line := strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
		return line
	}
	return []string{
		probe("go", "version"),
		probe("nginx", "-v"),
		probe("haproxy", "-v"),
		probe("wrk", "-v"),
	}
}

// modulePeer is a peer built from its Go module at a pinned version, so that
// every run measures the same code whatever the distribution ships.
type modulePeer struct {
	name    string // binary name, also the cache file's prefix
	module  string // module path
	version string // pinned version
	pkg     string // main package inside the module, relative to its root
	// install says the module has no replace directives, so `go install
	// module/pkg@version` builds it; otherwise the harness downloads the
	// module and builds inside its source (Traefik's go.mod replaces
	// modules, which `go install pkg@version` refuses).
	install bool
}

// Pinned peer versions; bump them here and in bench/README.md.
var (
	caddyModule   = modulePeer{name: "caddy", module: "github.com/caddyserver/caddy/v2", version: "v2.11.9", pkg: "cmd/caddy", install: true}
	traefikModule = modulePeer{name: "traefik", module: "github.com/traefik/traefik/v3", version: "v3.6.12", pkg: "cmd/traefik"}
)

// cacheDir is where built peers are kept between runs:
// $XDG_CACHE_HOME/flexgate-bench (~/.cache/flexgate-bench).
func cacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory for the built peers: %w", err)
	}
	dir := filepath.Join(base, "flexgate-bench")
	return dir, os.MkdirAll(dir, 0o755)
}

// binPath is where m's binary is cached.
func (m modulePeer) binPath(cache string) string {
	return filepath.Join(cache, m.name+"-"+m.version)
}

// build returns m's binary, building it with the Go toolchain into the cache
// the first time (a few minutes for Traefik on a small machine). The binary
// is written under a temporary name and renamed, so an interrupted build
// leaves nothing that a later run would take for a finished one.
func (m modulePeer) build(ctx context.Context, cache string) (string, error) {
	out := m.binPath(cache)
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	tmp := out + ".building"
	defer os.RemoveAll(tmp)
	ref := m.module + "@" + m.version
	logf("building %s from its Go module (%s), once; cached in %s", m.name, ref, cache)
	goCmd := func(dir string, env []string, args ...string) error {
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = dir
		cmd.Env = append(append(os.Environ(), "GOFLAGS=-mod=readonly", "GOWORK=off"), env...)
		if msg, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, tail(msg, 20))
		}
		return nil
	}
	if m.install {
		// GOBIN takes a directory: install into tmp/, then move the binary.
		if err := goCmd(cache, []string{"GOBIN=" + tmp}, "install", "-trimpath", m.module+"/"+m.pkg+"@"+m.version); err != nil {
			return "", err
		}
		return out, os.Rename(filepath.Join(tmp, filepath.Base(m.pkg)), out)
	}
	dl := exec.CommandContext(ctx, "go", "mod", "download", "-json", ref)
	dl.Dir = cache
	dl.Env = append(os.Environ(), "GOWORK=off")
	js, err := dl.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s: %v\n%s", ref, err, tail(js, 20))
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(js, &info); err != nil || info.Dir == "" {
		return "", fmt.Errorf("go mod download %s: no source directory in %q (%v)", ref, tail(js, 5), err)
	}
	// The module's own go.mod and go.sum pin its dependencies; building in
	// its (read-only) source tree honours its replace directives.
	if err := goCmd(info.Dir, nil, "build", "-trimpath", "-o", tmp, "./"+m.pkg); err != nil {
		return "", err
	}
	return out, os.Rename(tmp, out)
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
