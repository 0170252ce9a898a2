#!/usr/bin/env python3
"""Lint and render the Helm chart without a helm binary or a cluster.

Uses the PyPI package `helm-python-sdk` (import name `helm_python`), which bundles
Helm's Go SDK as a shared library. For each values scenario (the chart defaults, and
every helm/crm/ci/*-values.yaml) it:

  * runs `helm lint --strict` (warnings count as failures),
  * validates the values against values.schema.json,
  * renders the chart (like `helm template`) into OUT_DIR/<scenario>.yaml,

and checks that values breaking the schema are rejected. The rendered files are then
ready for yamllint and kubernetes-validate, e.g.:

    python3 -m venv /tmp/helmvenv
    /tmp/helmvenv/bin/pip install helm-python-sdk yamllint kubernetes-validate
    /tmp/helmvenv/bin/python deploy/helm-check.py helm/crm /tmp/crm-rendered
    /tmp/helmvenv/bin/kubernetes-validate --strict /tmp/crm-rendered/*.yaml

Exit status: 0 when everything passed, 1 otherwise.
"""

from __future__ import annotations

import sys
from pathlib import Path

import helm_python as helm

SEVERITY = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}
RELEASE = "crm"
NAMESPACE = "crm"

# Values that values.schema.json must reject.
BAD_VALUES = {
    "replicas is a string": {"services": {"gateway": {"replicas": "two"}}},
    "unknown top-level key": {"imageRepository": "x"},
    "bad pullPolicy": {"image": {"pullPolicy": "Sometimes"}},
    "unknown connection": {"services": {"gateway": {"connections": ["kafka"]}}},
    "port out of range": {"services": {"gateway": {"httpPort": 70000}}},
}


def scenarios(chart_dir: Path) -> dict[str, dict]:
    found: dict[str, dict] = {"default": {}}
    for path in sorted((chart_dir / "ci").glob("*-values.yaml")):
        found[path.name.removesuffix("-values.yaml")] = helm.values_from_yaml(path.read_text())
    return found


def main() -> int:
    if len(sys.argv) != 3:
        print(f"usage: {sys.argv[0]} CHART_DIR OUT_DIR", file=sys.stderr)
        return 2
    chart_dir, out_dir = Path(sys.argv[1]), Path(sys.argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"helm SDK {helm.helm_sdk_version()} (helm-c {helm.helm_c_version()})")
    failed = False

    with helm.Chart.load(chart_dir) as chart:
        print(f"chart {chart.name} {chart.version}")
        for name, values in scenarios(chart_dir).items():
            report = helm.lint(chart_dir, values, strict=True, namespace=NAMESPACE)
            problems = [m for m in report.get("messages") or [] if m["severity"] >= 2]
            for m in report.get("messages") or []:
                print(f"  [{name}] lint {SEVERITY.get(m['severity'], m['severity'])}: "
                      f"{m['path']}: {m['error']}")
            for err in report.get("errors") or []:
                print(f"  [{name}] lint error: {err}")
            if problems or report.get("errors"):
                failed = True

            try:
                chart.validate_schema(values)
                manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE,
                                         is_install=True)
            except helm.HelmError as exc:
                print(f"FAIL [{name}] {type(exc).__name__}: {exc}")
                failed = True
                continue

            docs = []
            for path in sorted(manifests):
                body = manifests[path].strip()
                if body.startswith("---"):
                    body = body[3:].lstrip("\n")
                if path.endswith("NOTES.txt"):
                    (out_dir / f"{name}-NOTES.txt").write_text(body + "\n")
                elif body:
                    docs.append(f"# Source: {path}\n{body}")
            target = out_dir / f"{name}.yaml"
            target.write_text("---\n" + "\n---\n".join(docs) + "\n")
            kinds = sum(body.count("\nkind: ") + body.startswith("kind: ") for body in docs)
            print(f"ok   [{name}] lint passed, schema passed, rendered {kinds} resources -> {target}")

        for what, values in BAD_VALUES.items():
            try:
                chart.validate_schema(values)
            except helm.HelmError:
                print(f"ok   schema rejects: {what}")
            else:
                print(f"FAIL schema accepted: {what}")
                failed = True

    print("FAILED" if failed else "all helm checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
