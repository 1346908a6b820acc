package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// tools are the programs the run needs, with the Debian package that
// provides each.
var tools = []struct{ bin, pkg string }{
	{"wrk", "wrk"},
	{"redis-server", "redis-server"},
	{"redis-cli", "redis-tools"},
}

// ensureTools installs the missing tools from Debian's packages, running
// apt-get (with sudo when not root) only when something is missing.
// Installing redis-server may start its system service where an init
// system runs; the harness never talks to it, only to the server it starts
// itself on a port it picked.
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
	var sudo []string
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
