#!/usr/bin/env bash
# Proxy benchmark of what users run: `switchyard serve` with its local proxy process, an app
# applied through the API (static releases v1 and v2, a canary paused at 10 %), against nginx and
# haproxy doing the same 90/10 split with upstream keep-alive and the same worker count, and the
# backend direct. One run, alternating rounds.
#
#   bash bench/proxy/run.sh         # ROUNDS=3 DURATION=8 STEP=5 CONNS=64 RATE_CONNS=32 H2_STREAMS=10
#
# Targets:
#   *-1w: one worker (`serve --proxy-workers 1`: a current-thread runtime; nginx
#         worker_processes 1; haproxy nbthread 1) pinned to CPU 0; backend and load generators
#         on CPU 1. The control plane runs beside its proxy (CPU 0), idle but for the reports.
#   *-2w: two workers (`--proxy-workers 2`, nginx worker_processes 2, haproxy nbthread 2) on both
#         CPUs; backend and load generators still on CPU 1.
#   direct: the load generators against the backend (CPU 1), the physical limit.
# 1. Max throughput, HTTP/1.1: wrk (closed loop), 2 s warm-up, then DURATION seconds, ROUNDS
#    rounds with the targets alternating; the median round counts, and beside it the median of
#    the per-round ratios (Switchyard against nginx measured seconds apart in each round).
# 2. Latency at RATE = half of nginx-1w's median maximum: examples/loadgen.rs (open loop, latency
#    from each request's due time) against every target; added = target - direct at that rate.
#    A target that cannot sustain RATE (p99 >= 1 ms or < 95 % served) is stepped down from 90 %
#    of its own maximum to the highest rate it serves with p99 < 1 ms.
# 3. HTTP/2 (h2load, h2c prior knowledge, CONNS connections x H2_STREAMS streams) and TLS (the
#    same certificate on both: wrk over HTTPS/1.1, h2load over TLS with ALPN h2), one worker,
#    ROUNDS alternating rounds.
# 4. RSS (VmRSS, KiB) idle and under wrk load: the proxy process, the control plane, nginx's
#    master and workers, haproxy.
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=bench/proxy
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8}
STEP=${STEP:-5}
CONNS=${CONNS:-64}
RATE_CONNS=${RATE_CONNS:-32}
H2_STREAMS=${H2_STREAMS:-10}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$(pwd)/target}
for tool in wrk nginx haproxy h2load openssl curl; do
  command -v "$tool" >/dev/null || {
    apt-get update -qq && apt-get install -y -qq wrk nginx haproxy nghttp2-client openssl curl >/dev/null
    break; }
done
[ -n "${SKIP_BUILD:-}" ] || {
  cargo build --release -q -p switchyard --bin switchyard
  cargo build --release -q -p switchyard-proxy --example bench_backend --example loadgen; }
SY=$CARGO_TARGET_DIR/release/switchyard
EX=$CARGO_TARGET_DIR/release/examples
TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  sleep 1
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  pkill -f "switchyard proxy --control http://127.0.0.1:1850" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

# One certificate for every TLS target.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
  -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null

# nginx and haproxy: the one-worker files with the worker count, ports and paths changed.
nginx_conf() { # workers port h2c_port tls_port name
  sed -e "s/worker_processes 1;/worker_processes $1;/" -e "s/18200/$2/" -e "s/18230/$3/" \
      -e "s/18240/$4/" -e "s#switchyard-bench-nginx#$5#g" -e "s#CERT#$TMP/cert.pem#" \
      -e "s#KEY#$TMP/key.pem#" "$HERE/nginx.conf" > "$TMP/$5.conf"
}
nginx_conf 1 18200 18230 18240 nginx1
nginx_conf 2 18210 18231 18241 nginx2
sed -e 's/nbthread 1/nbthread 2/' -e 's/18300/18310/' "$HERE/haproxy.cfg" > "$TMP/haproxy2.cfg"

taskset -c 1 "$EX/bench_backend" 18081 18082 & PIDS+=($!)
taskset -c 0 nginx -c "$TMP/nginx1.conf" & PIDS+=($!); NG1=$!
taskset -c 0,1 nginx -c "$TMP/nginx2.conf" & PIDS+=($!); NG2=$!
taskset -c 0 haproxy -f "$HERE/haproxy.cfg" & PIDS+=($!); HA1=$!
taskset -c 0,1 haproxy -f "$TMP/haproxy2.cfg" & PIDS+=($!); HA2=$!

