#!/usr/bin/env bash
# The dashboard's apps page with APPS apps (default 200), through the whole daemon: a release
# build of `switchyard serve` (with its local proxy) on a fresh data directory, APPS apps of the
# static runtime (every release one `switchyard demo-app`), each with v1 stable, half of them
# with a rollout to v2 in progress (10 %); half labelled production, half staging. Signs in,
# then times ROUNDS requests (default 30) of `GET /ui/` (every app), `/ui/?environment=production`
# (half) and, as the reference measured in the same run, the JSON of `GET /api/v1/apps`, with
# curl on loopback: time to the first byte (the page is rendered whole before it is sent, so
# this is the server's time) and in total. Prints median, p90 and max in milliseconds.
#
#   bench/dashboard/apps-page.sh [APPS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
apps=${1:-200}
rounds=${2:-30}
cargo build --release --quiet
bin=$(realpath "${CARGO_TARGET_DIR:-target}/release/switchyard")
source bench/daemon.sh
port=$(free_port)
app_port=$(free_port)
"$bin" demo-app --port "$app_port" >"$work/app.log" 2>&1 &
echo $! >"$work/app.pid"
start_serve "$port"
python3 - "$apps" "$app_port" >"$work/apps.yaml" <<'PY'
import sys
apps, port = int(sys.argv[1]), sys.argv[2]
for i in range(apps):
    env = "production" if i % 2 == 0 else "staging"
    print(f"""---
apiVersion: switchyard.dev/v1alpha1
kind: App
metadata: {{name: app-{i:03d}, labels: {{environment: {env}}}}}
spec:
  listen: 127.0.0.1:0
  runtime: {{static: {{releases: {{v1: ["127.0.0.1:{port}"], v2: ["127.0.0.1:{port}"]}}}}}}
  healthCheck: {{path: /health, interval: 5s}}
  strategy: {{canary: {{steps: [{{setWeight: 10}}, {{pause: {{}}}}]}}}}""")
PY
"$bin" apply -f "$work/apps.yaml" >/dev/null
for i in $(seq 0 $((apps - 1))); do
  "$bin" deploy "$(printf 'app-%03d' "$i")" --version v1 >/dev/null
done
for i in $(seq 0 2 $((apps - 1))); do
  "$bin" deploy "$(printf 'app-%03d' "$i")" --version v2 >/dev/null
done
curl -fs -c "$work/jar" -H 'content-type: application/json' \
  -d "{\"token\":\"$SWITCHYARD_TOKEN\"}" "http://127.0.0.1:$port/ui/login" >/dev/null
rows=$(curl -fs -b "$work/jar" "http://127.0.0.1:$port/ui/" | grep -o '<tr><th scope="row">' | wc -l)
echo "apps page lists $rows apps"
measure() {
  local label=$1 url=$2
  shift 2
  for _ in $(seq "$rounds"); do
    curl -fs -o /dev/null -w '%{time_starttransfer} %{time_total}\n' "$@" "$url"
  done | python3 -c '
import sys
label = sys.argv[1]
rows = [tuple(float(x) * 1000 for x in line.split()) for line in sys.stdin]
def stats(values):
    values = sorted(values)
    at = lambda q: values[min(len(values) - 1, int(q * len(values)))]
    return f"median {at(0.5):.1f} p90 {at(0.9):.1f} max {values[-1]:.1f}"
print(f"{label:<34} first byte: {stats([r[0] for r in rows])} ms; total: {stats([r[1] for r in rows])} ms")
' "$label"
}
measure "GET /ui/ ($apps apps)" "http://127.0.0.1:$port/ui/" -b "$work/jar"
measure "GET /ui/?environment=production" "http://127.0.0.1:$port/ui/?environment=production" -b "$work/jar"
measure "GET /api/v1/apps (JSON, reference)" "http://127.0.0.1:$port/api/v1/apps" -H "Authorization: Bearer $SWITCHYARD_TOKEN"
