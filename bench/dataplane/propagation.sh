#!/usr/bin/env bash
# Propagation of weight changes to several proxies: the e2e test that starts `switchyard serve`
# (release build) and three `switchyard proxy` processes, each in its own network namespace on a
# bridge, runs a canary through CHANGES weights and prints the time from each change until the
# last proxy acknowledged it (p50/p99 of `switchyard_dataplane_propagation_seconds`). Needs root
# (ip netns).
#
# With REPLICAS=1 it runs, in the same run, the variant with two `serve --database-url` replicas
# on a throwaway PostgreSQL server, the proxies following the follower (their table requests and
# reports forwarded to the leader).
#
#   bash bench/dataplane/propagation.sh              # CHANGES=40
#   REPLICAS=1 bash bench/dataplane/propagation.sh   # both: one daemon, then replicas
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "${REPLICAS:-0}" = 1 ]; then
  pg=$(./scripts/postgres start)
  trap './scripts/postgres stop "$(sed -n 2p <<<"$pg")"' EXIT
  export SWITCHYARD_TEST_POSTGRES=$(sed -n 1p <<<"$pg")
  SWITCHYARD_PROPAGATION_CHANGES=${CHANGES:-40} cargo test --release -q -p switchyard --test e2e -- \
    --include-ignored --test-threads 1 netns:: --nocapture 2>&1 | grep -E "propagation to|test result"
else
  SWITCHYARD_PROPAGATION_CHANGES=${CHANGES:-40} cargo test --release -q -p switchyard --test e2e -- \
    --exact netns::proxies_on_several_hosts_apply_every_weight_and_a_stopped_one_holds_the_acknowledgement \
    --nocapture 2>&1 | grep -E "propagation to|test result"
fi
