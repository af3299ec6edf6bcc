#!/usr/bin/env bash
# What a pipeline adds to its rollouts, and how soon a webhook hears of them, through the whole
# daemon: a release build of `switchyard serve` (with its local proxy) on a fresh data
# directory, a pipeline of three stages (dev, staging, prod in two waves) over four apps of the
# static runtime (all pointing at one `switchyard demo-app`, so no process start is timed),
# each a one-step canary (`setWeight: 100`), and a webhook notifier (HMAC-signed) for every
# rollout and pipeline notification, received by a Python HTTP server on loopback that stamps
# each arrival. RUNS releases (default 20) are run one after the other; from the notifications:
#   - handoff: from a rollout's `rollout.promoted` to the next stage's (or wave's)
#     `rollout.started`: the time the pipeline runner adds between two deployments;
#   - delivery: from an event's time in the log to the webhook's arrival;
#   - run: from `pipeline.started` to `pipeline.finished`.
# Prints median, p90 and max in milliseconds.
#
#   bench/pipelines/release.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-20}
cargo build --release --quiet --bin switchyard
bin=$(realpath "${CARGO_TARGET_DIR:-target}/release/switchyard")
source bench/daemon.sh
port=$(free_port)
app_port=$(free_port)
hook_port=$(free_port)
"$bin" demo-app --port "$app_port" >"$work/app.log" 2>&1 &
echo $! >"$work/app.pid"
python3 - "$hook_port" "$work/received" <<'PY' &
import http.server, sys, time
port, out = int(sys.argv[1]), sys.argv[2]
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        stamp = time.time_ns() // 1_000_000
        with open(out, "ab") as f:
            f.write(f"{stamp}\t".encode() + body + b"\n")
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 256  # the default backlog (5) drops the daemon's parallel connections
Server(("127.0.0.1", port), Hook).serve_forever()
PY
echo $! >"$work/hook.pid"
SWITCHYARD_BENCH_KEY=bench-key start_serve "$port"
python3 - "$runs" "$app_port" "$hook_port" >"$work/fleet.yaml" <<'PY'
import sys
runs, port, hook = int(sys.argv[1]), sys.argv[2], sys.argv[3]
releases = ", ".join(f'v{i}: ["127.0.0.1:{port}"]' for i in range(1, runs + 2))
for name in ["dev", "staging", "eu", "us"]:
    print(f"""---
apiVersion: switchyard.dev/v1alpha1
kind: App
metadata: {{name: shop-{name}}}
spec:
  listen: 127.0.0.1:0
  notifiers: [bench]
  runtime: {{static: {{releases: {{{releases}}}}}}}
  healthCheck: {{path: /health, interval: 5s}}
  strategy: {{canary: {{steps: [{{setWeight: 100}}]}}}}""")
print(f"""---
apiVersion: switchyard.dev/v1alpha1
kind: Notifier
metadata: {{name: bench}}
spec:
  webhook: {{url: "http://127.0.0.1:{hook}/hook", secretEnv: SWITCHYARD_BENCH_KEY}}
---
apiVersion: switchyard.dev/v1alpha1
kind: Pipeline
metadata: {{name: shop}}
spec:
  notifiers: [bench]
  stages:
    - {{name: dev, targets: [shop-dev]}}
    - {{name: staging, targets: [shop-staging]}}
    - name: prod
      waves: [{{targets: [shop-eu]}}, {{targets: [shop-us]}}]""")
PY
"$bin" apply -f "$work/fleet.yaml" >/dev/null
for app in shop-dev shop-staging shop-eu shop-us; do
  "$bin" deploy "$app" --version v1 >/dev/null
done
for i in $(seq 2 $((runs + 1))); do
  "$bin" release shop "v$i" --watch >/dev/null
done
# Every notification queued so far delivered: nothing pending in the outbox.
for _ in $(seq 200); do
  sleep 0.5
  "$bin" notifications -o json | python3 -c 'import json,sys; c=json.load(sys.stdin)["counts"]; sys.exit(0 if c and all(x["status"]=="delivered" for x in c) else 1)' && break
done
python3 - "$work/received" "$runs" <<'PY'
import json, statistics, sys
from datetime import datetime
path, runs = sys.argv[1], int(sys.argv[2])
def ms(at):
    return int(datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp() * 1000)
rows = []
for line in open(path, "rb"):
    stamp, body = line.split(b"\t", 1)
    n = json.loads(body)
    rows.append((int(stamp), n))
rows.sort(key=lambda r: r[1]["event"]["id"])
delivery = [stamp - ms(n["at"]) for stamp, n in rows]
handoff, run_ms, promoted, started = [], [], None, None
order = ["shop-dev", "shop-staging", "shop-eu", "shop-us"]
for _, n in rows:
    if n["type"] == "pipeline.started":
        started, promoted = ms(n["at"]), None
    elif n["type"] == "rollout.promoted" and started is not None:
        promoted = (n["app"], ms(n["at"]))
    elif n["type"] == "rollout.started" and promoted is not None and n["app"] != promoted[0]:
        handoff.append(ms(n["at"]) - promoted[1])
        promoted = None
    elif n["type"] == "pipeline.finished" and started is not None:
        run_ms.append(ms(n["at"]) - started)
        started, promoted = None, None
def show(label, xs):
    xs = sorted(xs)
    p90 = xs[min(len(xs) - 1, int(len(xs) * 0.9))]
    print(f"{label:<34} n={len(xs):<4} median {statistics.median(xs):7.1f} ms  p90 {p90:7.1f} ms  max {xs[-1]:7.1f} ms")
print(f"{runs} runs of dev -> staging -> prod (2 waves), one-step canaries, static releases")
show("handoff (promoted -> next started)", handoff)
show("webhook delivery (event -> arrival)", delivery)
show("whole run", run_ms)
PY
