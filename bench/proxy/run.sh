#!/usr/bin/env bash
# Proxy benchmark: direct vs Switchyard vs nginx vs haproxy, all in one run on this machine.
#
#   bash bench/proxy/run.sh            # DURATION=10 CONNS=64 by default
#
# Placement (2 cores): the proxy under test gets CPU 0 with one worker thread; the backend and
# the load generators share CPU 1. "direct" runs the generators against the backend with CPU 0
# idle. Max throughput: wrk (closed loop). Latency: examples/loadgen.rs at a fixed rate of half
# the direct maximum, capped at half the slowest proxy's maximum (open loop, latency from each
# request's due time).
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=bench/proxy
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
RATE_CONNS=${RATE_CONNS:-32}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$(pwd)/target}
command -v wrk >/dev/null && command -v nginx >/dev/null && command -v haproxy >/dev/null || {
  apt-get update -qq && apt-get install -y -qq wrk nginx haproxy >/dev/null; }
[ -n "${SKIP_BUILD:-}" ] || cargo build --release -q -p switchyard-proxy --examples
BIN=$CARGO_TARGET_DIR/release/examples
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

taskset -c 1 "$BIN/bench_backend" 18081 18082 & PIDS+=($!)
taskset -c 0 "$BIN/bench_proxy" 18100 127.0.0.1:18081 127.0.0.1:18082 1 & SY=$!; PIDS+=($SY)
taskset -c 0 nginx -c "$PWD/$HERE/nginx.conf" & PIDS+=($!)
taskset -c 0 haproxy -f "$HERE/haproxy.cfg" & PIDS+=($!)
sleep 1
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
SY_IDLE=$(rss $SY)

declare -A URL=([direct]=http://127.0.0.1:18081/ [switchyard]=http://127.0.0.1:18100/ \
                [nginx]=http://127.0.0.1:18200/ [haproxy]=http://127.0.0.1:18300/)
ORDER=(direct switchyard nginx haproxy)
declare -A RPS LAT
for t in "${ORDER[@]}"; do
  taskset -c 1 wrk -t1 -c"$CONNS" -d2s "${URL[$t]}" >/dev/null   # warm-up
  if [ "$t" = switchyard ]; then (sleep $((DURATION / 2)); rss $SY > /tmp/sy-rss-load) & fi
  out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" "${URL[$t]}")
  RPS[$t]=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  echo "$t max: ${RPS[$t]} req/s" >&2
done
# Half the direct maximum, but never more than half the slowest proxy's maximum: a rate above a
# proxy's capacity measures its queue, not its latency.
RATE=$(printf '%s\n' "${RPS[@]}" | sort -g | head -1 | awk -v d="${RPS[direct]}" '{r = d / 2; if ($1 / 2 < r) r = $1 / 2; printf "%d", r}')
for t in "${ORDER[@]}"; do
  addr=${URL[$t]#http://}; addr=${addr%/}
  LAT[$t]=$(taskset -c 1 "$BIN/loadgen" "$addr" "$RATE" "$DURATION" "$RATE_CONNS")
  echo "$t @${RATE}/s: ${LAT[$t]}" >&2
done
SY_LOAD=$(cat /tmp/sy-rss-load)

field() { echo "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k {print $2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
echo
echo "| target | max req/s | p50 µs | p99 µs | p999 µs | errors @ ${RATE}/s |"
echo "|---|---|---|---|---|---|"
for t in "${ORDER[@]}"; do
  l=${LAT[$t]}
  echo "| $t | ${RPS[$t]} | $(field "$l" p50_us) | $(field "$l" p99_us) | $(field "$l" p999_us) | $(field "$l" errors) |"
done
echo
echo "Switchyard/direct $(ratio "${RPS[switchyard]}" "${RPS[direct]}"), Switchyard/nginx $(ratio "${RPS[switchyard]}" "${RPS[nginx]}"), Switchyard/haproxy $(ratio "${RPS[switchyard]}" "${RPS[haproxy]}")"
echo "Switchyard p99 added over direct: $(( $(field "${LAT[switchyard]}" p99_us) - $(field "${LAT[direct]}" p99_us) )) µs"
echo "Switchyard RSS: idle ${SY_IDLE} KiB, under load ${SY_LOAD} KiB"
