"""`kadence models list`, `kadence models lineage` and `kadence models export` (commands.export): the model registry.

`list` prints one row per ModelVersion (model, version, stage, main metric, verified,
training run, age). `lineage` prints the chain Dataset → FeatureSet → TrainingRun →
ModelVersion of one ModelVersion (by its name, e.g. churn-v3, or by a model name, which
picks its Production version, else its highest version), looking each link up in the
cluster to show its current state.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone

from . import cluster
from . import export as export_command

LIST_COLUMNS = ("NAMESPACE", "MODEL", "VERSION", "NAME", "STAGE", "METRIC", "VERIFIED", "RUN", "AGE")


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="List the registered model versions.",
                                 description="List ModelVersions in a namespace or across all namespaces.")
    scope = listing.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", help="List only this namespace (default: the context's namespace).")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="List across all namespaces.")
    listing.add_argument("--model", help="Only versions of this model.")
    listing.add_argument("-o", "--output", choices=("table", "json"), default="table", help="Output format.")
    lineage = actions.add_parser("lineage", help="Show where a model version came from.",
                                 description="Print Dataset → FeatureSet → TrainingRun → ModelVersion for a "
                                             "ModelVersion name (e.g. churn-v3) or a model name (its Production "
                                             "version, else its highest).")
    lineage.add_argument("name", help="A ModelVersion name or a model name.")
    lineage.add_argument("-n", "--namespace", help="Namespace (default: the context's namespace).")
    lineage.add_argument("-o", "--output", choices=("text", "json"), default="text", help="Output format.")
    export = actions.add_parser("export", help="Write a verified compiled model and its manifest, for edge and apps.",
                                description="Write <name>.onnx (the verified graph: feature transformation "
                                            "included, raw columns in) and <name>.manifest.json (signature, "
                                            "sha256, Kadence and opset versions). Reads the graph from object "
                                            "storage with the KADENCE_S3_* settings.")
    export_command.configure(export)
    for sub in (listing, lineage, export):
        sub.add_argument("--kubeconfig", help="Path to a kubeconfig (default: $KUBECONFIG or ~/.kube/config).")
        sub.add_argument("--context", help="The kubeconfig context to use.")


# ---------------------------------------------------------------- pure formatting


def age(timestamp: str | None, now: datetime) -> str:
    """kubectl-style age: 45s, 12m, 3h, 5d."""
    if not timestamp:
        return "-"
    then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def main_metric(spec: dict, status: dict) -> str:
    if status.get("metricSummary"):
        return status["metricSummary"]
    metrics = spec.get("metrics") or {}
    name = spec.get("primaryMetric") or (sorted(metrics)[0] if metrics else None)
    if name is None or name not in metrics:
        return "-"
    return f"{name}={metrics[name]:.4g}"


def registry_rows(items: list[dict], now: datetime) -> list[tuple[str, ...]]:
    """One row per ModelVersion, by namespace, model and version."""
    def key(item):
        spec = item.get("spec") or {}
        return (item["metadata"].get("namespace", ""), spec.get("model", ""), spec.get("version", 0))

    rows = []
    for item in sorted(items, key=key):
        meta, spec, status = item["metadata"], item.get("spec") or {}, item.get("status") or {}
        verified = {True: "yes", False: "NO"}.get(status.get("verified"), "-")
        rows.append((
            meta.get("namespace", ""), spec.get("model", "-"), str(spec.get("version", "-")), meta["name"],
            status.get("stage") or spec.get("stage") or "-", main_metric(spec, status), verified,
            (spec.get("lineage") or {}).get("trainingRun") or "-", age(meta.get("creationTimestamp"), now),
        ))
    return rows


def render_table(rows: list[tuple[str, ...]], columns: tuple[str, ...] = LIST_COLUMNS) -> str:
    return cluster.render_table(columns, rows)


def pick_version(items: list[dict], name: str) -> dict | None:
    """The ModelVersion named `name`; else, of the model `name`, the Production version,
    else the highest version."""
    for item in items:
        if item["metadata"]["name"] == name:
            return item
    versions = [i for i in items if (i.get("spec") or {}).get("model") == name]
    if not versions:
        return None
    production = [i for i in versions if ((i.get("status") or {}).get("stage") or i["spec"].get("stage")) == "Production"]
    return max(production or versions, key=lambda i: i["spec"].get("version", 0))


def _ready(obj: dict | None) -> str:
    if obj is None:
        return "not found"
    status = obj.get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    phase = status.get("phase")
    parts = [p for p in (phase, f"Ready={ready['status']}" if ready else None) if p]
    return ", ".join(parts) or "no status yet"


def lineage_links(version: dict, run: dict | None, featureset: dict | None, dataset: dict | None) -> list[dict]:
    """The chain, upstream first, as plain dicts (kind, name, version, state, detail)."""
    spec = version.get("spec") or {}
    lineage = spec.get("lineage") or {}
    links = []
    if lineage.get("dataset"):
        links.append({"kind": "Dataset", "name": lineage["dataset"], "version": lineage.get("datasetVersion"),
                      "state": _ready(dataset), "detail": None})
    if lineage.get("featureSet"):
        links.append({"kind": "FeatureSet", "name": lineage["featureSet"], "version": lineage.get("featureSetVersion"),
                      "state": _ready(featureset), "detail": None})
    if lineage.get("trainingRun"):
        run_status = (run or {}).get("status") or {}
        detail = None
        if run_status.get("bestFamily"):
            detail = f"best {run_status['bestFamily']}"
            if run_status.get("bestScore") is not None:
                detail += f" cv={run_status['bestScore']:.4g}"
        links.append({"kind": "TrainingRun", "name": lineage["trainingRun"], "version": None,
                      "state": _ready(run), "detail": detail})
    status = version.get("status") or {}
    artifact = spec.get("artifact") or {}
    detail = f"{main_metric(spec, status)}, sha256 {artifact.get('sha256', '-')[:12]}…"
    if lineage.get("seed") is not None:
        detail += f", seed {lineage['seed']}"
    if lineage.get("image"):
        detail += f", image {lineage['image']}"
    if lineage.get("libraries"):
        detail += ", " + ", ".join(f"{name} {version}" for name, version in sorted(lineage["libraries"].items()))
    links.append({"kind": "ModelVersion", "name": version["metadata"]["name"], "version": str(spec.get("version")),
                  "state": status.get("stage") or spec.get("stage") or "-", "detail": detail})
    return links


def render_lineage(links: list[dict]) -> str:
    lines = []
    for depth, link in enumerate(links):
        prefix = "" if depth == 0 else "   " * (depth - 1) + "└─ "
        text = f"{prefix}{link['kind']} {link['name']}"
        if link["version"]:
            text += f" @ {link['version']}"
        text += f"  [{link['state']}]"
        if link["detail"]:
            text += f"  {link['detail']}"
        lines.append(text)
    return "\n".join(lines)


# ---------------------------------------------------------------- cluster access (read-only)


def _get(api, plural: str, namespace: str, name: str | None) -> dict | None:
    if not name:
        return None
    try:
        return api.get_namespaced_custom_object(cluster.GROUP, cluster.VERSION, namespace, plural, name)
    except Exception as error:  # noqa: BLE001
        if getattr(error, "status", None) == 404:
            return None
        raise


def _explain(error: Exception) -> str:
    return cluster.explain(error, "ModelVersion", "read modelversions.kadence.dev")


def run(args: argparse.Namespace) -> int:
    if args.action == "export":
        return export_command.run(args)
    try:
        api, default_namespace = cluster.custom_objects_api(args.kubeconfig, args.context)
        if args.action == "list":
            namespace = None if args.all_namespaces else (args.namespace or default_namespace)
            items = cluster.list_objects(api, "modelversions", namespace)
            if args.model:
                items = [i for i in items if (i.get("spec") or {}).get("model") == args.model]
            rows = registry_rows(items, datetime.now(timezone.utc))
            if args.output == "json":
                print(json.dumps([dict(zip((c.lower() for c in LIST_COLUMNS), row)) for row in rows], indent=2))
            else:
                print(render_table(rows) if rows else "No model versions found.")
            return 0
        namespace = args.namespace or default_namespace
        version = pick_version(cluster.list_objects(api, "modelversions", namespace), args.name)
        if version is None:
            print(f"kadence models lineage: no ModelVersion or model named {args.name!r} in {namespace}",
                  file=sys.stderr)
            return 1
        lineage = (version.get("spec") or {}).get("lineage") or {}
        links = lineage_links(
            version,
            _get(api, "trainingruns", namespace, lineage.get("trainingRun")),
            _get(api, "featuresets", namespace, lineage.get("featureSet")),
            _get(api, "datasets", namespace, lineage.get("dataset")),
        )
        print(json.dumps(links, indent=2) if args.output == "json" else render_lineage(links))
        return 0
    except Exception as error:  # kubernetes client errors: no config, unreachable, forbidden, no CRD
        print(f"kadence models {args.action}: {_explain(error)}", file=sys.stderr)
        return 1
