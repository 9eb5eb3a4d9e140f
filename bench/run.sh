#!/usr/bin/env bash
# make bench: measures the origin directly and through openhqm, nginx, haproxy
# and (when ../shared/bench is beside the project) a minimal fasthttp proxy, in
# one run on this machine. Prints req/s, p50/p99 and proxy CPU per request side
# by side, then the latency each proxy adds over one connection, then openhqm's
# peak RSS.
#
# Then, with ASYNC="redis kafka sqs" (the default; ASYNC= skips it), the async
# path: accepted submits per second (POST of a 1 KiB body, 202 once the job
# is stored) with each queue backend; then serve stops and one `openhqm
# worker` drains the backlog (bench/drain -attach): completed jobs per
# second, the worker's and the app's CPU per job, and Redis commands per job
# (INFO commandstats, commands run inside scripts included), and
# redis-server's CPU per job: with the worker, the app and Redis on the same
# cores, the CPU columns show what bounds the drain. Kafka runs on kfake and
# SQS on goaws, both in-process test servers: their figures are openhqm's
# cost plus the test server's, not a real cluster's or AWS's.
#
# Knobs: DURATION=8s WARMUP=2s CONNS=50 REPS=1 LAT_DURATION=3s TARGETS="direct openhqm nginx haproxy fhproxy" ASYNC="redis kafka sqs"
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
DURATION=${DURATION:-8s}
WARMUP=${WARMUP:-2s}
CONNS=${CONNS:-50}
REPS=${REPS:-1}
LAT_DURATION=${LAT_DURATION:-3s}
OUT=${OUT:-$root/bench/results/$(date +%Y%m%d-%H%M%S)}
BIN=$OUT/bin
mkdir -p "$BIN" "$OUT/raw" "$OUT/run"

echo "building..."
go build -o "$BIN/" ./bench/upstream ./bench/loadgen ./bench/kfake ./bench/goaws ./bench/drain ./cmd/openhqm
if [ -d ../shared/bench/fhproxy ]; then
	(cd ../shared/bench && go build -o "$BIN/fhproxy" ./fhproxy) || echo "fhproxy: build failed, left out"
fi

declare -A port=([direct]=19000 [openhqm]=18000 [nginx]=18080 [haproxy]=18083 [fhproxy]=18081)
declare -A pid=()
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

start() { # name cmd...
	local name=$1; shift
	"$@" >"$OUT/run/$name.log" 2>&1 &
	pid[$name]=$!
	pids+=($!)
}
wait_port() { # port
	for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
	echo "nothing listens on 127.0.0.1:$1" >&2; return 1
}

start direct "$BIN/upstream" -addr 127.0.0.1:19000
wait_port 19000
targets=()
for t in ${TARGETS:-direct openhqm nginx haproxy fhproxy}; do
	case $t in
	direct) targets+=(direct) ;;
	openhqm) start openhqm "$BIN/openhqm" serve -c bench/openhqm-sync.hcl && targets+=(openhqm) ;;
	nginx)
		if command -v nginx >/dev/null; then
			mkdir -p "$OUT/run/nginx/tmp"
			start nginx nginx -e stderr -p "$OUT/run/nginx/" -c "$root/bench/conf/nginx.conf"
			targets+=(nginx)
		else echo "nginx: not installed (apt-get install -y nginx), left out"; fi ;;
	haproxy)
		if command -v haproxy >/dev/null; then start haproxy haproxy -f bench/conf/haproxy.cfg -db; targets+=(haproxy)
		else echo "haproxy: not installed (apt-get install -y haproxy), left out"; fi ;;
	fhproxy)
		if [ -x "$BIN/fhproxy" ]; then start fhproxy "$BIN/fhproxy" -addr 127.0.0.1:18081 -upstream 127.0.0.1:19000; targets+=(fhproxy); fi ;;
	esac
done
for t in "${targets[@]}"; do wait_port "${port[$t]}"; done
sleep 0.3
# nginx: count its worker, not the master.
if [ -n "${pid[nginx]:-}" ]; then pid[nginx]=$(pgrep -P "${pid[nginx]}" | head -1); fi

for t in "${targets[@]}"; do
	got=$(curl -s "http://127.0.0.1:${port[$t]}/" || true)
	case $got in *bench-upstream*) ;; *) echo "$t does not return the upstream's body: $got" >&2; exit 1 ;; esac
done

ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# load URL DURATION CONNS OUTFILE -> prints "rps p50_us p99_us"
load() {
	if command -v wrk >/dev/null; then
		wrk -t1 -c"$3" -d"$2" --latency "$1" >"$4"
		awk '
			function us(v) { if (v ~ /us$/) return v+0; if (v ~ /ms$/) return v*1000; if (v ~ /s$/) return v*1000000; return v }
			/Requests\/sec/ { rps=$2 }
			$1=="50%" { p50=us($2) } $1=="99%" { p99=us($2) }
			/Non-2xx/ { bad=$NF }
			END { printf "%.0f %.0f %.0f %d\n", rps, p50, p99, bad }' "$4"
	else
		"$BIN/loadgen" -url "$1" -d "$2" -c "$3" >"$4"
		awk '/^rps/{r=$2} /^p50_us/{a=$2} /^p99_us/{b=$2} /^non2xx/{n=$2} END{printf "%.0f %.0f %.0f %d\n", r, a, b, n}' "$4"
	fi
}

