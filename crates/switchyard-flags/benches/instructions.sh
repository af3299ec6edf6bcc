#!/bin/sh
# Instructions per evaluation for both engines on every specification file, counted by
# callgrind: (Ir(N iterations) - Ir(0 iterations)) / (N x cases). Deterministic, so it backs the
# criterion table when the machine is noisy. Needs valgrind and a release build of the example:
#   cargo build --release -p switchyard-flags --example spec_eval_loop
#   crates/switchyard-flags/benches/instructions.sh [target-dir]
set -eu
target=${1:-target}
bin=$target/release/examples/spec_eval_loop
dir=$(dirname "$0")/../tests/unleash-client-specification
n=${N:-200}
ir() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" "$3" 2>&1 | awk '/Collected/ {print $4}'; }
echo "| flag set | switchyard Ir/eval | yggdrasil Ir/eval | ratio |"
echo "|---|---:|---:|---:|"
for stem in $(python3 -c "import json,sys; print(' '.join(f[:-5] for f in json.load(open(sys.argv[1]))))" "$dir/index.json"); do
    cases=$(python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print(len(s.get('tests', [])) + len(s.get('variantTests', [])))" "$dir/$stem.json")
    ours=$(( ($(ir "$stem" switchyard "$n") - $(ir "$stem" switchyard 0)) / (n * cases) ))
    theirs=$(( ($(ir "$stem" yggdrasil "$n") - $(ir "$stem" yggdrasil 0)) / (n * cases) ))
    echo "| $stem | $ours | $theirs | $(python3 -c "print(f'{$ours / $theirs:.2f}')") |"
done
