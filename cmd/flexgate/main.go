// Command flexgate is an API gateway: `flexgate run` serves a config,
// `flexgate validate` checks one, `flexgate version` says which build this is.
package main

import (
	"fmt"
	"io"
	"os"

	// Flex Gateway's resource kinds, beside kind: Gateway.
	_ "github.com/flexgate/flexgate/config/flex"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `flexgate — an API gateway

Usage:
  flexgate run [--config PATH]... [--listen ADDR] [--admin-addr ADDR] [--clients FILE]
               [--log-level LEVEL] [--access-log] [--drain-delay D] [--shutdown-timeout D]
               [--max-connections N] [--pprof]
  flexgate validate [--clients FILE] [--skip-cert-files] [--without-secrets] PATH...
  flexgate version

run       serves the config at PATH (a file, or a directory of *.yaml/*.yml; repeatable;
          FLEXGATE_CONFIG, comma-separated, when no --config is given). With no config at
          all it serves a built-in quick-start: /api/* answered by a built-in echo upstream.
validate  loads and compiles PATH exactly as run would, without touching the network.
          Exit 0 with one summary line per file, or exit 1 with every error as
          file:line:col: message.
version   prints the version.

Run 'flexgate run --help' or 'flexgate validate --help' for their flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stdout, stderr)
	case "validate":
		return cmdValidate(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "flexgate %s\n", version)
		return 0
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "flexgate: unknown command %q\n\n%s", args[0], usage)
	return 2
}
