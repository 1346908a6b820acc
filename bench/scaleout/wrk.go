package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/flexgate/flexgate/bench/wrk"
)

// wrkScript spreads wrk's threads over the gateways, one thread each
// (thread.addr), and each thread's requests over the clients: the
// requests are formatted once per client in init, and request() only
// picks the next, so the Lua cost per request is an index. wrk.DoneHook
// follows it. Placeholders: GATEWAYS ({"host","port"} pairs), CLIENTS.
const wrkScript = `-- Written by flexgate's bench/scaleout.
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
`

// renderWrkScript fills wrkScript for gateways (host:port) and clients, and
// appends wrk.DoneHook.
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
	return strings.Replace(s, "CLIENTS", strconv.Itoa(clients), 1) + "\n" + wrk.DoneHook, nil
}

// runWrk runs wrk with one thread per gateway against path for d.
func runWrk(ctx context.Context, script string, gateways []string, path string, conns int, d time.Duration) (wrk.Result, error) {
	return wrk.Run(ctx, wrk.Load{Script: script, URL: "http://" + gateways[0] + path, Threads: len(gateways), Conns: conns, Duration: d})
}
