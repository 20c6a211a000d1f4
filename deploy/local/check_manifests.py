"""Offline checks of rendered Sluice manifests that kubernetes-validate cannot do.

Usage: check_manifests.py RENDERED.yaml [RULES_OUT.yaml [MONITORING_OUT.json]]

- Custom resources (Strimzi KafkaTopic, ScyllaCluster, ServiceMonitor, PrometheusRule):
  their CRD schemas are not in a package this machine can install, so their structure
  is checked here: required fields, types, and the values Sluice depends on.
- Every container reads only SLUICE_* names that `sluice … --help` documents (the
  list is passed in SLUICE_KNOWN_ENV, one name a line).
- The PrometheusRules' groups are written together to RULES_OUT for promtool, and the
  ServiceMonitor and PrometheusRule resources to MONITORING_OUT (JSON) for
  validate_crds.mjs, which checks them against the prometheus-operator CRD schemas.
Tooling only, not product code.
"""

import json
import os
import re
import sys

import yaml

errors = []


def fail(resource, message):
    kind = resource.get("kind", "?")
    name = resource.get("metadata", {}).get("name", "?")
    errors.append(f"{kind}/{name}: {message}")


def require(resource, path, kind_of):
    node = resource
    for key in path:
        if not isinstance(node, dict) or key not in node:
            fail(resource, f"missing {'.'.join(path)}")
            return None
        node = node[key]
    if not isinstance(node, kind_of):
        fail(resource, f"{'.'.join(path)} should be {kind_of.__name__}, is {type(node).__name__}")
        return None
    return node


def kafka_topic(r):
    if r["apiVersion"] != "kafka.strimzi.io/v1beta2":
        fail(r, "apiVersion should be kafka.strimzi.io/v1beta2")
    if not require(r, ["metadata", "labels", "strimzi.io/cluster"], str):
        return
    partitions = require(r, ["spec", "partitions"], int)
    replicas = require(r, ["spec", "replicas"], int)
    if partitions is not None and partitions < 1:
        fail(r, "partitions must be at least 1")
    if replicas is not None and not 1 <= replicas <= 32767:
        fail(r, "replicas out of range")
    config = r.get("spec", {}).get("config", {})
    for key, value in config.items():
        if not isinstance(value, (str, int, bool)):
            fail(r, f"config {key} must be a scalar")
    policy = config.get("cleanup.policy")
    expected = "compact" if r["metadata"]["name"] == "sluice.flows" else "delete"
    if policy != expected:
        fail(r, f"cleanup.policy should be {expected}, is {policy}")
    isr = int(config.get("min.insync.replicas", 1))
    if replicas is not None and isr > replicas:
        fail(r, f"min.insync.replicas {isr} > replicas {replicas}")


def scylla_cluster(r):
    if r["apiVersion"] != "scylla.scylladb.com/v1":
        fail(r, "apiVersion should be scylla.scylladb.com/v1")
    require(r, ["spec", "version"], str)
    require(r, ["spec", "datacenter", "name"], str)
    racks = require(r, ["spec", "datacenter", "racks"], list) or []
    if not racks:
        fail(r, "needs at least one rack")
    for rack in racks:
        for key, kind_of in (("name", str), ("members", int), ("storage", dict), ("resources", dict)):
            if not isinstance(rack.get(key), kind_of):
                fail(r, f"rack {rack.get('name')}: {key} should be {kind_of.__name__}")
        if not isinstance(rack.get("storage", {}).get("capacity"), str):
            fail(r, f"rack {rack.get('name')}: storage.capacity should be a quantity string")


def service_monitor(r, services):
    selector = require(r, ["spec", "selector", "matchLabels"], dict) or {}
    endpoints = require(r, ["spec", "endpoints"], list) or []
    matched = [s for s in services if selector.items() <= s["metadata"].get("labels", {}).items()]
    if not matched:
        fail(r, "selects no Service")
    for endpoint in endpoints:
        port = endpoint.get("port")
        for service in matched:
            if port not in {p.get("name") for p in service["spec"]["ports"]}:
                fail(r, f"Service {service['metadata']['name']} has no port {port}")
    job_label = r["spec"].get("jobLabel")
    for service in matched:
        if job_label and job_label not in service["metadata"].get("labels", {}):
            fail(r, f"Service {service['metadata']['name']} lacks jobLabel {job_label}")


def runbook_anchors():
    """GitHub's anchors of deploy/README.md's headings (the runbook alerts point at)."""
    readme = os.path.join(os.path.dirname(__file__), "..", "README.md")
    with open(readme, encoding="utf-8") as f:
        headings = [line.lstrip("#").strip() for line in f if line.startswith("#")]
    return {re.sub(r"[^a-z0-9 _-]", "", h.lower()).replace(" ", "-") for h in headings}


