package timeouts

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

// set runs one request through the policies and returns the waits they
// set on its Exchange.
func set(t *testing.T, policies string) (response, streamIdle time.Duration) {
	t.Helper()
	c := chaintest.MustChain(t, policies)
	ex := chain.AcquireExchange()
	defer chain.ReleaseExchange(ex)
	ex.Prepare(c)
	if rej := c.RunRequest(chaintest.Ctx("http://gw/api/x"), ex); rej != nil {
		t.Fatal(rej)
	}
	return ex.ResponseTimeout, ex.StreamIdleTimeout
}

func TestTimeoutsSetTheWaits(t *testing.T) {
	for _, tc := range []struct {
		policies         string
		response, stream time.Duration
	}{
		{"- response-timeout: {timeout: 250ms}\n", 250 * time.Millisecond, 0},
		{"- stream-idle-timeout: {timeout: 2m}\n", 0, 2 * time.Minute},
		{"- response-timeout: {timeout: 1s}\n- stream-idle-timeout: {timeout: 5s}\n", time.Second, 5 * time.Second},
		// The later of two of a kind wins.
		{"- response-timeout: {timeout: 1s}\n- response-timeout: {timeout: 3s}\n", 3 * time.Second, 0},
		// Flex Gateway's: seconds, its defaults when timeout is left out.
		{"- response-timeout-flex: {timeout: 2}\n", 2 * time.Second, 0},
		{"- response-timeout-flex: {timeout: 0.5}\n", 500 * time.Millisecond, 0},
		{"- response-timeout-flex: {}\n", 15 * time.Second, 0},
		{"- response-timeout-flex\n", 15 * time.Second, 0},
		{"- stream-idle-timeout-flex: {timeout: 30}\n", 0, 30 * time.Second},
		{"- stream-idle-timeout-flex\n", 0, 300 * time.Second},
	} {
		r, s := set(t, tc.policies)
		if r != tc.response || s != tc.stream {
			t.Errorf("%s: response %s, stream idle %s; want %s, %s", strings.TrimSpace(tc.policies), r, s, tc.response, tc.stream)
		}
	}
}

func TestTimeoutErrors(t *testing.T) {
	for _, tc := range []struct {
		policy, pos, want string
	}{
		{"- response-timeout: {}", "12:29", "timeout is required"},
		{"- response-timeout", "12:11", "timeout is required"},
		{"- response-timeout: {timeout: 10}", "12:39", `timeout must be a duration with a unit like 500ms, 2s or 1m, not "10"`},
		{"- response-timeout: {timeout: 0s}", "12:39", `timeout "0s" is out of range: use 1ms to 24h (the gateway always bounds its waits for an upstream; 0 does not turn the timeout off)`},
		{"- response-timeout: {timeout: -1s}", "12:39", `timeout "-1s" is out of range: use 1ms to 24h`},
		{"- response-timeout: {timeout: 999us}", "12:39", `timeout "999us" is out of range: use 1ms to 24h`},
		{"- stream-idle-timeout: {timeout: 25h}", "12:42", `timeout "25h" is out of range: use 1ms to 24h`},
		// Longer than Go holds, but written as a duration: out of range.
		{"- stream-idle-timeout: {timeout: 99999999999h}", "12:42", `timeout "99999999999h" is out of range: use 1ms to 24h`},
		{"- response-timeout: {timeout: -99999999999h}", "12:39", `timeout "-99999999999h" is out of range: use 1ms to 24h`},
		{"- response-timeout: {timeout: 1s, idle: 1s}", "12:43", `unknown parameter "idle"`},
		// The tags' bounds are 1ms and MaxTimeout.
		{"- response-timeout-flex: {timeout: 0}", "12:44", fmt.Sprintf("timeout must be a number from 0.001 to %g (seconds), not 0", MaxTimeout.Seconds())},
		{"- stream-idle-timeout-flex: {timeout: -5}", "12:47", "timeout must be a number from 0.001 to 86400 (seconds), not -5"},
		{"- response-timeout-flex: {timeout: 100000}", "12:44", "timeout must be a number from 0.001 to 86400 (seconds), not 100000"},
		{"- response-timeout-flex: {timeout: 1e300}", "12:44", "timeout must be a number from 0.001 to 86400 (seconds), not 1e300"},
		{"- response-timeout-flex: {timeout: 15s}", "12:44", `timeout must be a number from 0.001 to 86400 (seconds), not "15s"`},
		{"- response-timeout-flex: {timeout: .nan}", "12:44", `timeout must be a number from 0.001 to 86400 (seconds), not ".nan"`},
	} {
		_, path, err := chaintest.Compile(t, chaintest.Gateway(tc.policy))
		if err == nil {
			t.Errorf("%s: no error", tc.policy)
			continue
		}
		if !strings.HasPrefix(err.Error(), path+":"+tc.pos+":") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s:\n got %v\nwant %s:%s: …%s…", tc.policy, err, path, tc.pos, tc.want)
		}
	}
}
