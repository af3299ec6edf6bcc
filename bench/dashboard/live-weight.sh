#!/usr/bin/env bash
# How soon a rollout's live page shows a new weight: the dashboard's browser tests
# (scripts/ui-tests, Playwright driving Debian's Chromium) against a release build, with an app
# of nine weight steps promoted N times (default 30) through the API while its page is open.
# Each change is timed from just before the promote request to the page showing the weight
# (`[data-weight=W]`), so the API's own answer (which waits for the proxy to serve the weight)
# is included. Prints the median, p90 and max.
#
#   bench/dashboard/live-weight.sh [N]
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet
SWITCHYARD_UI_BENCH=${1:-30} ./scripts/ui-tests "${CARGO_TARGET_DIR:-target}/release/switchyard" | grep -E '^BENCH|checks passed'