# Switchyard as users run it: serve (control plane + local proxy), the app through the API.
switchyard() { # name workers cpus api_port app_port tls_port
  local dir=$TMP/$1 api=http://127.0.0.1:$4
  mkdir -p "$dir"
  SWITCHYARD_LOG=warn taskset -c "$3" "$SY" serve --data-dir "$dir/data" \
    --listen "127.0.0.1:$4" --insecure-no-auth --proxy-workers "$2" 2> "$dir/log" &
  PIDS+=($!)
  for _ in $(seq 300); do curl -sf "$api/ready" >/dev/null && break; sleep 0.1; done
  cat > "$dir/app.yaml" <<EOF
apiVersion: switchyard.dev/v1alpha1
kind: App
metadata: {name: bench}
spec:
  listen: 127.0.0.1:$5
  runtime: {static: {releases: {v1: ['127.0.0.1:18081'], v2: ['127.0.0.1:18082']}}}
  healthCheck: {path: /health, interval: 1s}
  strategy: {canary: {steps: [{setWeight: 10}, {pause: {}}]}}
---
apiVersion: switchyard.dev/v1alpha1
kind: App
metadata: {name: bench-tls}
spec:
  listen: 127.0.0.1:$6
  tls: {certificates: [{cert: $TMP/cert.pem, key: $TMP/key.pem}]}
  runtime: {static: {releases: {v1: ['127.0.0.1:18081'], v2: ['127.0.0.1:18082']}}}
  healthCheck: {path: /health, interval: 1s}
  strategy: {canary: {steps: [{setWeight: 10}, {pause: {}}]}}
EOF
  "$SY" --server "$api" apply -f "$dir/app.yaml" >/dev/null
  for app in bench bench-tls; do
    "$SY" --server "$api" deploy "$app" --version v1 >/dev/null
    "$SY" --server "$api" deploy "$app" --version v2 >/dev/null
    for _ in $(seq 300); do
      "$SY" --server "$api" -o json rollout status "$app" | grep -q '"phase": *"Paused"' && break
      sleep 0.1
    done
  done
}
switchyard sy1 1 0 18500 18100 18140
switchyard sy2 2 0,1 18501 18110 18141
proxy_pid() { pgrep -f "switchyard proxy --control http://127.0.0.1:$1" | head -1; }
serve_pid() { pgrep -f "serve --data-dir $TMP/$1/data" | head -1; }
declare -A PID=([switchyard-1w]=$(proxy_pid 18500) [switchyard-2w]=$(proxy_pid 18501))
sleep 1
for p in 18100 18110 18200 18210 18300 18310; do
  [ "$(curl -s "http://127.0.0.1:$p/")" = ok ] || { echo "port $p does not serve" >&2; exit 1; }
done

rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
rss_tree() { local s=0; for p in "$@"; do s=$(( s + $(rss "$p") )); done; echo "$s"; }
children() { pgrep -P "$1" | tr '\n' ' '; }
rss_of() { # target
  case $1 in
    switchyard-1w) rss "${PID[switchyard-1w]}" ;;
    switchyard-2w) rss "${PID[switchyard-2w]}" ;;
    nginx-1w) rss_tree $NG1 $(children $NG1) ;;
    nginx-2w) rss_tree $NG2 $(children $NG2) ;;
    haproxy-1w) rss $HA1 ;;
    haproxy-2w) rss $HA2 ;;
  esac
}
declare -A RSS_IDLE RSS_LOAD
for t in switchyard-1w switchyard-2w nginx-1w nginx-2w haproxy-1w haproxy-2w; do RSS_IDLE[$t]=$(rss_of "$t"); done
CP_RSS="$(rss "$(serve_pid sy1)") / $(rss "$(serve_pid sy2)")"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

declare -A PORT=([direct]=18081 [switchyard-1w]=18100 [nginx-1w]=18200 [haproxy-1w]=18300
                 [switchyard-2w]=18110 [nginx-2w]=18210 [haproxy-2w]=18310)
ORDER=(direct switchyard-1w nginx-1w haproxy-1w switchyard-2w nginx-2w haproxy-2w)
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A ROUND
for r in $(seq "$ROUNDS"); do
  for t in "${ORDER[@]}"; do
    url=http://127.0.0.1:${PORT[$t]}/
    taskset -c 1 wrk -t1 -c"$CONNS" -d2s "$url" >/dev/null
    if [ "$r" = 1 ] && [ "$t" != direct ]; then (sleep $((DURATION / 2)); rss_of "$t" > "$TMP/rss-$t") & fi
    out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" "$url")
    n=$(echo "$out" | awk '/Requests\/sec/ {printf "%d", $2}')
    ROUND[$t]="${ROUND[$t]:-} $n"
    echo "round $r $t: $n req/s" >&2
  done
done
declare -A RPS
for t in "${ORDER[@]}"; do RPS[$t]=$(echo "${ROUND[$t]}" | median); done
for t in "${ORDER[@]:1}"; do RSS_LOAD[$t]=$(cat "$TMP/rss-$t"); done

