#!/usr/bin/env bash
# Installs what building and testing Sluice needs and the machine lacks:
# a C toolchain (rdkafka builds its bundled librdkafka), a JDK 17 and Maven (the
# local Kafka and Cassandra run from Maven Central artifacts), and curl. Uses
# apt-get (Debian/Ubuntu), only for what is missing; a no-op on a ready machine.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have cc || need+=(build-essential)
have make || need+=(make)
have perl || need+=(perl)
have java || need+=(openjdk-17-jre-headless)
have mvn || need+=(maven)
have curl || need+=(curl)
have python3 || need+=(python3)
have dot || need+=(graphviz)
have wrk || need+=(wrk)

if ((${#need[@]})); then
  if ! have apt-get; then
    echo "setup: missing ${need[*]} and no apt-get to install them; install them and retry" >&2
    exit 1
  fi
  sudo=""
  if [[ $(id -u) != 0 ]]; then sudo="sudo"; fi
  echo "setup: installing ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! have cargo; then
  echo "setup: cargo is missing; install Rust (the toolchain is pinned in rust-toolchain.toml)" >&2
  exit 1
fi
java_major=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
if [[ "$java_major" != 17 && "$java_major" != 11 ]]; then
  echo "setup: Cassandra 5.0 needs JDK 11 or 17, found java $java_major" >&2
  exit 1
fi
