"""`kadence features list`: the FeatureSet catalog of the cluster (read-only).

One row per feature: namespace, FeatureSet, feature, type, source, the FeatureSet's
current version and its dataset version, read from `status.features` (the catalog the
operator resolves) and falling back to the spec when the status has none yet.
"""

from __future__ import annotations

import argparse
import json
import sys

from . import cluster

PLURAL = "featuresets"
COLUMNS = ("NAMESPACE", "FEATURESET", "FEATURE", "TYPE", "SOURCE", "VERSION", "DATASET")


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="List features of every FeatureSet.",
                                 description="List the features of the FeatureSets in a namespace or all namespaces.")
    scope = listing.add_mutually_exclusive_group()
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="List across all namespaces (default).")
    scope.add_argument("-n", "--namespace", help="List only this namespace.")
    listing.add_argument("-o", "--output", choices=("table", "json"), default="table", help="Output format.")
    listing.add_argument("--kubeconfig", help="Path to a kubeconfig (default: $KUBECONFIG or ~/.kube/config).")
    listing.add_argument("--context", help="The kubeconfig context to use.")


def run(args: argparse.Namespace) -> int:
    try:
        items = _list_featuresets(args.namespace, args.kubeconfig, args.context)
    except Exception as error:  # kubernetes client errors: no config, unreachable, forbidden, no CRD
        print(f"kadence features list: {_explain(error)}", file=sys.stderr)
        return 1
    rows = catalog_rows(items)
    if args.output == "json":
        print(json.dumps([dict(zip((c.lower() for c in COLUMNS), row)) for row in rows], indent=2))
    else:
        print(render_table(rows) if rows else "No features found.")
    return 0


def _list_featuresets(namespace: str | None, kubeconfig: str | None, context: str | None) -> list[dict]:
    api, _ = cluster.custom_objects_api(kubeconfig, context)
    return cluster.list_objects(api, PLURAL, namespace or None)


def _explain(error: Exception) -> str:
    return cluster.explain(error, "FeatureSet", "list featuresets.kadence.dev")


def catalog_rows(items: list[dict]) -> list[tuple[str, ...]]:
    """Rows of the catalog, sorted by namespace, FeatureSet and feature order."""
    rows = []
    for item in sorted(items, key=lambda i: (i["metadata"].get("namespace", ""), i["metadata"]["name"])):
        meta, spec, status = item["metadata"], item.get("spec") or {}, item.get("status") or {}
        version = status.get("latestVersion") or "-"
        dataset = status.get("datasetVersion") or (spec.get("datasetRef") or {}).get("name", "-")
        features = status.get("features") or [_from_spec(f) for f in spec.get("features") or []]
        for feature in features:
            rows.append((meta.get("namespace", ""), meta["name"], feature["name"], feature.get("type", "-"),
                         feature.get("source", "-"), version, dataset))
    return rows


def _from_spec(feature: dict) -> dict:
    if feature.get("expression") is not None:
        return {"name": feature["name"], "type": "-", "source": feature["expression"]}
    transform = feature.get("transform") or {}
    return {"name": feature["name"], "type": "-", "source": f"{transform.get('type')}({transform.get('column')})"}


def render_table(rows: list[tuple[str, ...]]) -> str:
    return cluster.render_table(COLUMNS, rows)