declare -A rps=() p50=() p99=() cpu=() lat50=() lat99=()
for rep in $(seq "$REPS"); do
	for t in "${targets[@]}"; do
		url="http://127.0.0.1:${port[$t]}/"
		load "$url" "$WARMUP" "$CONNS" /dev/null >/dev/null
		p=${pid[$t]}; u0=$(ticks "${pid[direct]}"); c0=$(ticks "$p")
		read -r r a b bad < <(load "$url" "$DURATION" "$CONNS" "$OUT/raw/$t-c$CONNS-$rep.txt")
		c1=$(ticks "$p")
		[ "$bad" = 0 ] || echo "warning: $t had $bad non-2xx answers" >&2
		rps[$t]+="$r "; p50[$t]+="$a "; p99[$t]+="$b "
		if [ "$t" != direct ]; then cpu[$t]+="$(awk -v c="$((c1 - c0))" -v n="$r" -v d="${DURATION%s}" -v hz="$hz" 'BEGIN{printf "%.1f", c/hz*1e6/(n*d)}') "; fi
	done
done
for t in "${targets[@]}"; do
	read -r _ a b _ < <(load "http://127.0.0.1:${port[$t]}/" "$LAT_DURATION" 1 "$OUT/raw/$t-c1.txt")
	lat50[$t]=$a; lat99[$t]=$b
done

med() { tr ' ' '\n' <<<"$1" | awk 'NF' | sort -n | awk '{a[NR]=$1} END{ if (NR==0) print "-"; else print a[int((NR+1)/2)] }'; }
nginx_rps=$(med "${rps[nginx]:-}")
fh_cpu=$(med "${cpu[fhproxy]:-}")
{
	echo "## Throughput: ${CONNS} connections, ${DURATION} × ${REPS} (median; load average $(cut -d' ' -f1-3 /proc/loadavg))"
	echo
	printf '| %-8s | %9s | %7s | %8s | %8s | %16s | %9s |\n' target req/s "× nginx" "p50 µs" "p99 µs" "proxy CPU µs/req" "CPU × fhproxy"
	echo '|---|---:|---:|---:|---:|---:|---:|'
	for t in "${targets[@]}"; do
		r=$(med "${rps[$t]}")
		c=$(med "${cpu[$t]:-}")
		x=-; [ "$nginx_rps" != - ] && x=$(awk -v a="$r" -v b="$nginx_rps" 'BEGIN{printf "%.2f", a/b}')
		y=-; [ "$fh_cpu" != - ] && [ "$c" != - ] && y=$(awk -v a="$c" -v b="$fh_cpu" 'BEGIN{printf "%.2f", a/b}')
		printf '| %-8s | %9s | %7s | %8s | %8s | %16s | %9s |\n' "$t" "$r" "$x" "$(med "${p50[$t]}")" "$(med "${p99[$t]}")" "$c" "$y"
	done
	echo
	echo "## Added latency over one connection (${LAT_DURATION}), µs over direct (direct: p50 ${lat50[direct]}, p99 ${lat99[direct]})"
	echo
	echo '| target | added p50 µs | added p99 µs |'
	echo '|---|---:|---:|'
	for t in "${targets[@]}"; do
		[ "$t" = direct ] && continue
		echo "| $t | $((lat50[$t] - lat50[direct])) | $((lat99[$t] - lat99[direct])) |"
	done
	echo
	if [ -n "${pid[openhqm]:-}" ]; then
		echo "openhqm peak RSS: $(awk '/VmHWM/{printf "%.1f MiB", $2/1024}' "/proc/${pid[openhqm]}/status")"
	fi
} | tee "$OUT/summary.md"

