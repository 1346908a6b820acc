package clientid

import (
	"strings"
	"testing"
)

// TestFlexClientIDEnforcement: client-id-enforcement-flex reads the
// credentials from the headers its expressions name (client_id and
// client_secret by default), or from HTTP Basic, against the registry.
func TestFlexClientIDEnforcement(t *testing.T) {
	f := func(policy string, pass []string, refuse []string) {
		t.Helper()
		c, _ := mustCompile(t, policy)
		r := newRequest(c, pass...)
		if rej := c.RunRequest(r.ctx, r.ex); rej != nil {
			t.Errorf("%s: %v refused: %v", policy, pass, rej)
		} else if got := string(r.ex.Value(clientIDValue)); got != "app-1" {
			t.Errorf("%s: $client.id = %q", policy, got)
		}
		r = newRequest(c, refuse...)
		if rej := c.RunRequest(r.ctx, r.ex); rej == nil || rej.Status != 401 {
			t.Errorf("%s: %v passed (%v)", policy, refuse, rej)
		}
	}
	f("- client-id-enforcement-flex", []string{"client_id", "app-1", "client_secret", "s3cret"}, []string{"client_id", "app-1", "client_secret", "wrong"})
	f(`- client-id-enforcement-flex: {credentialsOrigin: customExpression, clientIdExpression: "#[attributes.headers['x-app']]", clientSecretExpression: "#[attributes.headers[\"x-key\"]]"}`,
		[]string{"X-App", "app-1", "X-Key", "s3cret"}, []string{"client_id", "app-1", "client_secret", "s3cret"})
	f("- client-id-enforcement-flex: {credentialsOrigin: httpBasicAuthenticationHeader}",
		[]string{"Authorization", basic("app-1", "s3cret")}, []string{"Authorization", basic("app-1", "nope")})
}

func TestFlexClientIDEnforcementErrors(t *testing.T) {
	f := func(policy, want string) {
		t.Helper()
		_, _, err := compile(t, registry(), policy)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error = %v, want %q", policy, err, want)
		}
	}
	f(`- client-id-enforcement-flex: {clientIdExpression: "#[attributes.queryParams['id']]"}`,
		`gw.yaml:12:60: client-id-enforcement-flex: clientIdExpression "#[attributes.queryParams['id']]" is not supported`)
	f(`- client-id-enforcement-flex: {credentialsOrigin: cookie}`, `credentialsOrigin "cookie" is unknown`)
	_, _, err := compile(t, nil, "- client-id-enforcement-flex")
	if err == nil || !strings.Contains(err.Error(), "no client registry is configured") {
		t.Errorf("without a registry: %v", err)
	}
}
