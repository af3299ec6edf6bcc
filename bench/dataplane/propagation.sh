#!/usr/bin/env bash
# Propagation of weight changes to several proxies: the e2e test that starts `switchyard serve`
# (release build) and three `switchyard proxy` processes, each in its own network namespace on a
# bridge, runs a canary through CHANGES weights and prints the time from each change until the
# last proxy acknowledged it (p50/p99 of `switchyard_dataplane_propagation_seconds`). Needs root
# (ip netns).
#
#   bash bench/dataplane/propagation.sh      # CHANGES=40
set -euo pipefail
cd "$(dirname "$0")/../.."
SWITCHYARD_PROPAGATION_CHANGES=${CHANGES:-40} cargo test --release -q -p switchyard --test e2e -- \
  --exact netns::proxies_on_several_hosts_apply_every_weight_and_a_stopped_one_holds_the_acknowledgement \
  --nocapture 2>&1 | grep -E "propagation to|test result"
