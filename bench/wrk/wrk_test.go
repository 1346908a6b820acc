package wrk

import (
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// output is what wrk 4.1 prints with --latency and DoneHook.
const output = `Running 5s test @ http://127.0.0.1:40001/api/products/small
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.10ms    1.02ms  30.11ms   91.00%
    Req/Sec    30.12k     1.10k   32.00k    80.00%
  Latency Distribution
     50%    1.95ms
     75%    2.40ms
     90%    3.01ms
     99%    5.20ms
  150600 requests in 5.00s, 28.40MB read
  Non-2xx or 3xx responses: 600
Requests/sec:  30120.00
Transfer/sec:      5.68MB
BENCH {"requests":150600,"duration_us":5000000,"bytes":29779558,"connect_errors":0,"read_errors":1,"write_errors":0,"status_errors":600,"timeouts":2,"p50_us":1950,"p90_us":3010,"p99_us":5200,"p999_us":9100,"max_us":30110}
`

func TestParse(t *testing.T) {
	r, err := Parse([]byte(output))
	if err != nil {
		t.Fatal(err)
	}
	want := Result{Requests: 150600, DurationUS: 5000000, Bytes: 29779558, ReadErrors: 1, StatusErrors: 600, Timeouts: 2,
		P50US: 1950, P90US: 3010, P99US: 5200, P999US: 9100, MaxUS: 30110}
	if r != want {
		t.Errorf("parsed %+v\nwant   %+v", r, want)
	}
	if r.RPS() != 30120 || r.OKPS() != 30000 {
		t.Errorf("RPS %v, OKPS %v; want 30120 and 30000 (the 600 non-2xx do not count)", r.RPS(), r.OKPS())
	}
	if got := r.OKRatio(); got < 0.9960 || got > 0.9961 {
		t.Errorf("OKRatio = %v, want 150000/150600", got)
	}
	if (Result{}).RPS() != 0 || (Result{}).OKPS() != 0 || (Result{}).OKRatio() != 0 {
		t.Error("an empty result has non-zero rates")
	}
}

func TestParseRejectsOutputWithoutHook(t *testing.T) {
	noHook := strings.Split(output, "BENCH ")[0]
	if _, err := Parse([]byte(noHook)); err == nil || !strings.Contains(err.Error(), "done() hook") {
		t.Errorf("got %v, want an error naming the missing hook", err)
	}
	mismatch := strings.Replace(output, "150600 requests in", "150601 requests in", 1)
	if _, err := Parse([]byte(mismatch)); err == nil {
		t.Error("a request count that disagrees with wrk's summary was accepted")
	}
	broken := strings.Replace(output, `"requests":150600,`, `"requests":,`, 1)
	if _, err := Parse([]byte(broken)); err == nil {
		t.Error("a malformed BENCH line was accepted")
	}
}

// TestDoneHookFillsResult: every figure the hook prints lands in a field of
// Result, and every field is printed.
func TestDoneHookFillsResult(t *testing.T) {
	var printed []string
	for _, m := range regexp.MustCompile(`\\"(\w+)\\":%d`).FindAllStringSubmatch(DoneHook, -1) {
		printed = append(printed, m[1])
	}
	var fields []string
	rt := reflect.TypeFor[Result]()
	for i := range rt.NumField() {
		fields = append(fields, rt.Field(i).Tag.Get("json"))
	}
	if !slices.Equal(printed, fields) {
		t.Errorf("DoneHook prints %v\nResult holds    %v", printed, fields)
	}
}

func TestLoadArgs(t *testing.T) {
	f := func(l Load, want string) {
		t.Helper()
		if got := strings.Join(l.Args(), " "); got != want {
			t.Errorf("Args = %s\nwant   %s", got, want)
		}
	}
	f(Load{Script: "b.lua", URL: "http://127.0.0.1:1/x", Headers: []string{"A: 1", "B: 2"}, Threads: 1, Conns: 64, Duration: 4600 * time.Millisecond},
		"-t1 -c64 -d5s --timeout 5s --latency -s b.lua -H A: 1 -H B: 2 http://127.0.0.1:1/x")
	// Less than half a second still runs for one.
	f(Load{Script: "s.lua", URL: "http://127.0.0.1:1/", Threads: 3, Conns: 48, Duration: 100 * time.Millisecond},
		"-t3 -c48 -d1s --timeout 5s --latency -s s.lua http://127.0.0.1:1/")
}
