#!/usr/bin/env bash
# Checks deploy/ offline: renders every Kustomize overlay, validates the result
# against Kubernetes' schemas (kubernetes-validate --strict), the ServiceMonitor and
# PrometheusRule against the prometheus-operator CRD schemas (validate_crds.mjs), the
# Strimzi and Scylla resources' structure (check_manifests.py), checks that every SLUICE_* variable a manifest sets
# is a flag of the binary, and checks and unit-tests the alert rules with promtool.
# Tools come from deploy/local/setup.sh (cached under ${SLUICE_CACHE:-~/.cache/sluice}).
# The metric names the alerts and dashboard use are checked against a running service
# by `cargo test -p sluice --test metrics_contract`.
set -euo pipefail
cd "$(dirname "$0")/../.."

cache="${SLUICE_CACHE:-$HOME/.cache/sluice}"
venv="$cache/venv"
promtool=$(command -v promtool || echo "$cache/tools/promtool")
k8s_version="${SLUICE_K8S_VERSION:-1.31.0}"

# kubectl embeds kustomize; an old one (Debian's kubernetes-client 1.20 has v2) cannot
# read these kustomizations, and then setup.sh installed kustomize v5 instead.
kustomize_build() {
  if kubectl version --client 2>/dev/null | grep -q '^Kustomize Version: v5'; then
    kubectl kustomize "$1"
  else
    "$cache/tools/kustomize" build "$1"
  fi
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Every SLUICE_* name the binary reads, from its clap declarations.
SLUICE_KNOWN_ENV=$(grep -rhoE 'env = "SLUICE_[A-Z0-9_]+"' sluice/src | sed -E 's/env = "(.*)"/\1/' | sort -u)
export SLUICE_KNOWN_ENV

for overlay in deploy/kubernetes/overlays/*/; do
  name=$(basename "$overlay")
  kustomize_build "$overlay" >"$work/$name.yaml"
  # Custom resources have no bundled schema (a warning); check_manifests.py checks them.
  if ! report=$("$venv/bin/kubernetes-validate" --strict --quiet -k "$k8s_version" "$work/$name.yaml" 2>&1); then
    echo "$report" >&2
    exit 1
  fi
  grep -v "Couldn't find schema for kind \(KafkaTopic\|ScyllaCluster\|ServiceMonitor\|PrometheusRule\) " <<<"$report" >&2 || true
  "$venv/bin/python" deploy/local/check_manifests.py "$work/$name.yaml" "$work/$name.rules.yaml" "$work/$name.monitoring.json"
  node deploy/local/validate_crds.mjs "$cache/npm" "$work/$name.monitoring.json"
  echo "check-deploy: overlay $name: $(grep -c '^kind:' "$work/$name.yaml") resources valid" >&2
done

# Alert rules (every PrometheusRule of the production overlay): syntax, then unit tests.
cp "$work/production.rules.yaml" "$work/alerts.rules.yaml"
# The dashboard's queries, as recording rules, so promtool parses every one of them.
"$venv/bin/python" - deploy/grafana/sluice.json "$work/dashboard.rules.yaml" <<'PY'
import json, sys, yaml
exprs = []
def walk(panels):
    for panel in panels:
        walk(panel.get("panels", []))
        exprs.extend((panel["title"], t["expr"]) for t in panel.get("targets", []) if "expr" in t)
walk(json.load(open(sys.argv[1]))["panels"])
rules = [{"record": f"dashboard:query_{i}", "expr": expr.replace("$__rate_interval", "5m")
          .replace("$namespace", ".*"), "labels": {"panel": title}}
         for i, (title, expr) in enumerate(exprs)]
yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(sys.argv[2], "w"))
print(f"check-deploy: {len(rules)} dashboard queries", file=sys.stderr)
PY
"$promtool" check rules "$work/alerts.rules.yaml" "$work/dashboard.rules.yaml" >/dev/null
cp deploy/kubernetes/tests/*.test.yaml "$work/"
"$promtool" test rules "$work"/*.test.yaml
echo "check-deploy: ok" >&2
