package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateHidesURLPasswords: validate prints errors that quote values;
// a URL's password, written in the file or taken from $env, shows as xxxxx.
func TestValidateHidesURLPasswords(t *testing.T) {
	dir := t.TempDir()
	env := []string{"FG_TEST_INTROSPECTION_URL=https://gw:env-pass-value@auth:bad/introspect", "FG_TEST_ID=gw", "FG_TEST_SECRET=s"}
	for _, c := range []struct{ name, text, want string }{
		{"upstream.yaml", gatewayYAML("http://user:s3cret-value@host:bad", ""),
			`:8:23: upstream url "http://user:xxxxx@host:bad" is not a valid URL`},
		{"introspection.yaml", gatewayYAML("http://b:80", "        - token-introspection:\n"+
			"            url: https://gw:s3cret-value@auth:bad/introspect\n            clientId: gw\n            clientSecret: s\n"),
			`:11:18: token-introspection: url "https://gw:xxxxx@auth:bad/introspect" is not an http(s) URL`},
		{"introspection-env.yaml", gatewayYAML("http://b:80", "        - token-introspection:\n"+
			"            url: $env.FG_TEST_INTROSPECTION_URL\n            clientId: $env.FG_TEST_ID\n            clientSecret: $env.FG_TEST_SECRET\n"),
			`:11:18: token-introspection: url "https://gw:xxxxx@auth:bad/introspect" is not an http(s) URL`},
	} {
		path := writeFile(t, filepath.Join(dir, c.name), c.text)
		out, code := runBinary(t, env, "validate", path)
		if code != 1 || !strings.Contains(out, path+c.want) || strings.Contains(out, "s3cret") || strings.Contains(out, "env-pass") {
			t.Errorf("validate %s: exit %d, want 1 with %s and no password:\n%s", c.name, code, c.want, out)
		}
	}
}
