#!/usr/bin/env bash
# Proxy benchmark: direct vs Switchyard vs nginx vs haproxy, all in one run on this machine.
#
#   bash bench/proxy/run.sh            # DURATION=10 STEP=5 CONNS=64 RATE_CONNS=32 by default
#
# Targets, all doing the same 90/10 weighted split over upstream keep-alive:
#   *-1w: one worker (Switchyard current-thread runtime, nginx worker_processes 1, haproxy
#         nbthread 1) pinned to CPU 0; backend and load generators on CPU 1.
#   *-2w: two workers (Switchyard 2 runtime threads, nginx worker_processes 2, haproxy nbthread 2)
#         on both CPUs; backend and load generators still on CPU 1.
#   direct: the load generators against the backend (CPU 1), the physical limit.
# 1. Max throughput: wrk (closed loop), 2 s warm-up, then DURATION seconds.
# 2. Latency at RATE = half the direct maximum: examples/loadgen.rs (open loop, precise
#    scheduler thread, latency from each request's due time) against every target; added
#    latency = target - direct at the same rate in the same run.
# 3. A target that cannot sustain RATE (p99 >= 1 ms or < 95 % of it served) is stepped down from
#    90 % of its own maximum in 10 % steps (STEP seconds each) to the highest rate it serves
#    with p99 < 1 ms; direct is measured at that rate too.
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=bench/proxy
DURATION=${DURATION:-10}
STEP=${STEP:-5}
CONNS=${CONNS:-64}
RATE_CONNS=${RATE_CONNS:-32}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$(pwd)/target}
command -v wrk >/dev/null && command -v nginx >/dev/null && command -v haproxy >/dev/null || {
  apt-get update -qq && apt-get install -y -qq wrk nginx haproxy >/dev/null; }
[ -n "${SKIP_BUILD:-}" ] || cargo build --release -q -p switchyard-proxy --examples
BIN=$CARGO_TARGET_DIR/release/examples
TMP=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT

# Two-worker configurations are the one-worker files with the worker count and ports changed.
sed -e 's/worker_processes 1;/worker_processes 2;/' -e 's/18200/18210/' \
    -e 's/switchyard-bench-nginx/switchyard-bench-nginx2/g' "$HERE/nginx.conf" > "$TMP/nginx2.conf"
sed -e 's/nbthread 1/nbthread 2/' -e 's/18300/18310/' "$HERE/haproxy.cfg" > "$TMP/haproxy2.cfg"

taskset -c 1 "$BIN/bench_backend" 18081 18082 & PIDS+=($!)
taskset -c 0 "$BIN/bench_proxy" 18100 127.0.0.1:18081 127.0.0.1:18082 1 & SY1=$!; PIDS+=($SY1)
taskset -c 0,1 "$BIN/bench_proxy" 18110 127.0.0.1:18081 127.0.0.1:18082 2 & SY2=$!; PIDS+=($SY2)
taskset -c 0 nginx -c "$PWD/$HERE/nginx.conf" & PIDS+=($!)
taskset -c 0,1 nginx -c "$TMP/nginx2.conf" & PIDS+=($!)
taskset -c 0 haproxy -f "$HERE/haproxy.cfg" & PIDS+=($!)
taskset -c 0,1 haproxy -f "$TMP/haproxy2.cfg" & PIDS+=($!)
sleep 1
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
declare -A RSS_IDLE=([switchyard-1w]=$(rss $SY1) [switchyard-2w]=$(rss $SY2)) RSS_LOAD
declare -A PID=([switchyard-1w]=$SY1 [switchyard-2w]=$SY2)

declare -A PORT=([direct]=18081 [switchyard-1w]=18100 [nginx-1w]=18200 [haproxy-1w]=18300
                 [switchyard-2w]=18110 [nginx-2w]=18210 [haproxy-2w]=18310)
ORDER=(direct switchyard-1w nginx-1w haproxy-1w switchyard-2w nginx-2w haproxy-2w)
declare -A RPS LAT
for t in "${ORDER[@]}"; do
  url=http://127.0.0.1:${PORT[$t]}/
  taskset -c 1 wrk -t1 -c"$CONNS" -d2s "$url" >/dev/null   # warm-up
  if [ -n "${PID[$t]:-}" ]; then (sleep $((DURATION / 2)); rss "${PID[$t]}" > "$TMP/rss-$t") & fi
  out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" "$url")
  RPS[$t]=$(echo "$out" | awk '/Requests\/sec/ {printf "%d", $2}')
  echo "$t max: ${RPS[$t]} req/s" >&2