# ---- async ----------------------------------------------------------------
for t in "${targets[@]}"; do [ "$t" = direct ] || kill "${pid[$t]}" 2>/dev/null || true; done
ASYNC=${ASYNC-redis kafka sqs}
if [ -n "$ASYNC" ]; then
	command -v redis-server >/dev/null || { echo "redis-server not found: apt-get install -y redis-server" >&2; exit 1; }
	mkdir -p "$OUT/run/redis"
	start redis redis-server --bind 127.0.0.1 --port 16390 --save '' --appendonly no --dir "$OUT/run/redis"
	wait_port 16390
	declare -A acc=() accp50=() accp99=() acccpu=() drained=() backlog=()
	for b in $ASYNC; do
		redis-cli -p 16390 flushall >/dev/null
		if [ "$b" = kafka ]; then start kfake "$BIN/kfake" -port 19092 -topics openhqm-bench; wait_port 19092; fi
		if [ "$b" = sqs ]; then
			# The SDK's default chain takes these; goaws checks no signature.
			export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_EC2_METADATA_DISABLED=true
			start goaws "$BIN/goaws" -port 19324 -queue openhqm-bench -visibility 30s; wait_port 19324
		fi
		start "serve-$b" "$BIN/openhqm" serve -c "bench/openhqm-async-$b.hcl"
		wait_port 18010
		sp=${pid[serve-$b]}
		url=http://127.0.0.1:18010/jobs
		if command -v wrk >/dev/null; then
			wrk -t1 -c"$CONNS" -d"$WARMUP" -s bench/post.lua "$url" >/dev/null
			c0=$(ticks "$sp")
			wrk -t1 -c"$CONNS" -d"$DURATION" --latency -s bench/post.lua "$url" >"$OUT/raw/async-$b.txt"
			c1=$(ticks "$sp")
			read -r r a p bad total < <(awk '
				function us(v) { if (v ~ /us$/) return v+0; if (v ~ /ms$/) return v*1000; if (v ~ /s$/) return v*1000000; return v }
				/requests in/ { total=$1 } /Requests\/sec/ { rps=$2 }
				$1=="50%" { p50=us($2) } $1=="99%" { p99=us($2) } /Non-2xx/ { bad=$NF }
				END { printf "%.0f %.0f %.0f %d %d\n", rps, p50, p99, bad, total }' "$OUT/raw/async-$b.txt")
		else
			body=$(printf '{"data":"%s"}' "$(head -c 1013 /dev/zero | tr '\0' x)")
			"$BIN/loadgen" -url "$url" -method POST -body "$body" -d "$WARMUP" -c "$CONNS" >/dev/null
			c0=$(ticks "$sp")
			"$BIN/loadgen" -url "$url" -method POST -body "$body" -d "$DURATION" -c "$CONNS" >"$OUT/raw/async-$b.txt"
			c1=$(ticks "$sp")
			read -r r a p bad total < <(awk '/^rps/{r=$2} /^p50_us/{a=$2} /^p99_us/{b=$2} /^non2xx/{n=$2} /^requests/{t=$2} END{printf "%.0f %.0f %.0f %d %d\n", r, a, b, n, t}' "$OUT/raw/async-$b.txt")
		fi
		[ "$bad" = 0 ] || echo "warning: async $b: $bad submits were not accepted" >&2
		acc[$b]=$(awk -v t="$total" -v n="$bad" -v d="${DURATION%s}" 'BEGIN{printf "%.0f", (t-n)/d}')
		accp50[$b]=$a; accp99[$b]=$p
		acccpu[$b]=$(awk -v c="$((c1 - c0))" -v n="$total" -v hz="$hz" 'BEGIN{printf "%.1f", c/hz*1e6/n}')
		# Everything accepted (warm-up included) is now a backlog: serve
		# stops, and one worker drains it alone.
		want=$(curl -s http://127.0.0.1:18010/metrics | awk '/^openhqm_async_accepted_total/ {s+=$NF} END {printf "%d", s}' || true)
		backlog[$b]=$want
		kill "${pid[serve-$b]}" 2>/dev/null || true
		wait "${pid[serve-$b]}" 2>/dev/null || true
		drained[$b]=$("$BIN/drain" -attach -bin "$BIN" -config "bench/openhqm-async-$b.hcl" -redis 127.0.0.1:16390 \
			-metrics http://127.0.0.1:18020/metrics -app-pid "${pid[direct]}" -want "$want" 2>"$OUT/raw/drain-$b.txt") ||
			{ echo "warning: async $b: the drain failed:" >&2; cat "$OUT/raw/drain-$b.txt" >&2; }
		[ "$b" = kafka ] && kill "${pid[kfake]}" 2>/dev/null || true
		[ "$b" = sqs ] && kill "${pid[goaws]}" 2>/dev/null || true
		sleep 0.5
	done
	field() { awk -v k="$2" '{for (i = 1; i < NF; i += 2) if ($i == k) print $(i+1)}' <<<"$1"; }
	{
		echo
		echo "## Async: POST 1 KiB, ${CONNS} connections, ${DURATION}; then one worker drains the backlog"
		echo
		echo '| backend | accepted/s | p50 µs | p99 µs | serve CPU µs/submit | backlog | completed/s (1 worker) | worker CPU µs/job | app CPU µs/job | redis-server CPU µs/job | Redis commands/job |'
		echo '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|'
		for b in $ASYNC; do
			d=${drained[$b]:-}
			echo "| $b | ${acc[$b]} | ${accp50[$b]} | ${accp99[$b]} | ${acccpu[$b]} | ${backlog[$b]} | $(field "$d" completed_per_s) | $(field "$d" worker_cpu_us) | $(field "$d" app_cpu_us) | $(field "$d" redis_cpu_us) | $(field "$d" redis_commands) |"
		done
	} | tee -a "$OUT/summary.md"
fi
echo "raw output: $OUT"
