#!/usr/bin/env python3
"""Renders charts/pushgateway-janitor with Helm's Go SDK (helm-python-sdk), as check_chart.py does,
and prints the rendered objects as one JSON array on stdout, for tests that apply them to a real
API server (tests/controller/controller_rbac.rs).

Run: .venv/bin/python tests/chart/render.py RELEASE NAMESPACE VALUES_JSON
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import helm_python as helm
import yaml

CHART = Path(__file__).resolve().parents[2] / "charts" / "pushgateway-janitor"


def main() -> int:
    release, namespace, values = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    docs = []
    with helm.Chart.load(CHART) as chart:
        manifests = chart.render(values=values, name=release, namespace=namespace, is_install=True)
        for template, text in sorted(manifests.items()):
            if template.endswith("NOTES.txt"):
                continue
            docs.extend(d for d in yaml.safe_load_all(text) if d)
    json.dump(docs, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
