#!/bin/sh
# Profiles a flexgate binary under wrk: passthrough and the seed's chain in
# front of bench/upstream, a CPU profile of each taken from /debug/pprof on
# the admin port (flexgate run --pprof), plus the CPU seconds per 100k
# requests from /proc. Usage (from the repository root):
#
#   go build -o ./flexgate ./cmd/flexgate
#   sh bench/profile/run.sh ./flexgate [seconds] [outdir]
#   go tool pprof -top -nodecount=40 OUTDIR/passthrough.pprof
#
# Everything listens on fixed loopback ports 127.0.0.1:1808x; each process
# started is stopped by its PID.
set -eu
bin=${1:?usage: run.sh flexgate-binary [seconds] [outdir]}
secs=${2:-20}
out=${3:-$(mktemp -d)}
mkdir -p "$out"
here=$(cd "$(dirname "$0")" && pwd)
go build -o "$out/upstream" "$here/../upstream"
"$out/upstream" -listen 127.0.0.1:18081 >/dev/null &
up=$!
trap 'kill $up 2>/dev/null || true' EXIT
export INTROSPECTION_CLIENT_ID=bench-introspector INTROSPECTION_CLIENT_SECRET=bench-introspector-secret
for kind in passthrough chain; do
	sed "s/{{UP}}/127.0.0.1:18081/" "$here/$kind.yaml" >"$out/$kind.yaml"
	"$bin" run --config "$out/$kind.yaml" --listen 127.0.0.1:18080 --admin-addr 127.0.0.1:18082 \
		--log-level warn --drain-delay 0s --pprof &
	gw=$!
	for _ in $(seq 50); do curl -sf -o /dev/null http://127.0.0.1:18082/readyz && break; sleep 0.1; done
	cpu0=$(awk '{print $14+$15}' /proc/$gw/stat)
	wrk -t1 -c64 -d"$((secs + 4))s" --latency \
		-H 'client_id: bench-client' -H 'client_secret: bench-secret' \
		-H 'Authorization: Bearer bench-token' -H 'X-Internal-Trace: 1' \
		'http://127.0.0.1:18080/api/products/small?productId=PRD-42&quantity=2' >"$out/$kind.wrk" &
	wrk=$!
	sleep 2
	curl -sf -o "$out/$kind.pprof" "http://127.0.0.1:18082/debug/pprof/profile?seconds=$secs"
	wait $wrk
	cpu1=$(awk '{print $14+$15}' /proc/$gw/stat)
	reqs=$(awk '/requests in/ {print $1}' "$out/$kind.wrk")
	echo "$kind: $(grep Requests/sec "$out/$kind.wrk")  CPU s/100k req: $(echo "($cpu1-$cpu0)/100/$reqs*100000" | bc -l | cut -c1-5)"
	kill $gw
	wait $gw || true
done
echo "profiles in $out"
