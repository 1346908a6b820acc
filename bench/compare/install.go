package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// tools are the programs the comparison needs, with the Debian package
// that provides each.
var tools = []struct{ bin, pkg string }{
	{"wrk", "wrk"},
	{"nginx", "nginx"},
	{"haproxy", "haproxy"},
	{"caddy", "caddy"},
}

// ensureTools installs the missing tools from Debian's packages. It runs
// apt-get only when something is missing, and then `apt-get update` once.
// Installing nginx or HAProxy can start their system services where an init
// system runs; the harness never talks to those, only to the copies it
// starts itself on ports it picked.
func ensureTools(ctx context.Context, install bool) error {
	var missing []string
	for _, t := range tools {
		if _, err := exec.LookPath(t.bin); err != nil {
			missing = append(missing, t.pkg)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if !install {
		return fmt.Errorf("missing %s: install them (apt-get install %s) or run without -no-install",
			strings.Join(missing, ", "), strings.Join(missing, " "))
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return fmt.Errorf("missing %s and there is no apt-get here: install them with your package manager",
			strings.Join(missing, ", "))
	}
	sudo := []string{}
	if os.Geteuid() != 0 {
		sudo = []string{"sudo"}
	}
	logf("installing %s from Debian's packages", strings.Join(missing, ", "))
	run := func(args ...string) error {
		full := append(append([]string{}, sudo...), args...)
		cmd := exec.CommandContext(ctx, full[0], full[1:]...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w", strings.Join(full, " "), err)
		}
		return nil
	}
	if err := run("apt-get", "update", "-qq"); err != nil {
		return err
	}
	return run(append([]string{"apt-get", "install", "-y", "-qq", "--no-install-recommends"}, missing...)...)
}

// versions returns one line per tool saying which version ran, for the
// report.
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
		"caddy " + probe("caddy", "version"),
		probe("wrk", "-v"),
	}
}
