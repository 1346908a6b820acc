package spikecontrol_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/proxy/proxytest"
)

// TestSpikeControlEndToEnd: through a real gateway, a burst of 10 on a
// route of 2 per 200 ms with a queue is smoothed: every request is
// served, the last no sooner than 800 ms after the first; on a route
// without a queue the burst's extra requests get Flex's 429 at once.
func TestSpikeControlEndToEnd(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, fmt.Sprintf(`apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata: {name: t}
spec:
  routes:
    - id: smooth
      path: ["/smooth/*"]
      upstream: {url: %[1]q}
      policies:
        - spike-control: {limit: 2, period: 200ms, delay: 100ms, delayAttempts: 40, queueLimit: 20}
    - id: strict
      path: ["/strict/*"]
      upstream: {url: %[1]q}
      policies:
        - spike-control-flex: {maximumRequests: 2, timePeriodInMilliseconds: 5000, exposeHeaders: true}
`, up.URL))
	burst := func(path string) (statuses []int, last *fasthttp.Response) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp := proxytest.Do(t, "GET", gw.URL+path, nil, nil)
				mu.Lock()
				defer mu.Unlock()
				statuses = append(statuses, resp.StatusCode())
				if resp.StatusCode() == 429 {
					if last != nil {
						fasthttp.ReleaseResponse(last)
					}
					last = resp
				} else {
					fasthttp.ReleaseResponse(resp)
				}
			}()
		}
		wg.Wait()
		return statuses, last
	}
	start := time.Now()
	statuses, _ := burst("/smooth/x")
	elapsed := time.Since(start)
	for _, s := range statuses {
		if s != 200 {
			t.Fatalf("smoothed burst: statuses %v, want all 200", statuses)
		}
	}
	// The window admits 2 per 200 ms: the 9th and 10th no sooner than
	// 800 ms after the 1st and 2nd (a lower bound no machine can beat).
	if elapsed < 800*time.Millisecond {
		t.Errorf("10 requests at 2 per 200 ms were served in %s", elapsed)
	}

	statuses, rejected := burst("/strict/x")
	ok := 0
	for _, s := range statuses {
		if s == 200 {
			ok++
		}
	}
	if ok != 2 || rejected == nil {
		t.Fatalf("burst without a queue: statuses %v, want 2 × 200 and 8 × 429", statuses)
	}
	defer fasthttp.ReleaseResponse(rejected)
	h := &rejected.Header
	if !strings.Contains(string(rejected.Body()), `"error":"Too Many Requests"`) || string(h.Peek("X-Flexgate-Error")) != "spike_control" ||
		string(h.Peek("X-Ratelimit-Limit")) != "2" || string(h.Peek("X-Ratelimit-Remaining")) != "0" || len(h.Peek("X-Ratelimit-Reset")) == 0 {
		t.Errorf("429: %s\n%s", h.String(), rejected.Body())
	}
}
