#!/usr/bin/env bash
# Measures the CPU and memory of openhqm serve and openhqm worker at a fixed
# rate (default 1000 req/s), to size Kubernetes resource requests:
#   sync:  serve proxies GETs to the bench upstream;
#   async: serve accepts POSTs as jobs in Redis, one worker replays them.
# Knobs: RATE=1000 DURATION=30s
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-1000}
DURATION=${DURATION:-30s}
OUT=$(mktemp -d)
go build -o "$OUT/" ./bench/upstream ./bench/loadgen ./cmd/openhqm
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$OUT"; }
trap cleanup EXIT
bg() { "$@" >"$OUT/$(basename "$1").$RANDOM.log" 2>&1 & pids+=($!); }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "nothing on $1" >&2; exit 1; }
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
hwm() { awk '/VmHWM/{printf "%.1f", $2/1024}' "/proc/$1/status"; }
rss() { awk '/VmRSS/{printf "%.1f", $2/1024}' "/proc/$1/status"; }
hz=$(getconf CLK_TCK)
secs=${DURATION%s}

bg "$OUT/upstream" -addr 127.0.0.1:19000; wait_port 19000
command -v redis-server >/dev/null || { echo "redis-server not found: apt-get install -y redis-server" >&2; exit 1; }
bg redis-server --bind 127.0.0.1 --port 16390 --save '' --appendonly no --dir "$OUT"; wait_port 16390

report() { # name pid c0 c1
	awk -v n="$1" -v c="$(($4 - $3))" -v hz="$hz" -v s="$secs" -v r="$(rss "$2")" -v h="$(hwm "$2")" \
		'BEGIN{printf "| %s | %.0f | %s | %s |\n", n, c/hz/s*1000, r, h}'
}
echo "| process | CPU millicores at ${RATE} req/s | RSS MiB (end) | peak RSS MiB |"
echo "|---|---:|---:|---:|"

bg "$OUT/openhqm" serve -c bench/openhqm-sync.hcl; sp=${pids[-1]}; wait_port 18000
"$OUT/loadgen" -url http://127.0.0.1:18000/ -c 20 -d 3s -rate "$RATE" >/dev/null
c0=$(ticks "$sp")
"$OUT/loadgen" -url http://127.0.0.1:18000/ -c 20 -d "$DURATION" -rate "$RATE" >"$OUT/sync.txt"
c1=$(ticks "$sp")
report "serve (sync proxy)" "$sp" "$c0" "$c1"
kill "$sp"

bg "$OUT/openhqm" serve -c bench/openhqm-async-redis.hcl; sp=${pids[-1]}; wait_port 18010
bg "$OUT/openhqm" worker -c bench/openhqm-async-redis.hcl resources-worker; wp=${pids[-1]}; wait_port 18020
body=$(printf '{"data":"%s"}' "$(head -c 1013 /dev/zero | tr '\0' x)")
"$OUT/loadgen" -url http://127.0.0.1:18010/jobs -method POST -body "$body" -c 20 -d 3s -rate "$RATE" >/dev/null
c0=$(ticks "$sp"); w0=$(ticks "$wp")
"$OUT/loadgen" -url http://127.0.0.1:18010/jobs -method POST -body "$body" -c 20 -d "$DURATION" -rate "$RATE" >"$OUT/async.txt"
c1=$(ticks "$sp"); w1=$(ticks "$wp")
report "serve (async submits)" "$sp" "$c0" "$c1"
report "worker (replaying them)" "$wp" "$w0" "$w1"
echo
echo "achieved: sync $(awk '/^rps/{print $2}' "$OUT/sync.txt") req/s, async $(awk '/^rps/{print $2}' "$OUT/async.txt") req/s ($(awk '/^non2xx/{print $2}' "$OUT/async.txt") not accepted)"
