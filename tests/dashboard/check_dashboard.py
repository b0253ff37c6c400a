#!/usr/bin/env python3
"""Checks deploy/grafana/pgw-janitor-dashboard.json against Grafana's own dashboard models.

The models are those of grafana-foundation-sdk (PyPI, Grafana Labs), generated from Grafana's
schemas (here: Grafana 11.6). Its decoders read only the fields the schema has, each into its typed
model: the dashboard, its panels (with the options and field config of the panel's own plugin,
timeseries or stat), its Prometheus queries and its variables. So the check decodes the dashboard,
encodes it back, and requires that nothing was lost: a field the schema does not have where it
stands (a typo such as `legendFormats`, an option of another panel type, a query field Prometheus
queries do not have) disappears in the round trip and fails here. It also requires every query to
decode as a Prometheus query and every panel type to be a registered Grafana panel plugin.

Not checked here: value types and ranges (the decoders do not check them) and the queries
themselves; `cargo test --test gateway dashboard::` runs every query against a real Prometheus.

Run: .venv/bin/python tests/dashboard/check_dashboard.py   (packages: tests/requirements.txt)
Prints one line per check, then `N passed, N failed`; exits 1 when a check failed.
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.cog import plugins, runtime
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as grafana
from grafana_foundation_sdk.models import prometheus

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "deploy" / "grafana" / "pgw-janitor-dashboard.json"
CHART_COPY = ROOT / "charts" / "pushgateway-janitor" / "files" / SOURCE.name


def lost(original: Any, round_trip: Any, path: str = "$") -> list[str]:
    """Paths of `original` that are missing from, or differ in, `round_trip`."""
    if isinstance(original, dict):
        if not isinstance(round_trip, dict):
            return [f"{path}: became {type(round_trip).__name__}"]
        out = []
        for key, value in original.items():
            if key not in round_trip:
                out.append(f"{path}.{key}: not in Grafana's schema here")
            else:
                out.extend(lost(value, round_trip[key], f"{path}.{key}"))
        return out
    if isinstance(original, list):
        if not isinstance(round_trip, list) or len(original) != len(round_trip):
            return [f"{path}: list changed"]
        return [p for i, (a, b) in enumerate(zip(original, round_trip)) for p in lost(a, b, f"{path}[{i}]")]
    return [] if original == round_trip else [f"{path}: {original!r} became {round_trip!r}"]


def main() -> int:
    plugins.register_default_plugins()
    passed = failed = 0

    def check(name: str, problems: list[str]) -> None:
        nonlocal passed, failed
        if problems:
            failed += 1
            print(f"FAIL {name}: " + "; ".join(problems[:20]))
        else:
            passed += 1
            print(f"ok   {name}")

    print(f"grafana-foundation-sdk {version('grafana-foundation-sdk')}")
    data = json.loads(SOURCE.read_text())
    model = grafana.Dashboard.from_json(data)
    encoded = json.loads(json.dumps(model, cls=JSONEncoder))
    check("dashboard: every field survives a round trip through Grafana's models", lost(data, encoded))

    def typo_caught() -> list[str]:
        bad = json.loads(SOURCE.read_text())
        target = bad["panels"][0]["targets"][0]
        target["legendFormats"] = target.pop("legendFormat")
        bad["panels"][1]["gridPos"]["width"] = 12
        again = json.loads(json.dumps(grafana.Dashboard.from_json(bad), cls=JSONEncoder))
        found = lost(bad, again)
        want = ["$.panels[0].targets[0].legendFormats", "$.panels[1].gridPos.width"]
        return [f"{w} not reported ({found})" for w in want if not any(f.startswith(w + ":") for f in found)]

    check("the round trip reports a misspelled query field and an unknown gridPos field", typo_caught())

    problems = []
    for panel in model.panels or []:
        if runtime.panelcfg_config(panel.type_val or "") is None:
            problems.append(f"panel {panel.title!r}: type {panel.type_val!r} is no Grafana panel plugin")
        if not panel.targets:
            problems.append(f"panel {panel.title!r}: no queries")
        for target in panel.targets or []:
            if not isinstance(target, prometheus.Dataquery):
                problems.append(f"panel {panel.title!r}: a query decoded as {type(target).__name__}")
            elif not target.expr or not target.legend_format:
                problems.append(f"panel {panel.title!r}: query {target.ref_id} without expr or legendFormat")
    check(f"dashboard: {len(model.panels or [])} panels of known types, every query a Prometheus query",
          problems)

    names = [v.name for v in (model.templating.list_val if model.templating else [])]
    check("dashboard: variables datasource, namespace, policy",
          [] if names == ["datasource", "namespace", "policy"] else [f"variables {names}"])
    check("dashboard: unique panel ids and a uid",
          [] if model.uid and len({p.id_val for p in model.panels}) == len(model.panels) else ["ids or uid"])
    check(f"chart: files/{SOURCE.name} is a byte-identical copy of deploy/grafana/{SOURCE.name}",
          [] if CHART_COPY.read_bytes() == SOURCE.read_bytes() else
          [f"refresh it: cp deploy/grafana/{SOURCE.name} charts/pushgateway-janitor/files/"])

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
