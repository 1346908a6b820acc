#!/bin/sh
# Alternated A/B of flexgate binaries under wrk: rounds visit A B A B ...
# so that a busy machine weighs on each alike; each line gives req/s and
# the gateway's CPU seconds per 100k requests. Usage (repository root):
#
#   sh bench/profile/ab.sh ROUNDS SECONDS KIND BINARY...    # KIND: passthrough or chain
#
# Listens on 127.0.0.1:1809x; each process started is stopped by its PID.
set -eu
rounds=$1 secs=$2 kind=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d)
go build -o "$out/upstream" "$here/../upstream"
"$out/upstream" -listen 127.0.0.1:18091 >/dev/null &
up=$!
trap 'kill $up 2>/dev/null || true; rm -rf "$out"' EXIT
export INTROSPECTION_CLIENT_ID=bench-introspector INTROSPECTION_CLIENT_SECRET=bench-introspector-secret
sed "s/{{UP}}/127.0.0.1:18091/" "$here/$kind.yaml" >"$out/gw.yaml"
for r in $(seq "$rounds"); do
	for bin in "$@"; do
		"$bin" run --config "$out/gw.yaml" --listen 127.0.0.1:18090 --admin-addr 127.0.0.1:18092 \
			--log-level warn --drain-delay 0s &
		gw=$!
		for _ in $(seq 50); do curl -sf -o /dev/null http://127.0.0.1:18092/readyz && break; sleep 0.1; done
		wrk -t1 -c64 -d1s -H 'client_id: bench-client' -H 'client_secret: bench-secret' \
			-H 'Authorization: Bearer bench-token' \
			'http://127.0.0.1:18090/api/products/small?productId=PRD-42&quantity=2' >/dev/null
		cpu0=$(awk '{print $14+$15}' /proc/$gw/stat)
		wrk -t1 -c64 -d"${secs}s" -H 'client_id: bench-client' -H 'client_secret: bench-secret' \
			-H 'Authorization: Bearer bench-token' -H 'X-Internal-Trace: 1' \
			'http://127.0.0.1:18090/api/products/small?productId=PRD-42&quantity=2' >"$out/wrk"
		cpu1=$(awk '{print $14+$15}' /proc/$gw/stat)
		reqs=$(awk '/requests in/ {print $1}' "$out/wrk")
		rps=$(awk '/Requests\/sec/ {print $2}' "$out/wrk")
		echo "$r $bin rps $rps cpu_s_per_100k $(echo "($cpu1-$cpu0)/100/$reqs*100000" | bc -l | cut -c1-5)"
		kill $gw
		wait $gw || true
	done
done
