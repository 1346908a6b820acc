package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Metrics the run reads from each gateway's /metrics. The store's call
// histogram counts one observation per Redis call, so its _count is the
// number of calls.
const (
	metricCalls         = "flexgate_ratelimit_store_call_duration_seconds_count"
	metricLocalRefusals = "flexgate_ratelimit_local_refusals_total"
	metricStoreErrors   = "flexgate_ratelimit_store_errors_total"
	metricFallbacks     = "flexgate_ratelimit_store_fallbacks_total"
	metricStoreUp       = "flexgate_ratelimit_store_up"
	scrapeTimeout       = 5 * time.Second
)

// scriptCommands are the commands that run the store's script; INFO
// commandstats also counts what the script calls (TIME, GET, SET), and
// the harness's own INFO.
var scriptCommands = []string{"evalsha", "eval", "evalsha_ro", "eval_ro"}

// sumMetric adds up every sample of the metric name in Prometheus text
// exposition whose labels contain each of labels (`route="accuracy"`),
// and says whether there was one.
func sumMetric(text, name string, labels ...string) (float64, bool) {
	var sum float64
	found := false
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		var lbl string
		if rest[0] == '{' {
			end := strings.LastIndexByte(rest, '}')
			if end < 0 {
				continue
			}
			lbl, rest = rest[1:end], rest[end+1:]
		}
		match := true
		for _, l := range labels {
			if !strings.Contains(lbl, l) {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		sum += v
		found = true
	}
	return sum, found
}

// counters is what the run tracks across the three gateways, summed.
type counters struct {
	Calls, LocalRefusals, StoreErrors, Fallbacks float64
	// RedisCommands is what Redis itself says it ran of the store's
	// script (INFO commandstats): the calls the gateways made, their
	// probes included.
	RedisCommands float64
}

func (c counters) sub(o counters) counters {
	return counters{c.Calls - o.Calls, c.LocalRefusals - o.LocalRefusals, c.StoreErrors - o.StoreErrors,
		c.Fallbacks - o.Fallbacks, c.RedisCommands - o.RedisCommands}
}

// scrape fetches one gateway's /metrics.
func scrape(ctx context.Context, admin string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, scrapeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("cannot read /metrics of %s: %w", admin, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		return "", fmt.Errorf("cannot read /metrics of %s: status %d, %v", admin, resp.StatusCode, err)
	}
	return string(b), nil
}

// readCounters sums the counters over the gateways' admin addresses and
// asks Redis for its own count.
func readCounters(ctx context.Context, admins []string, redisAddr string) (counters, error) {
	var c counters
	for _, a := range admins {
		text, err := scrape(ctx, a)
		if err != nil {
			return c, err
		}
		// A histogram without observations is not written at all.
		v, _ := sumMetric(text, metricCalls)
		c.Calls += v
		v, _ = sumMetric(text, metricLocalRefusals)
		c.LocalRefusals += v
		v, _ = sumMetric(text, metricStoreErrors)
		c.StoreErrors += v
		v, _ = sumMetric(text, metricFallbacks)
		c.Fallbacks += v
	}
	info, err := redisInfo(ctx, redisAddr, "commandstats")
	if err != nil {
		return c, err
	}
	c.RedisCommands = commandCalls(info, scriptCommands...)
	return c, nil
}

// redisInfo runs INFO section with redis-cli.
func redisInfo(ctx context.Context, addr, section string) (string, error) {
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(ctx, scrapeTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "redis-cli", "-h", host, "-p", port, "INFO", section).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("redis-cli INFO %s: %v: %s", section, err, out)
	}
	return string(out), nil
}

// commandCalls adds up calls= of the cmdstat_<name> lines of INFO
// commandstats for the commands named.
func commandCalls(info string, names ...string) float64 {
	var sum float64
	for _, line := range strings.Split(info, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_")
		if !ok {
			continue
		}
		name, stats, ok := strings.Cut(rest, ":")
		if !ok || !containsFold(names, name) {
			continue
		}
		for _, kv := range strings.Split(stats, ",") {
			if v, ok := strings.CutPrefix(kv, "calls="); ok {
				n, err := strconv.ParseFloat(v, 64)
				if err == nil {
					sum += n
				}
			}
		}
	}
	return sum
}

func containsFold(list []string, s string) bool {
	for _, l := range list {
		if strings.EqualFold(l, s) {
			return true
		}
	}
	return false
}
