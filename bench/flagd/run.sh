#!/usr/bin/env bash
# flagd evaluation: Switchyard (criterion, release) and flagd's own Go evaluator
# (tests/flagd-reference, github.com/open-feature/flagd/core) on the same cases: the flagd
# testbed's evaluator scenarios over testkit-flags.json, with the same typed requests.
#
#   bash bench/flagd/run.sh        # REPEAT=2000 passes over the cases for the Go evaluator
set -euo pipefail
cd "$(dirname "$0")/../.."
REPEAT=${REPEAT:-2000}
reference=$(./scripts/flagd-reference)
request=$(python3 - <<'PY'
import json
cases = [c for c in json.load(open("crates/switchyard-flags/tests/flagd/testbed-cases.json")) if "flag_file" not in c]
document = open("crates/switchyard-flags/tests/flagd/testkit-flags.json").read()
print(json.dumps({"document": document, "cases": [{"flag": c["flag"], "type": c["type"], "context": c["context"]} for c in cases]}))
PY
)
echo "== flagd (Go, flagd/core v0.17.0): $REPEAT passes"
go_ns=$(echo "$request" | FLAGD_REFERENCE_REPEAT=$REPEAT "$reference" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["ns_per_evaluation"]); print(r["evaluations"], "evaluations", file=sys.stderr)')
echo "flagd: $go_ns ns per evaluation"
echo "== Switchyard (criterion)"
cargo bench -q -p switchyard-flags --bench flagd -- --warm-up-time 1 --measurement-time 3 2>&1 | tee /tmp/switchyard-flagd-bench.txt | grep -E "time:|thrpt:" || true
ours=$(python3 -c 'import json; print(json.load(open("target/criterion/flagd-testbed/switchyard/new/estimates.json"))["median"]["point_estimate"])')
cases=$(python3 -c 'import json; print(len([c for c in json.load(open("crates/switchyard-flags/tests/flagd/testbed-cases.json")) if "flag_file" not in c]))')
python3 -c "
ours = $ours / $cases
theirs = $go_ns
print(f'switchyard: {ours:.0f} ns per evaluation (median of criterion samples, {$cases} cases per iteration)')
print(f'flagd:      {theirs:.0f} ns per evaluation')
print(f'ratio switchyard / flagd: {ours / theirs:.3f}')
"
