#!/usr/bin/env bash
# Instructions per proxied request, counted by valgrind's callgrind: the same number on every run
# of the same build, so it compares builds on a machine whose timings are noisy (a shared host).
# What runs is what users run: `switchyard serve --no-proxy` and a `switchyard proxy` joined to
# it (one worker), the app applied through the API as in run.sh (static v1/v2, canary paused at
# 10 %), GET / from h2load over 16 keep-alive connections. The counters are zeroed after a
# warm-up and dumped after REQUESTS more requests; startup and shutdown are not counted.
#
#   bash bench/proxy/instructions.sh             # REQUESTS=20000 WARMUP=2000
#   SY=/path/to/other/switchyard bash bench/proxy/instructions.sh   # another build
#
# Prints the instructions per request and the functions with the most inclusive instructions;
# the full profile is kept in $OUT when OUT is given.
set -euo pipefail
cd "$(dirname "$0")/../.."
REQUESTS=${REQUESTS:-20000}
WARMUP=${WARMUP:-2000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$(pwd)/target}
for tool in valgrind callgrind_control h2load curl; do
  command -v "$tool" >/dev/null || {
    apt-get update -qq && apt-get install -y -qq valgrind nghttp2-client curl >/dev/null
    break; }
done
[ -n "${SKIP_BUILD:-}" ] || {
  [ -n "${SY:-}" ] || cargo build --release -q -p switchyard --bin switchyard
  cargo build --release -q -p switchyard-proxy --example bench_backend; }
bin=${SY:-$CARGO_TARGET_DIR/release/switchyard}
EX=$CARGO_TARGET_DIR/release/examples
source bench/daemon.sh
OUT=${OUT:-$work}
mkdir -p "$OUT"
# A dump left by an earlier run would be read as this one's.
rm -f "$OUT"/callgrind.out*

backend=$(free_port); backend2=$(free_port); app=$(free_port)
"$EX/bench_backend" "$backend" "$backend2" & echo $! > "$work/backend.pid"
start_serve "$(free_port)" --no-proxy
cat > "$work/app.yaml" <<EOF
apiVersion: switchyard.dev/v1alpha1
kind: App
metadata: {name: bench}
spec:
  listen: 127.0.0.1:$app
  runtime: {static: {releases: {v1: ['127.0.0.1:$backend'], v2: ['127.0.0.1:$backend2']}}}
  healthCheck: {path: /health, interval: 1s}
  strategy: {canary: {steps: [{setWeight: 10}, {pause: {}}]}}
EOF
"$bin" apply -f "$work/app.yaml" >/dev/null
"$bin" deploy bench --version v1 >/dev/null
"$bin" deploy bench --version v2 >/dev/null

SWITCHYARD_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" \
  "$bin" proxy --control "$SWITCHYARD_SERVER" --id instructions --state-dir "$work/proxy" \
  --workers 1 2> "$OUT/valgrind.log" &
vg=$!; echo "$vg" > "$work/proxy.pid"
for _ in $(seq 600); do curl -sf -o /dev/null "http://127.0.0.1:$app/" && break; sleep 0.2; done
for _ in $(seq 300); do
  "$bin" -o json rollout status bench | grep -q '"phase": *"Paused"' && break
  sleep 0.1
done
h2load --h1 -n "$WARMUP" -c 16 "http://127.0.0.1:$app/" >/dev/null
callgrind_control -z "$vg" >/dev/null
codes=$(h2load --h1 -n "$REQUESTS" -c 16 "http://127.0.0.1:$app/" | grep "status codes")
callgrind_control -d "$vg" >/dev/null
case $codes in
  *"$REQUESTS 2xx"*) ;;
  *) echo "not every request succeeded: $codes" >&2; exit 1 ;;
esac
dump=$OUT/callgrind.out.1
for _ in $(seq 100); do [ -s "$dump" ] && break; sleep 0.1; done
total=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
echo "switchyard proxy: $((total / REQUESTS)) instructions per request ($REQUESTS requests, $codes)"
echo "Most inclusive instructions per request:"
callgrind_annotate --inclusive=yes --threshold=100 --auto=no "$dump" 2>/dev/null |
  awk -v n="$REQUESTS" '/^ *[0-9,]+ \(/ {v=$1; gsub(",", "", v);
    sub(/^ *[0-9,]+ \( *[0-9.]+%\) +/, ""); sub(/ \[.*$/, ""); sub(/^[^:]*:/, "");
    printf "%8d  %s\n", v / n, $0}' |
  grep -E "switchyard_proxy|hyper::proto|memcpy|malloc|free" | awk '!seen[$0]++' | head -25
