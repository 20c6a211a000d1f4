#!/usr/bin/env bash
# Installs what building and testing Sluice needs and the machine lacks:
# a C toolchain (rdkafka builds its bundled librdkafka), a JDK 17 and Maven (the
# local Kafka and Cassandra run from Maven Central artifacts), and curl. Uses
# apt-get (Debian/Ubuntu), only for what is missing; a no-op on a ready machine.
# For deploy/local/check-deploy.sh, under ${SLUICE_CACHE:-~/.cache/sluice}: a venv with
# kubernetes-validate (PyPI), promtool extracted from Debian's `prometheus` package (the
# package itself is not installed, so no Prometheus service starts), the
# prometheus-operator CRD schemas (npm @kubernetes-models/prometheus-operator), and kustomize from
# the Go module proxy when kubectl (which embeds it) is missing or embeds an old one.
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
python3 -c 'import ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
have node || need+=(nodejs)
have npm || need+=(npm)
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

# Deployment checks' tools (deploy/local/check-deploy.sh).
cache="${SLUICE_CACHE:-$HOME/.cache/sluice}"
tools="$cache/tools"
mkdir -p "$tools"
kubernetes_validate_version=1.37.0
if ! "$cache/venv/bin/kubernetes-validate" --version 2>/dev/null | grep -qx "$kubernetes_validate_version"; then
  echo "setup: installing kubernetes-validate $kubernetes_validate_version into $cache/venv" >&2
  python3 -m venv "$cache/venv"
  "$cache/venv/bin/pip" install -q --disable-pip-version-check "kubernetes-validate==$kubernetes_validate_version"
fi
if ! have promtool && [[ ! -x "$tools/promtool" ]]; then
  echo "setup: extracting promtool from Debian's prometheus package into $tools" >&2
  download=$(mktemp -d)
  if ! (cd "$download" && apt-get download prometheus >/dev/null 2>&1); then
    sudo=""
    if [[ $(id -u) != 0 ]]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    (cd "$download" && apt-get download prometheus >/dev/null)
  fi
  dpkg-deb --fsys-tarfile "$download"/prometheus_*.deb | tar -x -C "$download" ./usr/bin/promtool
  mv "$download/usr/bin/promtool" "$tools/promtool"
  rm -rf "$download"
fi
prometheus_models_version=6.0.0
if [[ ! -f "$cache/npm/node_modules/@kubernetes-models/prometheus-operator/package.json" ]] ||
  ! grep -q "\"version\": \"$prometheus_models_version\"" "$cache/npm/node_modules/@kubernetes-models/prometheus-operator/package.json"; then
  echo "setup: installing @kubernetes-models/prometheus-operator $prometheus_models_version into $cache/npm" >&2
  npm install --prefix "$cache/npm" --no-audit --no-fund --silent "@kubernetes-models/prometheus-operator@$prometheus_models_version"
fi
kustomize_version=v5.5.0
if ! kubectl version --client 2>/dev/null | grep -q '^Kustomize Version: v5' && [[ ! -x "$tools/kustomize" ]]; then
  if ! have go; then
    echo "setup: neither kubectl (with kustomize v5) nor go is available to provide kustomize; install one and retry" >&2
    exit 1
  fi
  echo "setup: installing kustomize $kustomize_version into $tools" >&2
  GOBIN="$tools" go install "sigs.k8s.io/kustomize/kustomize/v5@$kustomize_version"
fi
