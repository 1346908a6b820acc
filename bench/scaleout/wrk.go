package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// wrkScript spreads wrk's threads over the gateways, one thread each
// (thread.addr), and each thread's requests over the clients: the
// requests are formatted once per client in init, and request() only
// picks the next, so the Lua cost per request is an index. done() prints
// the figures as one JSON line in wrk's own units (microseconds).
// Placeholders: GATEWAYS ({"host","port"} pairs), CLIENTS.
const wrkScript = `-- Written by flexgate's bench/scaleout; parsed by parseWrk.
local gateways = {GATEWAYS}
local next_gateway = 0
setup = function(thread)
  local g = gateways[next_gateway % #gateways + 1]
  next_gateway = next_gateway + 1
  thread.addr = wrk.lookup(g[1], g[2])[1]
end

local reqs = {}
local n = 0
init = function(args)
  for i = 1, CLIENTS do
    wrk.headers["X-Client"] = "client-" .. i
    reqs[i] = wrk.format()
  end
end
request = function()
  n = n % #reqs + 1
  return reqs[n]
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH {\"requests\":%d,\"duration_us\":%d," ..
    "\"connect_errors\":%d,\"read_errors\":%d,\"write_errors\":%d,\"status_errors\":%d,\"timeouts\":%d," ..
    "\"p50_us\":%d,\"p99_us\":%d,\"p999_us\":%d,\"max_us\":%d}\n",
    summary.requests, summary.duration,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))
end
`

// renderWrkScript fills wrkScript for gateways (host:port) and clients.
func renderWrkScript(gateways []string, clients int) (string, error) {
	var g []string
	for _, a := range gateways {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			return "", err
		}
		g = append(g, fmt.Sprintf("{%q, %q}", host, port))
	}
	s := strings.Replace(wrkScript, "GATEWAYS", strings.Join(g, ", "), 1)
	return strings.Replace(s, "CLIENTS", strconv.Itoa(clients), 1), nil
}

// WrkResult is what one wrk run measured.
type WrkResult struct {
	Requests   int64 `json:"requests"`
	DurationUS int64 `json:"duration_us"`
	// Errors by kind, as wrk counts them; StatusErrors are responses
	// outside 2xx/3xx (429s and 503s here).
	ConnectErrors int64 `json:"connect_errors"`
	ReadErrors    int64 `json:"read_errors"`
	WriteErrors   int64 `json:"write_errors"`
	StatusErrors  int64 `json:"status_errors"`
	Timeouts      int64 `json:"timeouts"`
	P50US         int64 `json:"p50_us"`
	P99US         int64 `json:"p99_us"`
	P999US        int64 `json:"p999_us"`
	MaxUS         int64 `json:"max_us"`
}

// RPS is requests per second over the run.
func (r WrkResult) RPS() float64 {
	if r.DurationUS <= 0 {
		return 0
	}
	return float64(r.Requests) / (float64(r.DurationUS) / 1e6)
}

// OKPS is 2xx/3xx responses per second: what the comparison uses, so
// that a mode answering fast 503s does not look faster.
func (r WrkResult) OKPS() float64 {
	if r.DurationUS <= 0 {
		return 0
	}
	return float64(r.Requests-r.StatusErrors) / (float64(r.DurationUS) / 1e6)
}

// parseWrk finds the BENCH line in wrk's output. wrk's text summary is
// parsed too, only to cross-check the request count: a mismatch means the
// Lua hook did not run and the numbers cannot be trusted.
func parseWrk(out []byte) (WrkResult, error) {
	var r WrkResult
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

// runWrk runs wrk with one thread per gateway against path for d.
func runWrk(ctx context.Context, script string, gateways []string, path string, conns int, d time.Duration) (WrkResult, error) {
	secs := max(1, int(d.Round(time.Second)/time.Second))
	args := []string{"-t" + strconv.Itoa(len(gateways)), "-c" + strconv.Itoa(conns), "-d" + strconv.Itoa(secs) + "s",
		"--timeout", "5s", "--latency", "-s", script, "http://" + gateways[0] + path}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs+15)*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "wrk", args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return WrkResult{}, fmt.Errorf("wrk %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return parseWrk(out)
}
