#!/usr/bin/env bash
# Backup, restore and move of a state store through the `switchyard` binary (release build):
# a daemon on a fresh data directory ingests BATCHES batches of 1000 experiment events with
# --keep-raw-events (a row per event, the bulk of a busy store), then
#   - `switchyard backup` while the daemon runs,
#   - `switchyard restore` into an empty data directory and into an empty PostgreSQL database
#     (a throwaway server from scripts/postgres),
#   - `switchyard migrate-store` of the original into another empty PostgreSQL database,
#   - a daemon started on the restored store until /ready answers,
# each timed. Prints the store's size, rows and the timings.
#
#   bench/store/backup.sh [BATCHES]
set -euo pipefail
cd "$(dirname "$0")/../.."
batches=${1:-100}
cargo build --release --quiet
bin=${CARGO_TARGET_DIR:-target}/release/switchyard
work=$(mktemp -d)
pg=$(./scripts/postgres start)
pg_url=$(sed -n 1p <<<"$pg")
pg_dir=$(sed -n 2p <<<"$pg")
cleanup() {
  for f in "$work"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  ./scripts/postgres stop "$pg_dir"
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() { for _ in $(seq 300); do curl -fs "http://127.0.0.1:$1/ready" >/dev/null && return; sleep 0.05; done; echo "not ready" >&2; exit 1; }
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }

port=$(free_port)
"$bin" serve --no-proxy --insecure-no-auth --keep-raw-events --data-dir "$work/old" \
  --listen "127.0.0.1:$port" >"$work/old.log" 2>&1 &
echo $! >"$work/old.pid"
wait_ready "$port"
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
YAML
"$bin" --server "http://127.0.0.1:$port" apply -f "$work/e.yaml" >/dev/null
python3 - "$work" "$batches" <<'PY'
import json, sys
work, batches = sys.argv[1], int(sys.argv[2])
for b in range(batches):
    events = []
    for i in range(500):
        unit = f"u{b}-{i}"
        events.append({"id": f"x{b}-{i}", "experiment": "checkout-redesign", "unit": unit,
                       "event": "$exposure", "variant": "control" if i % 2 else "redesign"})
        events.append({"id": f"p{b}-{i}", "experiment": "checkout-redesign", "unit": unit,
                       "event": "purchase", "value": 10 + i % 40})
    with open(f"{work}/batch{b}.json", "w") as f:
        json.dump({"events": events}, f)
PY
for b in $(seq 0 $((batches - 1))); do
  curl -fs -o /dev/null -H 'content-type: application/json' \
    --data-binary @"$work/batch$b.json" "http://127.0.0.1:$port/api/v1/events"
done
db_size=$(du -sm "$work/old" | cut -f1)

t0=$(now); "$bin" backup --data-dir "$work/old" --to "$work/state.backup" >"$work/backup.out"; t1=$(now)
backup_s=$(secs "$t0" "$t1")
kill "$(cat "$work/old.pid")"; rm "$work/old.pid"; sleep 1

t0=$(now); "$bin" restore --data-dir "$work/new" --from "$work/state.backup" >/dev/null; t1=$(now)
restore_sqlite_s=$(secs "$t0" "$t1")
port2=$(free_port)
t0=$(now)
"$bin" serve --no-proxy --insecure-no-auth --data-dir "$work/new" --listen "127.0.0.1:$port2" >"$work/new.log" 2>&1 &
echo $! >"$work/new.pid"
wait_ready "$port2"; t1=$(now)
start_s=$(secs "$t0" "$t1")

psql "$pg_url" -q -c "CREATE DATABASE restored" -c "CREATE DATABASE moved"
t0=$(now); "$bin" restore --database-url "${pg_url%/postgres}/restored" --from "$work/state.backup" >/dev/null; t1=$(now)
restore_pg_s=$(secs "$t0" "$t1")
kill "$(cat "$work/new.pid")"; rm "$work/new.pid"; sleep 1
t0=$(now); "$bin" migrate-store --data-dir "$work/old" --to "${pg_url%/postgres}/moved" >/dev/null; t1=$(now)
migrate_s=$(secs "$t0" "$t1")

echo "store: $db_size MB on disk; $(cat "$work/backup.out")"
echo "backup file: $(du -m "$work/state.backup" | cut -f1) MB"
echo "backup (daemon running):       $backup_s s"
echo "restore into SQLite:           $restore_sqlite_s s"
echo "daemon start on the restore:   $start_s s (until /ready)"
echo "restore into PostgreSQL:       $restore_pg_s s"
echo "migrate-store SQLite → PG:     $migrate_s s"
