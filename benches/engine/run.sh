#!/usr/bin/env bash
# End-to-end benchmark of `sluice engine` on the real Kafka and CQL server, next to a
# raw Kafka consume→produce passthrough on the same broker (issue #5). Builds the
# release `sluice` binary and the load generator, then runs the load generator,
# which starts one `sluice engine` process on fresh topics and a fresh keyspace
# and deletes them afterwards. It starts no servers: start Kafka and Cassandra
# first with `deploy/local/servers.sh start`.
#
#   benches/engine/run.sh [loadgen flags...]
#
# Defaults: --events 200000 --contacts 10000 --partitions 8 --latency-secs 20; any
# flag given here overrides them (`loadgen --help` lists them all, e.g.
# `--only engine`, `--latency-rate 500`, `--keep`).
# SLUICE_BIN=path/to/sluice and LOADGEN_BIN=path/to/loadgen use already built binaries.
#
# Prints progress on standard error and a Markdown table on standard output;
# BENCHMARKS.md records a run.
set -euo pipefail
cd "$(dirname "$0")/../.."
export SLUICE_CACHE="${SLUICE_CACHE:-$HOME/.cache/sluice}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$SLUICE_CACHE/target}"
kafka="${SLUICE_TEST_KAFKA:-127.0.0.1:9092}"
cql="${SLUICE_TEST_CQL:-127.0.0.1:9042}"
for server in "$kafka" "$cql"; do
  if ! (exec 3<>"/dev/tcp/${server%:*}/${server##*:}") 2>/dev/null; then
    echo "nothing listens on $server: start the servers with deploy/local/servers.sh start" >&2
    exit 1
  fi
done
if [[ -z "${SLUICE_BIN:-}" || -z "${LOADGEN_BIN:-}" ]]; then
  cargo build --release --quiet -p sluice --bin sluice -p sluice-benches --bin loadgen
fi
SLUICE_BIN="${SLUICE_BIN:-$CARGO_TARGET_DIR/release/sluice}"
LOADGEN_BIN="${LOADGEN_BIN:-$CARGO_TARGET_DIR/release/loadgen}"
export SLUICE_BIN SLUICE_TEST_KAFKA="$kafka" SLUICE_TEST_CQL="$cql"

echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/^Mem:/ {print $2}') GiB, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== loadgen --events 200000 --contacts 10000 --partitions 8 --latency-secs 20 $*"
exec "$LOADGEN_BIN" --events 200000 --contacts 10000 --partitions 8 --latency-secs 20 "$@"
