#!/usr/bin/env bash
# Type-checks docs/examples/grafana-dashboard.json against Grafana's own
# dashboard and panel schemas: the TypeScript types of the npm package
# @grafana/schema (generated from the CUE kinds Grafana validates with), for
# the dashboard, its rows, and each panel's options and field config by panel
# type (timeseries, stat, table, state-timeline). Object literals get
# TypeScript's excess-property checks, so a misspelled or removed option or a
# wrong enum value fails. Not a running Grafana (Debian has no package): what
# the types do not model, the Prometheus annotation's query fields, is checked
# against a declared shape. The queries are checked by
# forwarder/tests/grafana_dashboard/ (cargo test).
#
#   scripts/check-grafana-dashboard.sh [DASHBOARD.json]
#
# Needs node, npm (the npm registry) and python3; installs the two packages
# into a temporary folder.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dash=$(realpath "${1:-$here/../docs/examples/grafana-dashboard.json}")
SCHEMA_VERSION=13.2.3
TS_VERSION=7.0.2

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
npm init -y >/dev/null
npm install --silent --no-audit --no-fund "@grafana/schema@$SCHEMA_VERSION" "typescript@$TS_VERSION" >/dev/null

python3 - "$dash" >check.ts <<'PY'
import json, sys

d = json.load(open(sys.argv[1]))
raw = "./node_modules/@grafana/schema/dist/types/raw/composable"
kinds = {"timeseries": "timeseries", "stat": "stat", "table": "table", "state-timeline": "statetimeline"}
out = ["import type { Dashboard, Panel, RowPanel, FieldConfigSource, AnnotationQuery } from '@grafana/schema';"]
for k in kinds.values():
    n = k.upper()
    if k == "stat":  # no custom field config
        out.append(f"import type {{ Options as {n}_O }} from '{raw}/{k}/panelcfg/x/types.gen';")
        out.append(f"type {n}_F = Record<string, unknown>;")
    else:
        out.append(f"import type {{ Options as {n}_O, FieldConfig as {n}_F }} from '{raw}/{k}/panelcfg/x/types.gen';")
out.append("""
// String enums as their values (JSON has no enums); objects keep excess-property checks.
type Loose<T> = T extends string ? `${T}` : T extends number ? T | number : T extends boolean ? T
  : T extends Array<infer U> ? Array<Loose<U>> : T extends object ? { [K in keyof T]: Loose<T[K]> } : T;
type Checked<O, F> = Loose<Omit<Panel, 'options' | 'fieldConfig'>> &
  { options: Loose<O>; fieldConfig: Loose<FieldConfigSource<F>> };
type PromAnnotation = Loose<AnnotationQuery> &
  { expr: string; step?: string; titleFormat?: string; textFormat?: string; tagKeys?: string; useValueForTime?: boolean };
""")
names = []
panels = []
for p in d["panels"]:
    panels.append(p)
    panels.extend(p.get("panels", []))
for i, p in enumerate(panels):
    if p["type"] == "row":
        out.append(f"const p{i}: Loose<RowPanel> = {json.dumps(p)};")
    else:
        n = kinds[p["type"]].upper()
        out.append(f"const p{i}: Checked<{n}_O, {n}_F> = {json.dumps(p)};")
    names.append(f"p{i}")
top = dict(d, panels=[])
annotations = top["annotations"]["list"]
top["annotations"] = {"list": [a for a in annotations if "expr" not in a]}
for i, a in enumerate(a for a in annotations if "expr" in a):
    out.append(f"const a{i}: PromAnnotation = {json.dumps(a)};")
    names.append(f"a{i}")
out.append(f"const dashboard: Loose<Dashboard> = {json.dumps(top)};")
out.append("export { dashboard, " + ", ".join(names) + " };")
print("\n".join(out))
PY

cat >tsconfig.json <<'JSON'
{ "compilerOptions": { "strict": true, "noEmit": true, "target": "es2022", "module": "esnext",
  "moduleResolution": "bundler", "skipLibCheck": true }, "files": ["check.ts"] }
JSON
npx tsc -p .
echo "$dash: matches @grafana/schema $SCHEMA_VERSION"