def prometheus_rule(r, rule_groups):
    groups = require(r, ["spec", "groups"], list) or []
    rule_groups.extend(groups)
    for group in groups:
        if not isinstance(group.get("name"), str) or not isinstance(group.get("rules"), list):
            fail(r, "each group needs a name and rules")
        for rule in group.get("rules", []):
            if not isinstance(rule.get("expr"), str):
                fail(r, f"rule {rule.get('alert') or rule.get('record')}: expr must be a string")
            if "alert" in rule and "runbook" not in rule.get("annotations", {}):
                fail(r, f"alert {rule['alert']} has no runbook annotation")
            runbook = rule.get("annotations", {}).get("runbook", "")
            if runbook and runbook.split("#", 1)[-1] not in runbook_anchors():
                fail(r, f"alert {rule.get('alert')}: runbook {runbook} names no heading of deploy/README.md")


def workloads(resources, known_env):
    for r in resources:
        if r["kind"] not in ("Deployment", "StatefulSet", "Job"):
            continue
        pod = r["spec"]["template"]["spec"]
        for container in pod.get("initContainers", []) + pod["containers"]:
            names = [e["name"] for e in container.get("env", [])]
            for source in container.get("envFrom", []):
                ref = source.get("configMapRef") or source.get("secretRef")
                kind = "ConfigMap" if "configMapRef" in source else "Secret"
                found = [x for x in resources if x["kind"] == kind and x["metadata"]["name"] == ref["name"]]
                if not found and not ref.get("optional") and kind == "ConfigMap":
                    fail(r, f"{container['name']} reads missing ConfigMap {ref['name']}")
                for x in found:
                    names += list(x.get("data", {})) + list(x.get("stringData", {}))
            for name in names:
                if name.startswith("SLUICE_") and known_env and name not in known_env:
                    fail(r, f"{container['name']}: {name} is not a flag of `sluice {' '.join(container.get('args', []))}`")
            security = container.get("securityContext", {})
            if not (security.get("readOnlyRootFilesystem") and security.get("capabilities", {}).get("drop") == ["ALL"]
                    and security.get("allowPrivilegeEscalation") is False):
                fail(r, f"{container['name']}: needs a read-only root fs, no privilege escalation, all caps dropped")
        for container in pod["containers"]:
            probes = {kind: container.get(kind, {}).get("httpGet", {}).get("path")
                      for kind in ("livenessProbe", "readinessProbe")}
            if probes != {"livenessProbe": "/healthz", "readinessProbe": "/readyz"}:
                fail(r, f"{container['name']}: liveness must probe /healthz and readiness /readyz, found {probes}")
            limits = container.get("resources", {})
            if not all(limits.get(k, {}).get(q) for k in ("requests", "limits") for q in ("cpu", "memory")):
                fail(r, f"{container['name']}: needs cpu and memory requests and limits")
        if not pod.get("securityContext", {}).get("runAsNonRoot"):
            fail(r, "pod must run as non-root")
        if r["kind"] != "Job" and not pod.get("topologySpreadConstraints"):
            fail(r, "needs topologySpreadConstraints")


def main():
    rendered = sys.argv[1]
    rules_out = sys.argv[2] if len(sys.argv) > 2 else None
    monitoring_out = sys.argv[3] if len(sys.argv) > 3 else None
    known_env = set(os.environ.get("SLUICE_KNOWN_ENV", "").split())
    with open(rendered, encoding="utf-8") as f:
        resources = [r for r in yaml.safe_load_all(f) if r]
    services = [r for r in resources if r["kind"] == "Service"]
    seen = set()
    rule_groups = []
    for r in resources:
        kind = r["kind"]
        seen.add(kind)
        if kind == "KafkaTopic":
            kafka_topic(r)
        elif kind == "ScyllaCluster":
            scylla_cluster(r)
        elif kind == "ServiceMonitor":
            service_monitor(r, services)
        elif kind == "PrometheusRule":
            prometheus_rule(r, rule_groups)
    topics = {r["metadata"]["name"] for r in resources if r["kind"] == "KafkaTopic"}
    missing = {"sluice.events", "sluice.actions", "sluice.flows", "sluice.dlq"} - topics
    if missing:
        errors.append(f"missing KafkaTopics {sorted(missing)}")
    for kind in ("ScyllaCluster", "ServiceMonitor", "PrometheusRule"):
        if kind not in seen:
            errors.append(f"no {kind}")
    workloads(resources, known_env)
    if rules_out:
        with open(rules_out, "w", encoding="utf-8") as out:
            yaml.safe_dump({"groups": rule_groups}, out, sort_keys=False)
    if monitoring_out:
        with open(monitoring_out, "w", encoding="utf-8") as out:
            json.dump([r for r in resources if r["kind"] in ("ServiceMonitor", "PrometheusRule")], out)
    for error in errors:
        print(f"{rendered}: {error}", file=sys.stderr)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
