"""Render the chart with Helm's own engine (Helm v4's Go SDK through `helm-python-sdk`).

`Chart.render` of helm-python-sdk does not expose `--api-versions`/`--kube-version`, which
the chart's Prometheus Operator gate needs; the native `helm_render` call takes them
(the same options struct as `helm template`), so `render` passes them through it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from helm_python import Chart, lint
from helm_python import _native

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "kadence"
KUBE_VERSION = "v1.34.0"
PROMETHEUS_OPERATOR = "monitoring.coreos.com/v1"


def load_chart() -> Chart:
    return Chart.load(str(CHART))


def render(
    values: dict[str, Any] | None = None,
    *,
    api_versions: tuple[str, ...] = (),
    release: str = "kadence",
    namespace: str = "kadence-system",
) -> dict[str, str]:
    """Template path -> rendered text, like `helm template --api-versions … --kube-version …`.

    The chart is loaded anew for each render: Helm drops disabled subcharts from the loaded
    chart while rendering, so a loaded chart must not be reused across values."""
    options = {
        "name": release,
        "namespace": namespace,
        "is_install": True,
        "kube_version": KUBE_VERSION,
        "api_versions": list(api_versions),
    }
    with load_chart() as chart:
        rendered = _native.call_string(
            "helm_render", chart._raw(), json.dumps(values or {}), json.dumps(options)
        )
    return json.loads(rendered)


def objects(rendered: dict[str, str]) -> list[dict[str, Any]]:
    """Every Kubernetes object of a render (NOTES.txt and empty documents left out)."""
    found = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        for document in yaml.safe_load_all(text):
            if document:
                found.append(document)
    return found


def notes(rendered: dict[str, str]) -> str:
    return next(text for path, text in rendered.items() if path.endswith("NOTES.txt"))


def lint_errors(values: dict[str, Any] | None = None) -> list[str]:
    report = lint(str(CHART), values, strict=True, kube_version=KUBE_VERSION, with_subcharts=True)
    return [f"{m['path']}: {m['error']}" for m in report["messages"] if m["severity"] >= 2]


def values_file(name: str) -> dict[str, Any]:
    return yaml.safe_load((Path(__file__).parent / name).read_text())
