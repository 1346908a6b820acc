package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/config"
	_ "github.com/flexgate/flexgate/policies/all"
	"github.com/flexgate/flexgate/proxy"
)

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	clients := fs.String("clients", "", "`FILE` with the client registry (YAML), as given to run")
	skipCerts := fs.Bool("skip-cert-files", false, "do not read certificates, keys, CAs and session ticket keys, in files or inline PEM (for CI, where the TLS secret is not mounted)")
	noSecrets := fs.Bool("without-secrets", false, "check what can be checked without the pod's secrets (for CI): unset $env variables read as placeholder text "+
		"(a variable that must hold a number, a URL or a set form such as \"Basic ...\" still needs a value), a missing client registry as one placeholder client, and certificate files are not read")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: flexgate validate [--clients FILE] [--skip-cert-files] [--without-secrets] PATH...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	paths := fs.Args()
	if len(paths) == 0 {
		fmt.Fprintln(stderr, "flexgate validate: give at least one config file or directory")
		return 2
	}
	if *noSecrets {
		*skipCerts = true
		config.LookupEnv = func(name string) (string, bool) {
			if v, ok := os.LookupEnv(name); ok {
				return v, true
			}
			return "placeholder-" + name, true
		}
	}
	config.SkipInlinePEM = *skipCerts
	cfg, err := loadConfig(paths, *clients)
	if err == nil && *noSecrets && len(cfg.Clients) == 0 {
		cfg.Clients = []config.Client{{ID: "placeholder", Secret: "placeholder"}}
	}
	if err == nil {
		err = check(cfg, !*skipCerts)
	}
	if err != nil {
		for _, line := range errorLines(err) {
			fmt.Fprintln(stdout, line)
		}
	}
	if cfg != nil {
		// Warnings do not fail validation: the config serves as written.
		for _, w := range cfg.Warnings {
			fmt.Fprintln(stdout, w)
		}
	}
	if err != nil {
		return 1
	}
	for _, s := range cfg.Sources {
		fmt.Fprintln(stdout, s.Summary)
	}
	for i := range cfg.Routes {
		fmt.Fprintln(stdout, routeLine(&cfg.Routes[i]))
	}
	return 0
}

// routeLine describes a route and where it comes from, for validate:
// `route ID on LISTENERS: PATHS [RULES] -> UPSTREAM; policies P, Q (from FILE:LINE, ...)`.
func routeLine(r *config.Route) string {
	var b strings.Builder
	fmt.Fprintf(&b, "route %q", r.ID)
	if len(r.Listeners) > 0 {
		fmt.Fprintf(&b, " on %s", strings.Join(r.Listeners, ", "))
	}
	b.WriteString(": ")
	if len(r.Methods) > 0 {
		b.WriteString(strings.Join(r.Methods, ",") + " ")
	}
	b.WriteString(strings.Join(r.Paths, " "))
	if len(r.Rules) > 0 {
		rules := make([]string, len(r.Rules))
		for i, rule := range r.Rules {
			rules[i] = ruleString(rule)
		}
		fmt.Fprintf(&b, " where %s", strings.Join(rules, " or "))
	}
	fmt.Fprintf(&b, " -> %s", r.UpstreamURL())
	if r.StripPrefix != "" {
		fmt.Fprintf(&b, " (without %s)", r.StripPrefix)
	}
	if len(r.Policies) > 0 {
		// In the order they run: CORS first, wherever it is written.
		names := make([]string, len(r.Policies))
		for i, at := range chain.RunOrder(r.Policies) {
			p := r.Policies[at]
			names[i] = p.Name
			if len(p.When) > 0 {
				w := make([]string, len(p.When))
				for j, rule := range p.When {
					w[j] = ruleString(rule)
				}
				names[i] += " when " + strings.Join(w, " or ")
			}
		}
		fmt.Fprintf(&b, "; policies: %s", strings.Join(names, ", "))
	}
	origins := r.Origins()
	from := make([]string, len(origins))
	for i, o := range origins {
		from[i] = o.String()
	}
	fmt.Fprintf(&b, " (from %s)", strings.Join(from, ", "))
	return b.String()
}

// ruleString writes a match rule as {path ~ RE, host ~ RE, ...}.
func ruleString(r config.MatchRule) string {
	var parts []string
	for _, f := range []struct{ name, re string }{{"path", r.Path}, {"host", r.Host}, {"method", r.Methods}} {
		if f.re != "" {
			parts = append(parts, f.name+" ~ "+f.re)
		}
	}
	for _, h := range r.Headers {
		parts = append(parts, h.Name+" ~ "+h.Value)
	}
	if len(parts) == 0 {
		return "{any}"
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// loadOptions steer every load of the config: none in the binary users
// build. The end-to-end tests build theirs with the tag flexgate_e2e
// (e2e.go), which sets them.
var loadOptions config.LoadOptions

// loadConfig reads the config files and merges the client registry file.
func loadConfig(paths []string, clientsFile string) (*config.Config, error) {
	cfg, err := config.LoadWith(paths, loadOptions)
	if err != nil {
		return nil, err
	}
	if clientsFile != "" {
		clients, err := config.LoadClients(clientsFile)
		if err != nil {
			return nil, err
		}
		cfg.Clients = append(cfg.Clients, clients...)
		// The hash names the registry too, so that a reload sees a
		// rotated secret as a change.
		h := sha256.New()
		h.Write([]byte(cfg.Hash))
		for _, c := range clients {
			fmt.Fprintf(h, "\x00%q %q %x", c.ID, c.Secret, c.SecretHash)
		}
		cfg.Hash = hex.EncodeToString(h.Sum(nil))
	}
	return cfg, nil
}

// check compiles cfg as run would, without provisioning anything that
// would touch the network: routes, policies and, unless told not to,
// certificates.
func check(cfg *config.Config, certFiles bool) error {
	var errs []error
	if _, err := chain.CompileAll(cfg, nil, chain.Options{}); err != nil {
		errs = append(errs, err)
	}
	if err := proxy.Check(cfg, certFiles); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// errorLines flattens joined errors into one line per error; an
// expression's error goes on with indented lines (the value, a caret under
// the place), which keep their indentation.
func errorLines(err error) []string {
	var lines []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.TrimRight(l, " \t\r"); strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	return lines
}
