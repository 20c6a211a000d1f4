#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what is missing, starts the
# real Kafka and Cassandra (deploy/local/servers.sh, cached under
# ${SLUICE_CACHE:-~/.cache/sluice}), checks the deploy manifests and alert rules
# (deploy/local/check-deploy.sh), formatting and lints, and runs every
# unit and integration test. Servers this run started are stopped at the end;
# pass --keep-servers to leave them up for the next run.
set -euo pipefail
cd "$(dirname "$0")/../.."

keep_servers=false
for arg in "$@"; do
  case "$arg" in
    --keep-servers) keep_servers=true ;;
    *) echo "usage: $0 [--keep-servers]" >&2; exit 2 ;;
  esac
done

export SLUICE_CACHE="${SLUICE_CACHE:-$HOME/.cache/sluice}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$SLUICE_CACHE/target}"
export SLUICE_REQUIRE_SERVERS=1
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n== %s (%ss)\n' "$1" "$SECONDS" >&2; }

step "setup"
deploy/local/setup.sh

step "deploy manifests and alert rules"
deploy/local/check-deploy.sh

step "servers"
were_up=false
if deploy/local/servers.sh status >/dev/null 2>&1; then were_up=true; fi
deploy/local/servers.sh start
if [[ "$keep_servers" == false && "$were_up" == false ]]; then
  trap 'deploy/local/servers.sh stop' EXIT
fi

step "format"
cargo fmt --all -- --check

step "lint"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

step "tests"
cargo test --workspace --all-features --locked

step "done"
