#!/usr/bin/env bash
# Runs `sluice dev` (everything in one process, embedded backends, no servers),
# after installing what building it needs. Arguments go to `sluice dev`.
set -euo pipefail
cd "$(dirname "$0")/../.."
deploy/local/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${SLUICE_CACHE:-$HOME/.cache/sluice}/target}"
exec cargo run --quiet --release --locked -p sluice -- dev "$@"
