#!/usr/bin/env bash
# OFREP throughput: wrk against a real `switchyard serve` holding the Unleash client
# specification's flag sets (every file's `state`, applied in order through the CLI; keys that
# repeat across files are replaced by the later file).
#
#   bash bench/ofrep/run.sh            # DURATION=10 CONNS=64 THREADS=2 by default
#
# The daemon runs on CPU 0, wrk on CPU 1 (taskset, when there are two CPUs). Each request
# carries a context with one of 1000 targeting keys (rotated by a Lua script), so rollouts and
# splits hash different users. Measured:
#   1. bulk   POST /ofrep/v1/evaluate/flags           (every flag, with ETag)
#   2. bulk   the same with If-None-Match of a previous answer (304 path)
#   3. single POST /ofrep/v1/evaluate/flags/{key}
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
PORT=${PORT:-7171}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$(pwd)/target}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
[ -n "${SKIP_BUILD:-}" ] || cargo build --release -q -p switchyard
BIN=$CARGO_TARGET_DIR/release/switchyard
SPEC=crates/switchyard-flags/tests/unleash-client-specification
WORK=$(mktemp -d)
PIN_DAEMON=() PIN_WRK=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  PIN_DAEMON=(taskset -c 0) PIN_WRK=(taskset -c 1)
fi

SWITCHYARD_LOG=warn "${PIN_DAEMON[@]}" "$BIN" serve --data-dir "$WORK/data" \
  --listen "127.0.0.1:$PORT" >"$WORK/daemon.log" 2>&1 &
DAEMON=$!
trap 'kill $DAEMON 2>/dev/null; wait $DAEMON 2>/dev/null; rm -rf "$WORK"' EXIT
export SWITCHYARD_SERVER=http://127.0.0.1:$PORT
for _ in $(seq 100); do curl -fs "$SWITCHYARD_SERVER/health" >/dev/null && break; sleep 0.1; done

applied=0
for file in $(python3 -c "import json; print(' '.join(json.load(open('$SPEC/index.json'))))"); do
  python3 -c "import json,sys; json.dump(json.load(open('$SPEC/$file'))['state'], sys.stdout)" \
    >"$WORK/state.json"
  if "$BIN" flags apply -f "$WORK/state.json" --format unleash --reason "bench: $file" >/dev/null; then
    applied=$((applied + 1))
  else
    echo "skipped $file (does not apply on top of the others)" >&2
  fi
done
FLAGS=$("$BIN" flags list -o json | python3 -c "import json,sys; print(len(json.load(sys.stdin)['flags']))")
KEY=$("$BIN" flags list -o json | python3 -c "import json,sys; print(json.load(sys.stdin)['flags'][0]['key'])")
echo "loaded $applied spec files: $FLAGS flags (single-flag target: $KEY)"

cat >"$WORK/context.lua" <<'LUA'
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  n = n + 1
  local body = string.format(
    '{"context":{"targetingKey":"user-%d","sessionId":"s-%d","appName":"bench","environment":"production"}}',
    n % 1000, n % 977)
  return wrk.format(nil, path, nil, body)
end
LUA

run() { # name path extra-wrk-args...
  local name=$1 path=$2; shift 2
  { echo "path = \"$path\""; cat "$WORK/context.lua"; } >"$WORK/$name.lua"
  "${PIN_WRK[@]}" wrk -t"$THREADS" -c"$CONNS" -d2s -s "$WORK/$name.lua" "$@" "$SWITCHYARD_SERVER" >/dev/null
  "${PIN_WRK[@]}" wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -s "$WORK/$name.lua" "$@" \
    "$SWITCHYARD_SERVER" | tee "$WORK/$name.out" >&2
  local rps p50 p99 bytes
  rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/$name.out")
  p50=$(awk '$1 == "50%" {print $2}' "$WORK/$name.out")
  p99=$(awk '$1 == "99%" {print $2}' "$WORK/$name.out")
  printf '| %s | %s | %s | %s |\n' "$name" "$rps" "$p50" "$p99" >>"$WORK/table"
}

SIZE=$(curl -s -X POST -H 'Content-Type: application/json' \
  -d '{"context":{"targetingKey":"user-1"}}' "$SWITCHYARD_SERVER/ofrep/v1/evaluate/flags" | wc -c)
ETAG=$(curl -s -D - -o /dev/null -X POST -H 'Content-Type: application/json' \
  -d '{"context":{"targetingKey":"user-1"}}' "$SWITCHYARD_SERVER/ofrep/v1/evaluate/flags" |
  awk -F': ' 'tolower($1) == "etag" {print $2}' | tr -d '\r')
echo "bulk answer: $SIZE bytes, ETag $ETAG"

: >"$WORK/table"
run bulk /ofrep/v1/evaluate/flags
# A fixed context, so the answer (and its ETag) repeats: the 304 path.
{ echo 'wrk.method = "POST"'; echo 'wrk.headers["Content-Type"] = "application/json"'
  echo "wrk.headers[\"If-None-Match\"] = '$ETAG'"
  echo "wrk.body = '{\"context\":{\"targetingKey\":\"user-1\"}}'"; } >"$WORK/bulk-304.lua"
"${PIN_WRK[@]}" wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -s "$WORK/bulk-304.lua" \
  "$SWITCHYARD_SERVER/ofrep/v1/evaluate/flags" | tee "$WORK/bulk-304.out" >&2
printf '| bulk-304 | %s | %s | %s |\n' "$(awk '/Requests\/sec/ {print $2}' "$WORK/bulk-304.out")" \
  "$(awk '$1 == "50%" {print $2}' "$WORK/bulk-304.out")" "$(awk '$1 == "99%" {print $2}' "$WORK/bulk-304.out")" >>"$WORK/table"
ENCODED=$(python3 -c "import urllib.parse,sys; print(urllib.parse.quote(sys.argv[1], safe=''))" "$KEY")
run single "/ofrep/v1/evaluate/flags/$ENCODED"

echo
echo "flags: $FLAGS, bulk answer: $SIZE bytes, wrk -t$THREADS -c$CONNS -d${DURATION}s"
echo "| endpoint | requests/s | p50 | p99 |"
echo "|---|---:|---:|---:|"
cat "$WORK/table"