done
wait_rss() { for t in switchyard-1w switchyard-2w; do RSS_LOAD[$t]=$(cat "$TMP/rss-$t"); done; }
wait_rss

field() { echo "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k {print $2}'; }
loadgen() { taskset -c 1 "$BIN/loadgen" "127.0.0.1:$1" "$2" "$3" "$RATE_CONNS"; }
# Sustained: p99 under 1 ms and at least 95 % of the offered rate served.
sustained() { awk -v p="$(field "$1" p99_us)" -v r="$(field "$1" rps)" -v o="$2" \
  'BEGIN {exit !(p < 1000 && r >= 0.95 * o)}'; }

RATE=$(( RPS[direct] / 2 ))
for t in "${ORDER[@]}"; do
  LAT[$t]=$(loadgen "${PORT[$t]}" "$RATE" "$DURATION")
  echo "$t @${RATE}/s: ${LAT[$t]}" >&2
done

declare -A SUST
for t in "${ORDER[@]:1}"; do
  sustained "${LAT[$t]}" "$RATE" && continue
  SUST[$t]="none"
  for pct in 90 80 70 60 50 40 30 20; do
    r=$(( RPS[$t] * pct / 100 ))
    [ "$r" -lt "$RATE" ] || continue
    l=$(loadgen "${PORT[$t]}" "$r" "$STEP")
    echo "$t @${r}/s: $l" >&2
    if sustained "$l" "$r"; then
      d=$(loadgen "${PORT[direct]}" "$r" "$STEP")
      echo "direct @${r}/s: $d" >&2
      SUST[$t]="$r $(field "$l" p50_us) $(field "$l" p99_us) $(field "$l" p999_us) $(field "$d" p50_us) $(field "$d" p99_us)"
      break
    fi
  done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
dp99=$(field "${LAT[direct]}" p99_us)
echo
echo "Load average (1/5/15 min) at start: ${LOAD_START}; at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "Offered rate: ${RATE} req/s (half the direct maximum); loadgen scheduler lateness p99 (direct run): $(field "${LAT[direct]}" sched_late_p99_us) µs"
echo
echo "| target | max req/s | served @ ${RATE}/s | p50 µs | p99 µs | p999 µs | p99 added µs | errors |"
echo "|---|---|---|---|---|---|---|---|"
for t in "${ORDER[@]}"; do
  l=${LAT[$t]}
  echo "| $t | ${RPS[$t]} | $(field "$l" rps) | $(field "$l" p50_us) | $(field "$l" p99_us) | $(field "$l" p999_us) | $(( $(field "$l" p99_us) - dp99 )) | $(field "$l" errors) |"
done
if [ ${#SUST[@]} -gt 0 ]; then
  echo
  echo "| target (could not sustain ${RATE}/s) | highest rate with p99 < 1 ms | p50 µs | p99 µs | p999 µs | direct p50 / p99 µs at that rate | p99 added µs |"
  echo "|---|---|---|---|---|---|---|"
  for t in "${ORDER[@]:1}"; do
    [ -n "${SUST[$t]:-}" ] || continue
    if [ "${SUST[$t]}" = none ]; then echo "| $t | none down to 20 % of its max | | | | | |"; continue; fi
    read -r r p50 p99 p999 d50 d99 <<< "${SUST[$t]}"
    echo "| $t | $r | $p50 | $p99 | $p999 | $d50 / $d99 | $(( p99 - d99 )) |"
  done
fi
echo
for w in 1w 2w; do
  echo "$w: Switchyard/direct $(ratio "${RPS[switchyard-$w]}" "${RPS[direct]}"), Switchyard/nginx $(ratio "${RPS[switchyard-$w]}" "${RPS[nginx-$w]}"), Switchyard/haproxy $(ratio "${RPS[switchyard-$w]}" "${RPS[haproxy-$w]}")"
done
for t in switchyard-1w switchyard-2w; do
  echo "$t RSS: idle ${RSS_IDLE[$t]} KiB, under wrk load ${RSS_LOAD[$t]} KiB"
done