field() { echo "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k {print $2}'; }
loadgen() { taskset -c 1 "$EX/loadgen" "127.0.0.1:$1" "$2" "$3" "$RATE_CONNS"; }
sustained() { awk -v p="$(field "$1" p99_us)" -v r="$(field "$1" rps)" -v o="$2" \
  'BEGIN {exit !(p < 1000 && r >= 0.95 * o)}'; }
RATE=$(( RPS[nginx-1w] / 2 ))
declare -A LAT SUST
for t in "${ORDER[@]}"; do
  LAT[$t]=$(loadgen "${PORT[$t]}" "$RATE" "$DURATION")
  echo "$t @${RATE}/s: ${LAT[$t]}" >&2
done
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
      SUST[$t]="$r $(field "$l" p50_us) $(field "$l" p99_us) $(field "$l" p999_us) $(field "$d" p50_us) $(field "$d" p99_us)"
      break
    fi
  done
done

# HTTP/2 and TLS, one worker each.
h2() { taskset -c 1 h2load -c"$CONNS" -m"$H2_STREAMS" -t1 -D"$DURATION" "$1" 2>&1 \
  | awk '/^finished in/ {gsub(",", ""); for (i = 1; i <= NF; i++) if ($i == "req/s") {printf "%d", $(i-1)}}'; }
wrk_tls() { taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" "$1" | awk '/Requests\/sec/ {printf "%d", $2}'; }
declare -A EXTRA
EXTRA_ORDER=(h2c-switchyard h2c-nginx https1-switchyard https1-nginx h2tls-switchyard h2tls-nginx)
declare -A EXTRA_CMD=(
  [h2c-switchyard]="h2 http://127.0.0.1:18100/" [h2c-nginx]="h2 http://127.0.0.1:18230/"
  [https1-switchyard]="wrk_tls https://127.0.0.1:18140/" [https1-nginx]="wrk_tls https://127.0.0.1:18240/"
  [h2tls-switchyard]="h2 https://127.0.0.1:18140/" [h2tls-nginx]="h2 https://127.0.0.1:18240/")
for r in $(seq "$ROUNDS"); do
  for t in "${EXTRA_ORDER[@]}"; do
    n=$(${EXTRA_CMD[$t]})
    EXTRA[$t]="${EXTRA[$t]:-} $n"
    echo "round $r $t: $n req/s" >&2
  done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
dp99=$(field "${LAT[direct]}" p99_us)
echo
echo "Load average (1/5/15 min) at start: ${LOAD_START}; at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "HTTP/1.1 max: median of $ROUNDS alternating rounds (wrk -t1 -c$CONNS, ${DURATION} s each)"
echo "Offered rate: ${RATE} req/s (half of nginx-1w's maximum); loadgen scheduler lateness p99 (direct run): $(field "${LAT[direct]}" sched_late_p99_us) µs"
echo
echo "| target | max req/s (rounds) | served @ ${RATE}/s | p50 µs | p99 µs | p999 µs | p99 added µs | errors |"
echo "|---|---|---|---|---|---|---|---|"
for t in "${ORDER[@]}"; do
  l=${LAT[$t]}
  echo "| $t | ${RPS[$t]} (${ROUND[$t]# }) | $(field "$l" rps) | $(field "$l" p50_us) | $(field "$l" p99_us) | $(field "$l" p999_us) | $(( $(field "$l" p99_us) - dp99 )) | $(field "$l" errors) |"
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
echo "| one worker | Switchyard req/s (rounds) | nginx req/s (rounds) | Switchyard/nginx |"
echo "|---|---|---|---|"
for k in h2c https1 h2tls; do
  s=$(echo "${EXTRA[$k-switchyard]}" | median); n=$(echo "${EXTRA[$k-nginx]}" | median)
  echo "| $k | $s (${EXTRA[$k-switchyard]# }) | $n (${EXTRA[$k-nginx]# }) | $(ratio "$s" "$n") |"
done
echo
# Per-round ratios pair targets measured seconds apart, so drift of the host between rounds
# cancels out of them; their median beside the ratio of the medians.
paired() { # a b
  local -a xs=(${ROUND[$1]}) ys=(${ROUND[$2]}); local out="" i
  for i in "${!xs[@]}"; do out="$out $(ratio "${xs[$i]}" "${ys[$i]}")"; done
  echo "$(echo "$out" | median) (${out# })"
}
for w in 1w 2w; do
  echo "$w: Switchyard/direct $(ratio "${RPS[switchyard-$w]}" "${RPS[direct]}"), Switchyard/nginx $(ratio "${RPS[switchyard-$w]}" "${RPS[nginx-$w]}"), Switchyard/haproxy $(ratio "${RPS[switchyard-$w]}" "${RPS[haproxy-$w]}")"
  echo "$w: Switchyard/nginx round by round, median $(paired "switchyard-$w" "nginx-$w")"
done
echo
echo "| RSS KiB | idle | under wrk load |"
echo "|---|---|---|"
for t in switchyard-1w nginx-1w haproxy-1w switchyard-2w nginx-2w haproxy-2w; do
  echo "| $t | ${RSS_IDLE[$t]} | ${RSS_LOAD[$t]} |"
done
echo "Switchyard's proxy process is counted alone; its control plane (serve) beside it: ${CP_RSS} KiB (1w / 2w, idle). nginx: master + workers."
