package config

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// A reference to an environment variable is `$env.NAME`, or `${env.NAME}`,
// whose brace ends the name before text that could continue it. NAME is
// [A-Za-z_][A-Za-z0-9_]*; unbraced, it ends at the first other byte, so
// "$env.REGION-prod" names REGION. This file owns that grammar and the
// lookup: policy parameters (chain.Decode) expand through ExpandEnv, and the
// expression compiler (chain/expr) reads names with EnvNameLen and values
// with Getenv.
const (
	envPrefix       = "$env."
	envBracedPrefix = "${env."
	envNameSyntax   = "[A-Za-z_][A-Za-z0-9_]*"
)

// LookupEnv reads an environment variable for `$env.NAME`. It is
// os.LookupEnv; `flexgate validate --without-secrets` replaces it, before
// loading, with one that reads an unset variable as placeholder text.
var LookupEnv = os.LookupEnv

var errNoEnvName = errors.New(envPrefix + " must be followed by a variable name (" + envNameSyntax + ")")

// EnvNameLen returns how many bytes at the start of s are a variable's name
// as `$env.NAME` writes it (0 when s does not start with one). It is safe
// for concurrent use.
func EnvNameLen(s string) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return i
	}
	return len(s)
}

// Getenv returns the value of the variable that `$env.NAME` names, read
// with LookupEnv. An unset variable is an error that names it (never an
// empty string), and so is a name that is not one; a set but empty variable
// is "". It is safe for concurrent use, as long as LookupEnv is not
// replaced meanwhile.
func Getenv(name string) (string, error) {
	if name == "" {
		return "", errNoEnvName
	}
	if EnvNameLen(name) != len(name) {
		return "", fmt.Errorf("%q is not an environment variable name: write ${env.NAME} with a NAME of %s", name, envNameSyntax)
	}
	val, ok := LookupEnv(name)
	if !ok {
		return "", fmt.Errorf("environment variable %s is not set; set it in the gateway's environment (%s%s is used here)", name, envPrefix, name)
	}
	return val, nil
}

// substituteEnv replaces every `$env.NAME` inside the scalar values under n
// with the variable's value. It works on the parsed tree, not the text, so
// a value holding quotes, colons or newlines cannot change the structure of
// the document. Mapping keys are left alone, and so is every other `$…`
// expression: policies compile those themselves. So are a route's policies:
// their parameters are decoded by the chain, which knows which of them are
// expressions (where a variable's value must stay literal text) and leaves
// `$env.NAME` in the node for the admin /config view to show instead of
// the secret.
func (d *decoder) substituteEnv(n *yaml.Node) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			d.substituteEnv(c)
		}
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			if n.Content[i-1].Value == "policies" {
				continue
			}
			d.substituteEnv(n.Content[i])
		}
	case yaml.ScalarNode:
		if strings.Contains(n.Value, envPrefix) || strings.Contains(n.Value, envBracedPrefix) {
			d.substituteScalar(n)
		}
	}
}

func (d *decoder) substituteScalar(n *yaml.Node) {
	if err := ExpandEnv(n); err != nil {
		d.errorf(n, "%s", err.Error())
	}
}

// ExpandEnv replaces every `$env.NAME` and `${env.NAME}` in the scalar node
// n with the variable's value (see Getenv), in place. A plain value that is
// wholly one variable holding a number or a boolean is retyped, so that
// `limit: $env.LIMIT` decodes into an integer.
func ExpandEnv(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || !strings.Contains(n.Value, envPrefix) && !strings.Contains(n.Value, envBracedPrefix) {
		return nil
	}
	in := n.Value
	var b strings.Builder
	whole := false
	for {
		i, braced := nextEnvRef(in)
		if i < 0 {
			b.WriteString(in)
			break
		}
		b.WriteString(in[:i])
		var name, rest string
		if braced {
			body := in[i+len(envBracedPrefix):]
			end := strings.IndexByte(body, '}')
			if end < 0 {
				return fmt.Errorf("%s is not closed in %q: add a `}` after the variable name", envBracedPrefix, n.Value)
			}
			name, rest = body[:end], body[end+1:]
		} else {
			body := in[i+len(envPrefix):]
			k := EnvNameLen(body)
			name, rest = body[:k], body[k:]
			if name == "" {
				return fmt.Errorf("%v in %q", errNoEnvName, n.Value)
			}
		}
		val, err := Getenv(name)
		if err != nil {
			return err
		}
		whole = i == 0 && rest == "" && b.Len() == 0
		b.WriteString(val)
		in = rest
	}
	n.Value = b.String()
	// A plain `port: $env.PORT` should read as the number the variable
	// holds, as if the user had written it; a quoted or partial value stays
	// text. Only numbers and booleans are retyped: a secret that happens to
	// be "null" or "~" must not vanish.
	if whole && n.Style == 0 {
		n.Tag = scalarTag(n.Value)
	} else {
		n.Tag = "!!str"
	}
	return nil
}

// nextEnvRef returns where the first reference in s starts, and whether it
// is braced; -1 when there is none.
func nextEnvRef(s string) (int, bool) {
	i, j := strings.Index(s, envPrefix), strings.Index(s, envBracedPrefix)
	if j >= 0 && (i < 0 || j < i) {
		return j, true
	}
	return i, false
}

func scalarTag(v string) string {
	if v == "true" || v == "false" {
		return "!!bool"
	}
	if _, err := strconv.ParseInt(v, 10, 64); err == nil {
		return "!!int"
	}
	if strings.ContainsAny(v, "0123456789") && strings.Trim(v, "0123456789.eE+-") == "" {
		if _, err := strconv.ParseFloat(v, 64); err == nil {
			return "!!float"
		}
	}
	return "!!str"
}
