#!/usr/bin/env bash
# Event ingestion through the whole daemon: a release build of `switchyard serve` on a fresh data
# directory, one flag experiment, then BATCHES batches of 1000 events (half exposures of new
# units, half purchases of units already exposed) posted one after another with curl. Prints
# events per second, and the same batches posted again (every event a duplicate). Then times
# `GET /api/v1/experiments/KEY/results` (median of 11) for the experiment and for a twin that
# received the same units but caps revenue at its 99th percentile (recounted from every unit
# after each counted event), both right after an event and when nothing changed;
# `checkout-capped` is sent its events after the timed ingestion.
#
#   bench/experiments/ingest.sh [BATCHES]
set -euo pipefail
cd "$(dirname "$0")/../.."
batches=${1:-40}
cargo build --release --quiet
bin=${CARGO_TARGET_DIR:-target}/release/switchyard
work=$(mktemp -d)
trap 'kill $(cat "$work/pid") 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin" serve --data-dir "$work/data" --listen "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
echo $! >"$work/pid"
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
SWITCHYARD_TOKEN=$(cat "$work/data/admin.token")
export SWITCHYARD_TOKEN
auth="Authorization: Bearer $SWITCHYARD_TOKEN"
cat >"$work/e.yaml" <<'YAML'
apiVersion: switchyard.dev/v1alpha1
kind: Experiment
metadata: {name: checkout-redesign}
spec:
  split: {flag: {unit: userId}}
  variants:
    - {name: control, weight: 50}
    - {name: redesign, weight: 50}
  metrics:
    - {name: purchased, conversion: {event: purchase}}
    - {name: revenue, continuous: {event: purchase}}
    - name: order-value
      ratio: {numerator: {sum: purchase}, denominator: {count: purchase}}
YAML
sed -e 's/name: checkout-redesign/name: checkout-capped/' \
  -e 's/continuous: {event: purchase}}/continuous: {event: purchase}, cap: {percentile: 0.99}}/' \
  "$work/e.yaml" >"$work/capped.yaml"
grep -q 'percentile: 0.99' "$work/capped.yaml"
"$bin" --server "http://127.0.0.1:$port" apply -f "$work/e.yaml" >/dev/null
"$bin" --server "http://127.0.0.1:$port" apply -f "$work/capped.yaml" >/dev/null
python3 - "$work" "$batches" <<'PY'
import json, sys
work, batches = sys.argv[1], int(sys.argv[2])
for key, prefix in (("checkout-redesign", "batch"), ("checkout-capped", "capped")):
    for b in range(batches):
        events = []
        for i in range(500):
            unit = f"u{b}-{i}"
            variant = "control" if i % 2 else "redesign"
            events.append({"id": f"x{b}-{i}", "experiment": key, "unit": unit,
                           "event": "$exposure", "variant": variant})
            events.append({"id": f"p{b}-{i}", "experiment": key, "unit": unit,
                           "event": "purchase", "value": 10 + i % 40 + (1000 if i == 7 else 0)})
        with open(f"{work}/{prefix}{b}.json", "w") as f:
            json.dump({"events": events}, f)
PY
post_all() {
  for b in $(seq 0 $((batches - 1))); do
    curl -fs -o /dev/null -H 'content-type: application/json' -H "$auth" \
      --data-binary @"$work/$1$b.json" "http://127.0.0.1:$port/api/v1/events"
  done
}
for what in new duplicate; do
  start=$(date +%s.%N); post_all batch; end=$(date +%s.%N)
  python3 -c "
d = $end - $start; n = $batches * 1000
print(f'$what events: {n} in {d:.2f} s = {n / d:,.0f} events/s ({d / $batches * 1000:.1f} ms per batch of 1000)')"
done
post_all capped
results_time() {
  curl -fs -o /dev/null -H "$auth" -w '%{time_total}\n' "http://127.0.0.1:$port/api/v1/experiments/$1/results"
}
# The recount with a percentile cap is kept until an event is counted: time the first results
# after each of 5 single-event batches (each forces a recount), then the cached ones.
for r in $(seq 5); do
  curl -fs -o /dev/null -H 'content-type: application/json' -H "$auth" --data-binary \
    "{\"events\": [{\"id\": \"extra-$r\", \"experiment\": \"checkout-capped\", \"unit\": \"u0-0\", \"event\": \"purchase\", \"value\": 1}]}" \
    "http://127.0.0.1:$port/api/v1/events"
  results_time checkout-capped
done | sort -n | sed -n 3p | python3 -c "
import sys; print(f'results of checkout-capped after a new event (recount of $((batches * 500)) units): {float(sys.stdin.read()) * 1000:.1f} ms (median of 5)')"
for key in checkout-redesign checkout-capped; do
  for _ in $(seq 11); do
    results_time "$key"
  done | sort -n | sed -n 6p | python3 -c "
import sys; print(f'results of $key ($((batches * 500)) units): {float(sys.stdin.read()) * 1000:.1f} ms (median of 11)')"
done
"$bin" --server "http://127.0.0.1:$port" experiment results checkout-capped | grep -m1 'capped at' || true
"$bin" --server "http://127.0.0.1:$port" experiment results checkout-redesign | sed -n '1,12p'
