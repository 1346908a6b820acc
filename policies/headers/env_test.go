package headers

import (
	"os"
	"strings"
	"testing"

	"github.com/flexgate/flexgate/chain/chaintest"
)

// TestEnvValuesStayLiteral: a variable's value is text, even when it holds
// what looks like an expression or a `$`.
func TestEnvValuesStayLiteral(t *testing.T) {
	t.Setenv("FG_TEST_SECRET", "pa$$w$0rd$request.method")
	t.Setenv("FG_TEST_VERSION", "v2")
	c := chaintest.MustChain(t, `        - request-headers-set:
            headers:
              X-Secret: $env.FG_TEST_SECRET
              X-Version: "${env.FG_TEST_VERSION}-beta"
              X-Method: "$request.method"
              X-Dollar: "$$env.FG_TEST_VERSION"
`)
	ctx := chaintest.Ctx("http://gw/api/x")
	if rej := chaintest.Run(c, ctx); rej != nil {
		t.Fatal(rej)
	}
	for name, want := range map[string]string{
		"X-Secret":  "pa$$w$0rd$request.method",
		"X-Version": "v2-beta",
		"X-Method":  "GET",
		"X-Dollar":  "$env.FG_TEST_VERSION",
	} {
		if got := string(ctx.Request.Header.Peek(name)); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}

func TestEnvErrors(t *testing.T) {
	os.Unsetenv("FG_TEST_UNSET")
	t.Setenv("FG_TEST_CRLF", "a\r\nX-Injected: 1")
	f := func(policies, pos, want string) {
		t.Helper()
		_, path, err := chaintest.Compile(t, chaintest.Gateway(policies))
		if err == nil || !strings.Contains(err.Error(), path+":"+pos+":") || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %s at %s", err, want, pos)
		}
	}
	// The position is that of the `$` of the variable, inside the value.
	f("        - request-headers-set:\n            headers:\n              X-A: \"pre-$env.FG_TEST_UNSET\"\n", "14:25", "environment variable FG_TEST_UNSET is not set")
	f("        - request-headers-set:\n            headers:\n              X-A: $env.FG_TEST_CRLF\n", "14:20", "control character")
	f("        - request-headers-remove:\n            headers: [$env.FG_TEST_UNSET]\n", "13:23", "environment variable FG_TEST_UNSET is not set")
}
