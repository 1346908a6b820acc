package flex

import (
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/config"
)

// Flex Gateway substitutes environment variables written as a whole value,
// `password: $PASSWORD`; flexgate's own `$env.NAME` (config/env.go) works
// in Flex documents too. The values of the resources the loader reads
// itself (addresses, a tls policy's PEM, sharedStorage) are substituted as
// they are read; a policy's config keeps the reference, written as
// `$env.NAME`, for the policy to expand when it decodes its parameters, so
// that /config shows where a secret comes from and not the secret.

// envRef returns NAME when s is wholly `$NAME`.
func envRef(s string) (string, bool) {
	if len(s) < 2 || s[0] != '$' {
		return "", false
	}
	name := s[1:]
	if n := config.EnvNameLen(name); n == 0 || n != len(name) {
		return "", false
	}
	return name, true
}

// envWalk visits every scalar value under n once (mapping keys aside),
// however often aliases repeat it.
func envWalk(n *yaml.Node, seen map[*yaml.Node]bool, fn func(*yaml.Node)) {
	if n == nil || seen[n] {
		return
	}
	seen[n] = true
	switch n.Kind {
	case yaml.AliasNode:
		envWalk(n.Alias, seen, fn)
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			envWalk(c, seen, fn)
		}
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			envWalk(n.Content[i], seen, fn)
		}
	case yaml.ScalarNode:
		fn(n)
	}
}

// checkSet reports an unset variable, named as written ($NAME), at n.
func checkSet(d *config.Decoder, n *yaml.Node, name string) bool {
	if _, ok := config.LookupEnv(name); !ok {
		d.Errorf(n, "environment variable %s is not set; set it in the gateway's environment ($%s is used here)", name, name)
		return false
	}
	return true
}

// expandEnv substitutes the variables of every value under n, in place.
func expandEnv(d *config.Decoder, n *yaml.Node) bool {
	ok := true
	envWalk(n, map[*yaml.Node]bool{}, func(s *yaml.Node) {
		if name, whole := envRef(s.Value); whole {
			if !checkSet(d, s, name) {
				ok = false
				return
			}
			// Rewritten to flexgate's form, it is expanded (and retyped:
			// `DB: $REDIS_DB` reads as a number) as `$env.NAME` is.
			s.Value = "$env." + name
		}
		if strings.Contains(s.Value, "$env.") || strings.Contains(s.Value, "${env.") {
			ok = d.ExpandEnv(s) && ok
		}
	})
	return ok
}

// deferEnv rewrites every whole `$NAME` under a policy's config n as
// `$env.NAME`, for the policy to expand; an unset variable is reported now.
//
// The variable's value is text, wherever it is used. Flex Gateway documents
// only that `$NAME` is replaced by the value (REFERENCE §9), not that a
// value then taken as an expression (`keySelector: $KS` with
// KS='#[attributes.method]') is evaluated; flexgate does not guess that it
// is: the expression compiler (chain/expr) reads the value as text and
// warns at load when one that starts with `#[` is used where an expression
// is taken.
func deferEnv(d *config.Decoder, n *yaml.Node) bool {
	ok := true
	envWalk(n, map[*yaml.Node]bool{}, func(s *yaml.Node) {
		if name, whole := envRef(s.Value); whole {
			ok = checkSet(d, s, name) && ok
			s.Value = "$env." + name
		}
	})
	return ok
}

// Flex Gateway reads these variables of its own environment (REFERENCE
// §7.3 and §1). flexgate reads them on every load of Flex resources, where
// the loader reads the rest of the environment, so that `flexgate validate`
// checks them and a reload sees what the start saw: a process's environment
// is fixed when it starts, so a new value applies from the next start, as in
// Flex Gateway.
const (
	// EnvResponseTimeout is the response timeout of every upstream of the
	// Flex resources, in seconds: their responseTimeout.
	EnvResponseTimeout = "FLEX_UPSTREAM_RESPONSE_TIMEOUT_SECONDS"
	// EnvConnectionIdleTimeout is how long a pooled connection to an
	// upstream of the Flex resources may stay idle, in seconds: their
	// idleTimeout.
	EnvConnectionIdleTimeout = "FLEX_UPSTREAM_CONNECTION_IDLE_TIMEOUT_SECONDS"
	// EnvStreamIdleTimeout is Flex's bound on a stream without traffic in
	// either direction; checked, and warned of as not applied.
	EnvStreamIdleTimeout = "FLEX_STREAM_IDLE_TIMEOUT_SECONDS"
	// EnvDrainTime is how long Flex drains the connections of an API that
	// is changed or removed; checked, and warned of as not applied.
	EnvDrainTime = "FLEX_SERVICE_ENVOY_DRAIN_TIME"
)

// Flex Gateway's defaults for its upstreams, where neither its environment
// nor a Configuration sets them; the connection idle timeout's is
// DefaultIdleTimeoutSeconds.
const (
	DefaultResponseSeconds   = 15
	DefaultStreamIdleSeconds = 300
	DefaultDrainSeconds      = 25
)

// envTimeouts are the timeouts of the Flex resources' upstreams that the
// environment sets, Flex Gateway's defaults where it does not.
type envTimeouts struct {
	response, idle time.Duration
}

// readEnv reads Flex Gateway's variables: a value that is not what the
// variable takes is an error naming it, one flexgate does not apply a
// warning. They are read with os.LookupEnv, not config.LookupEnv: `flexgate
// validate --without-secrets` reads an unset variable as placeholder text,
// and an unset one of these means Flex's default.
func readEnv(b *config.Build) envTimeouts {
	seconds := func(name string, min, max, def int) (int, bool) {
		v, set := os.LookupEnv(name)
		if !set {
			return def, false
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < min || n > max {
			b.Errorf(config.Pos{}, "environment variable %s must be a whole number of seconds from %d to %d, not %q; "+
				"unset it for Flex Gateway's default, %d", name, min, max, v, def)
			return def, false
		}
		return n, true
	}
	response, _ := seconds(EnvResponseTimeout, 1, 86400, DefaultResponseSeconds)
	idle, _ := seconds(EnvConnectionIdleTimeout, 1, int(config.MaxIdleTimeout/time.Second), DefaultIdleTimeoutSeconds)
	if s, set := seconds(EnvStreamIdleTimeout, 1, 86400, DefaultStreamIdleSeconds); set {
		b.Warn(config.Pos{}, "environment variable %s=%d is not applied: flexgate bounds each wait for an upstream's bytes "+
			"with the response timeout (%s, or a Configuration's timeouts.upstreamResponseSeconds) and each wait for a client's "+
			"with limits.readTimeout of a kind: Gateway document; stream-idle-timeout-flex bound to an API sets its waits for an answer's body",
			EnvStreamIdleTimeout, s, EnvResponseTimeout)
	}
	if s, set := seconds(EnvDrainTime, 0, 86400, DefaultDrainSeconds); set {
		b.Warn(config.Pos{}, "environment variable %s=%d is not applied: flexgate's drain is set on its command line, "+
			"where --shutdown-timeout bounds how long the requests in flight on a listener that a reload removes "+
			"(and on every listener after SIGTERM and --drain-delay) may take to finish; run flexgate with --shutdown-timeout=%ds for that bound",
			EnvDrainTime, s, s)
	}
	return envTimeouts{response: time.Duration(response) * time.Second, idle: time.Duration(idle) * time.Second}
}
