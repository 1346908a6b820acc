// Package apt installs the programs a benchmark program needs from Debian's
// packages, when they are missing.
package apt

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Tool is a program looked up on PATH, and the Debian package that
// provides it.
type Tool struct {
	Bin, Pkg string
}

// missingPackages lists the packages of the tools that are not on PATH.
func missingPackages(tools []Tool) []string {
	var missing []string
	for _, t := range tools {
		if _, err := exec.LookPath(t.Bin); err != nil {
			missing = append(missing, t.Pkg)
		}
	}
	return missing
}

// Ensure installs the missing tools. It runs apt-get (with sudo when not
// root) only when something is missing, and then `apt-get update` once;
// with install false it only says what is missing. logf reports what it
// installs. Installing a server's package can start its system service where
// an init system runs; the harnesses never talk to those, only to the
// copies they start themselves on ports they picked.
func Ensure(ctx context.Context, tools []Tool, install bool, logf func(format string, args ...any)) error {
	missing := missingPackages(tools)
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
