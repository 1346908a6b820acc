package timeouts

import (
	"testing"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

func TestTimeoutsDoNotAllocate(t *testing.T) {
	c := chaintest.MustChain(t, "- response-timeout-flex: {timeout: 5}\n- stream-idle-timeout: {timeout: 30s}\n")
	ctx := chaintest.Ctx("http://gw/api/x")
	ex := chain.AcquireExchange()
	defer chain.ReleaseExchange(ex)
	if n := testing.AllocsPerRun(1000, func() {
		ex.Prepare(c)
		c.RunRequest(ctx, ex)
		ex.Reset()
	}); n != 0 {
		t.Fatalf("%.1f allocations per request, want 0", n)
	}
}
