#!/usr/bin/env bash
# bench/ab.sh: the CPU per request of two running proxies, loaded at the
# same time (wrk -t1 -c50 each), so that whatever else runs on the machine
# weighs on both alike; on a shared machine this ratio holds still where
# back-to-back runs swing by half. Prints, per round, req/s and CPU µs per
# request of each (user + system time of the PID from /proc), and A/B.
#
#   bench/ab.sh [ROUNDS] [SECONDS] NAME:PORT:PID NAME:PORT:PID
#   bench/ab.sh 5 5 openhqm:18000:$(pgrep -f 'openhqm serve') fhproxy:18081:$(pgrep fhproxy)
set -euo pipefail
rounds=${1:-5}; dur=${2:-5}
IFS=: read -r na pa ida <<<"$3"
IFS=: read -r nb pb idb <<<"$4"
hz=$(getconf CLK_TCK)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
for _ in $(seq "$rounds"); do
	a0=$(ticks "$ida"); b0=$(ticks "$idb")
	wrk -t1 -c50 -d"${dur}s" "http://127.0.0.1:$pa/" >"$tmp/a" &
	wrk -t1 -c50 -d"${dur}s" "http://127.0.0.1:$pb/" >"$tmp/b" &
	wait
	a1=$(ticks "$ida"); b1=$(ticks "$idb")
	ra=$(awk '/Requests\/sec/{print $2}' "$tmp/a"); rb=$(awk '/Requests\/sec/{print $2}' "$tmp/b")
	awk -v na="$na" -v nb="$nb" -v ra="$ra" -v rb="$rb" -v ca=$((a1 - a0)) -v cb=$((b1 - b0)) -v d="$dur" -v hz="$hz" \
		-v l="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN{x=ca/hz*1e6/(ra*d); y=cb/hz*1e6/(rb*d);
		printf "%s %6.0f req/s %5.1f µs/req | %s %6.0f req/s %5.1f µs/req | CPU %s/%s %.2f | load %s\n", na, ra, x, nb, rb, y, na, nb, x/y, l}'
done
