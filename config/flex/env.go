package flex

import (
	"strings"

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
