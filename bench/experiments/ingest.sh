#!/usr/bin/env bash
# Event ingestion through the whole daemon: a release build of `switchyard serve` on a fresh data
# directory, one flag experiment, then BATCHES batches of 1000 events (half exposures of new
# units, half purchases of units already exposed) posted one after another with curl. Prints
# events per second, and the same batches posted again (every event a duplicate).
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
"$bin" --server "http://127.0.0.1:$port" apply -f "$work/e.yaml" >/dev/null
python3 - "$work" "$batches" <<'PY'
import json, sys
work, batches = sys.argv[1], int(sys.argv[2])
for b in range(batches):
    events = []
    for i in range(500):
        unit = f"u{b}-{i}"
        variant = "control" if i % 2 else "redesign"
        events.append({"id": f"x{b}-{i}", "experiment": "checkout-redesign", "unit": unit,
                       "event": "$exposure", "variant": variant})
        events.append({"id": f"p{b}-{i}", "experiment": "checkout-redesign", "unit": unit,
                       "event": "purchase", "value": 10 + i % 40})
    with open(f"{work}/batch{b}.json", "w") as f:
        json.dump({"events": events}, f)
PY
post_all() {
  for b in $(seq 0 $((batches - 1))); do
    curl -fs -o /dev/null -H 'content-type: application/json' \
      --data-binary @"$work/batch$b.json" "http://127.0.0.1:$port/api/v1/events"
  done
}
for what in new duplicate; do
  start=$(date +%s.%N); post_all; end=$(date +%s.%N)
  python3 -c "
d = $end - $start; n = $batches * 1000
print(f'$what events: {n} in {d:.2f} s = {n / d:,.0f} events/s ({d / $batches * 1000:.1f} ms per batch of 1000)')"
done
"$bin" --server "http://127.0.0.1:$port" experiment results checkout-redesign | sed -n '1,12p'
