#!/usr/bin/env bash
# Load test of `sluice ingest` with wrk on loopback against the real local Kafka:
# the generic endpoint (HMAC-signed event) and the Telegram endpoint (secret token).
# Every request is published and acknowledged by Kafka (acks=all): the dedupe memory is
# switched off, since wrk repeats one body.
#
#   benches/ingest/run.sh [duration=30s] [connections=128] [threads=2]
#
# SLUICE_BIN=path/to/sluice uses an already built binary instead of building one.
#
# Prints wrk's report per endpoint; BENCHMARKS.md records a run.
set -euo pipefail
cd "$(dirname "$0")/../.."
duration="${1:-30s}"
connections="${2:-128}"
threads="${3:-2}"

command -v wrk >/dev/null || deploy/local/setup.sh
command -v wrk >/dev/null || { echo "wrk is missing (apt-get install wrk)" >&2; exit 1; }
export SLUICE_CACHE="${SLUICE_CACHE:-$HOME/.cache/sluice}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$SLUICE_CACHE/target}"
deploy/local/servers.sh start kafka
if [[ -z "${SLUICE_BIN:-}" ]]; then
  cargo build --release -p sluice --quiet
  SLUICE_BIN="$CARGO_TARGET_DIR/release/sluice"
fi

work=$(mktemp -d)
pid=""
cleanup() { [[ -n "$pid" ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

cat >"$work/ingest.yaml" <<'YAML'
tenants:
  bench:
    telegram:
      bots:
        bench_bot: {secret_token: bench-telegram-token}
    events: {secret: bench-events-secret}
YAML
cp ingest/tests/fixtures/generic/custom.json "$work/event.json"
sed -i 's/"tenant": "acme"/"tenant": "bench"/' "$work/event.json"
cp ingest/tests/fixtures/telegram/message_text.json "$work/telegram.json"
signature=$(python3 -c 'import hmac,hashlib,sys; print("sha256="+hmac.new(b"bench-events-secret", open(sys.argv[1],"rb").read(), hashlib.sha256).hexdigest())' "$work/event.json")

"$SLUICE_BIN" --log warn ingest \
  --listen 127.0.0.1:18080 --metrics-addr 127.0.0.1:19464 \
  --bus kafka://127.0.0.1:9092 --config "$work/ingest.yaml" --dedupe-capacity 0 &
pid=$!
for _ in $(seq 100); do
  curl -fs http://127.0.0.1:19464/readyz >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fs http://127.0.0.1:19464/readyz >/dev/null

run() {
  local name=$1 url=$2 body=$3 header=$4 value=$5
  echo "== $name: $url ($(wc -c <"$body") bytes, $connections connections, $threads threads, $duration)"
  BODY_FILE=$body HEADER_NAME=$header HEADER_VALUE=$value \
    wrk -t"$threads" -c"$connections" -d"$duration" --latency -s benches/ingest/post.lua "$url"
}
run generic http://127.0.0.1:18080/v1/bench/events "$work/event.json" X-Sluice-Signature "$signature"
run telegram http://127.0.0.1:18080/v1/bench/telegram/bench_bot "$work/telegram.json" \
  X-Telegram-Bot-Api-Secret-Token bench-telegram-token
echo "== ingest metrics"
curl -fs http://127.0.0.1:19464/metrics | grep -E '^sluice_ingest_(requests_total|publish_seconds_(sum|count)|events_published_total)'
