// Package wrk runs the wrk load generator and reads what it measured from
// the line its Lua done() hook prints, in wrk's own units (microseconds), so
// that nothing is lost to the rounding of wrk's text summary.
package wrk

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

// DoneHook is wrk's Lua done() function that prints the BENCH line Parse
// reads. A script passed to Run must define it; one with no other work can
// be DoneHook alone.
const DoneHook = `-- Printed by flexgate's bench harness; parsed by wrk.Parse.
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

// OKPS is 2xx/3xx responses per second, so that a server answering fast
// errors does not look faster.
func (r Result) OKPS() float64 {
	if r.DurationUS <= 0 {
		return 0
	}
	return float64(r.Requests-r.StatusErrors) / (float64(r.DurationUS) / 1e6)
}

// OKRatio is the share of responses that were 2xx or 3xx.
func (r Result) OKRatio() float64 {
	if r.Requests == 0 {
		return 0
	}
	return float64(r.Requests-r.StatusErrors) / float64(r.Requests)
}

// Parse finds the BENCH line in wrk's output. wrk's text summary is parsed
// too, only to cross-check the request count: a mismatch means the Lua hook
// did not run and the numbers cannot be trusted.
func Parse(out []byte) (Result, error) {
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
	// Script is the path of the Lua script; it must define DoneHook.
	Script string
	URL    string
	// Headers are "Name: value" lines sent with every request.
	Headers []string
	// Threads is wrk's -t: the cores the load generator may take.
	Threads  int
	Conns    int
	Duration time.Duration
}

// seconds is wrk's -d: the duration in whole seconds, at least one.
func (l Load) seconds() int {
	return max(1, int(l.Duration.Round(time.Second)/time.Second))
}

// Args is wrk's command line for l, without the program's name.
func (l Load) Args() []string {
	args := []string{"-t" + strconv.Itoa(l.Threads), "-c" + strconv.Itoa(l.Conns), "-d" + strconv.Itoa(l.seconds()) + "s",
		"--timeout", "5s", "--latency", "-s", l.Script}
	for _, h := range l.Headers {
		args = append(args, "-H", h)
	}
	return append(args, l.URL)
}

// Run runs wrk for l and returns what it measured; wrk's stderr goes to the
// harness's. A run that overstays its duration by 15 s is killed. Run is
// safe for concurrent use, but two wrk runs at once measure each other.
func Run(ctx context.Context, l Load) (Result, error) {
	args := l.Args()
	ctx, cancel := context.WithTimeout(ctx, time.Duration(l.seconds()+15)*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "wrk", args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return Result{}, fmt.Errorf("wrk %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return Parse(out)
}
