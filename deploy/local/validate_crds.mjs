// Validates ServiceMonitor and PrometheusRule resources against the prometheus-operator
// CRD schemas bundled (as compiled validators) in the npm package
// @kubernetes-models/prometheus-operator, installed by setup.sh under
// ${SLUICE_CACHE}/npm. Usage: node validate_crds.mjs NPM_PREFIX RESOURCES.json
// (a JSON array, written by check_manifests.py). Tooling only, not product code.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [prefix, input] = process.argv.slice(2);
const models = await import(
  pathToFileURL(
    join(prefix, "node_modules/@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/index.js"),
  ).href
);
let failed = 0;
let checked = 0;
for (const resource of JSON.parse(readFileSync(input, "utf8"))) {
  const Model = models[resource.kind];
  if (!Model || resource.apiVersion !== "monitoring.coreos.com/v1") continue;
  checked += 1;
  try {
    new Model(resource).validate();
  } catch (error) {
    failed += 1;
    console.error(`${input}: ${resource.kind}/${resource.metadata.name}: ${error.message}`);
  }
}
if (checked === 0) {
  console.error(`${input}: no ServiceMonitor or PrometheusRule to validate`);
  process.exit(1);
}
process.exit(failed ? 1 : 0);
