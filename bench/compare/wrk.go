package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// wrkReport is the line our done() hook prints, in wrk's own units
// (microseconds), so nothing is lost to wrk's rounding of its text summary.
const wrkReport = `-- Printed by flexgate's bench/compare harness; parsed by parseWrk.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH {\"requests\":%d,\"duration_us\":%d,\"bytes\":%d," ..
    "\"connect_errors\":%d,\"read_errors\":%d,\"write_errors\":%d,\"status_errors\":%d,\"timeouts\":%d," ..
    "\"p50_us\":%d,\"p90_us\":%d,\"p99_us\":%d,\"p999_us\":%d,\"max_us\":%d}\n",
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max))
end
`

// Result is what one wrk run measured.
type Result struct {
	Requests   int64 `json:"requests"`
	DurationUS int64 `json:"duration_us"`
	Bytes      int64 `json:"bytes"`
	// Errors by kind, as wrk counts them; StatusErrors are responses
	// outside 2xx/3xx.
	ConnectErrors int64 `json:"connect_errors"`
	ReadErrors    int64 `json:"read_errors"`
	WriteErrors   int64 `json:"write_errors"`
	StatusErrors  int64 `json:"status_errors"`
	Timeouts      int64 `json:"timeouts"`
	P50US         int64 `json:"p50_us"`
	P90US         int64 `json:"p90_us"`
	P99US         int64 `json:"p99_us"`
	P999US        int64 `json:"p999_us"`
	MaxUS         int64 `json:"max_us"`
}

// RPS is requests per second over the run.
func (r Result) RPS() float64 {
	if r.DurationUS <= 0 {
		return 0
	}
	return float64(r.Requests) / (float64(r.DurationUS) / 1e6)
}

// OKRatio is the share of responses that were 2xx or 3xx.
func (r Result) OKRatio() float64 {
	if r.Requests == 0 {
		return 0
	}
	return float64(r.Requests-r.StatusErrors) / float64(r.Requests)
}

// parseWrk finds the BENCH line in wrk's output. wrk's text summary is
// parsed too, only to cross-check the request count: a mismatch means the
// Lua hook did not run and the numbers cannot be trusted.
func parseWrk(out []byte) (Result, error) {
	var r Result
	found := false
	var textRequests int64 = -1
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "BENCH "); ok {
			if err := json.Unmarshal([]byte(rest), &r); err != nil {
				return r, fmt.Errorf("cannot parse wrk report line %q: %w", line, err)
			}
			found = true
			continue
		}
		// "123456 requests in 10.00s, 12.34MB read"
		if f := strings.Fields(line); len(f) >= 3 && f[1] == "requests" && f[2] == "in" {
			if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
				textRequests = n
			}
		}
	}
	if !found {
		return r, fmt.Errorf("wrk printed no BENCH line (is the Lua done() hook loaded?); output:\n%s", out)
	}
	if textRequests >= 0 && textRequests != r.Requests {
		return r, fmt.Errorf("wrk summary says %d requests but the hook counted %d", textRequests, r.Requests)
	}
	return r, nil
}

// Load is one wrk invocation's shape.
type Load struct {
	URL      string
	Headers  []string
	Conns    int
	Duration time.Duration
}

// runWrk runs one wrk with -t1 (the load generator must not take the cores
// the proxies need) and returns what it measured. Only one wrk ever runs at
// a time; the caller guarantees that by calling it from one goroutine.
func runWrk(ctx context.Context, script string, l Load) (Result, error) {
	secs := int(l.Duration.Round(time.Second) / time.Second)
	if secs < 1 {
		secs = 1
	}
	args := []string{"-t1", "-c" + strconv.Itoa(l.Conns), "-d" + strconv.Itoa(secs) + "s",
		"--timeout", "5s", "--latency", "-s", script}
	for _, h := range l.Headers {
		args = append(args, "-H", h)
	}
	args = append(args, l.URL)
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs+15)*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "wrk", args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return Result{}, fmt.Errorf("wrk %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return parseWrk(out)
}
