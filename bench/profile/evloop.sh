#!/bin/sh
# The I/O model, measured: flexgate passthrough, the bench/evloop prototype
# (epoll event loops, one per core) forwarding untouched and with a
# gateway's header work (-headers), and nginx (bench/peers/nginx.conf, which
# sets the same forwarding headers) in front of bench/upstream, alternated round by round under wrk -t1 -c64;
# each line gives req/s and the proxy's CPU seconds per 100k requests
# (all its processes). Usage (repository root):
#
#   go build -o ./flexgate ./cmd/flexgate
#   sh bench/profile/evloop.sh ./flexgate [rounds] [seconds]
#
# Listens on 127.0.0.1:1810x; each process started is stopped by its PID.
set -eu
bin=${1:?usage: evloop.sh flexgate-binary [rounds] [seconds]}
rounds=${2:-3}
secs=${3:-20}
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d)
go build -o "$out/upstream" "$here/../upstream"
go build -o "$out/evloop" "$here/../evloop"
"$out/upstream" -listen 127.0.0.1:18101 >/dev/null &
up=$!
trap 'kill $up 2>/dev/null || true; rm -rf "$out"' EXIT
sed "s/{{UP}}/127.0.0.1:18101/" "$here/passthrough.yaml" >"$out/gw.yaml"
go run "$here/../peers/render" -listen 127.0.0.1:18100 -upstream 127.0.0.1:18101 -dir "$out" nginx.conf >"$out/nginx.conf"
url=http://127.0.0.1:18100/api/products/small

# cpu sums utime and stime of the process $1 and its children's threads.
cpu() {
	total=0
	for p in $1 $(pgrep -P "$1" || true); do
		total=$(awk -v t="$total" '{print t + $14 + $15}' "/proc/$p/stat")
	done
	echo "$total"
}

for r in $(seq "$rounds"); do
	for target in flexgate evloop evloop-headers nginx; do
		case $target in
		flexgate) "$bin" run --config "$out/gw.yaml" --listen 127.0.0.1:18100 --admin-addr 127.0.0.1:18102 \
			--log-level warn --drain-delay 0s & ;;
		evloop) "$out/evloop" -listen 127.0.0.1:18100 -upstream 127.0.0.1:18101 & ;;
		evloop-headers) "$out/evloop" -listen 127.0.0.1:18100 -upstream 127.0.0.1:18101 -headers & ;;
		nginx) nginx -p "$out" -e "$out/error.log" -c "$out/nginx.conf" & ;;
		esac
		pid=$!
		ready=
		for _ in $(seq 50); do curl -sf -o /dev/null "$url" && ready=1 && break; sleep 0.1; done
		[ -n "$ready" ] || { echo "$target did not answer 200 on $url" >&2; kill $pid; exit 1; }
		wrk -t1 -c64 -d1s "$url" >/dev/null
		cpu0=$(cpu $pid)
		wrk -t1 -c64 -d"${secs}s" "$url" >"$out/wrk"
		cpu1=$(cpu $pid)
		reqs=$(awk '/requests in/ {print $1}' "$out/wrk")
		rps=$(awk '/Requests\/sec/ {print $2}' "$out/wrk")
		# wrk's error lines, when there are any: a run that failed requests
		# must not pass for a slow one.
		errors=$(grep -E 'Socket errors|Non-2xx' "$out/wrk" | tr -s ' \n' ' ' || true)
		echo "$r $target rps $rps cpu_s_per_100k $(echo "($cpu1-$cpu0)/100/$reqs*100000" | bc -l | cut -c1-5)${errors:+ ERRORS:$errors}"
		kill $pid
		wait $pid 2>/dev/null || true
	done
done
