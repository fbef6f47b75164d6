"""`kadence models export <model>-v<N> --format onnx`: take a verified compiled model out, for edge
devices, browsers and apps.

Writes `<dir>/<name>.onnx` (the graph training compiled and checked against scikit-learn on the
hold-out: the feature transformation included, raw columns in, one tensor per column) and
`<dir>/<name>.manifest.json` (what it takes and returns, its sha256, Kadence's version and the
opsets), so that ONNX Runtime alone, in any language, scores rows as the model server does. A
datetime column is one int64 tensor of milliseconds since the Unix epoch in UTC (INT64_MIN when
missing); the manifest marks it with `encoding`. Models trained on a FeatureSet export whole (the
FeatureSet transformer has its converter, `domain.data.transforms_onnx`), unless a feature has no
ONNX form (hash, weekOfYear, text inside an expression): their graph covers the estimator only.
A ModelVersion whose graph was not verified, or covers only the estimator (the transformation
would still need scikit-learn), refuses to export and says why. Reads the ModelVersion from the
cluster and the graph from object storage (KADENCE_S3_*, as `kadence sandbox up` prints them).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

MANIFEST_KIND = "kadence.dev/model-export"
FORMATS = ("onnx",)
# ONNX tensor element types (onnx.TensorProto) of the inputs a per-column graph takes.
ELEMENT_TYPES = {1: "float32", 7: "int64", 8: "string", 9: "bool", 11: "float64"}
# How a datetime column is fed (serving.compiled.epoch_milliseconds).
EPOCH_MILLISECONDS = "milliseconds since 1970-01-01T00:00:00Z (UTC); -9223372036854775808 when missing"


class ExportRefused(Exception):
    """The ModelVersion cannot be exported; the message says why."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="The ModelVersion's name, e.g. churn-v3.")
    parser.add_argument("--format", choices=FORMATS, default="onnx", help="The export format (onnx).")
    parser.add_argument("-o", "--output-dir", default=".", help="Where to write <name>.onnx and "
                                                                "<name>.manifest.json (default: here).")
    parser.add_argument("-n", "--namespace", help="Namespace (default: the context's namespace).")


def export_problem(model_version: dict) -> str | None:
    """Why this ModelVersion cannot be exported, or None."""
    name = model_version["metadata"]["name"]
    spec, status = model_version.get("spec") or {}, model_version.get("status") or {}
    compiled = spec.get("compiled")
    if not compiled:
        return f"{name} has no compiled graph: training could not convert this pipeline to ONNX"
    if compiled.get("verified") is not True:
        return (f"{name}'s compiled graph was not verified: it differs from scikit-learn by "
                f"{compiled.get('maxAbsDifference')} on the hold-out (tolerance {compiled.get('tolerance')}), "
                "so it would not score as the model server does")
    if status.get("verified") is False:
        return f"{name}'s artifact does not match its sha256 in the registry"
    return None


def graph_facts(onnx_bytes: bytes) -> dict:
    """The graph's scope, input mode, opsets and tensors, as the manifest states them."""
    import onnx

    from ..serving.compiled import COLUMNS_KEY, DATETIMES_KEY, INPUTS_KEY, SCOPE_KEY

    graph = onnx.load_from_string(onnx_bytes)
    meta = {p.key: p.value for p in graph.metadata_props}

    datetimes = set(json.loads(meta.get(DATETIMES_KEY, "[]")))

    def tensors(values) -> list[dict]:
        found = []
        for value in values:
            tensor = value.type.tensor_type
            shape = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
            found.append({"name": value.name, "type": ELEMENT_TYPES.get(tensor.elem_type, str(tensor.elem_type)),
                          "shape": shape, **({"encoding": EPOCH_MILLISECONDS} if value.name in datetimes else {})})
        return found

    return {"scope": meta.get(SCOPE_KEY), "inputMode": meta.get(INPUTS_KEY),
            "columns": json.loads(meta.get(COLUMNS_KEY, "[]")),
            "opsets": {(o.domain or "ai.onnx"): o.version for o in graph.opset_import},
            "inputs": tensors(graph.graph.input), "outputs": tensors(graph.graph.output)}


def export_manifest(model_version: dict, onnx_bytes: bytes, facts: dict, kadence_version: str) -> dict:
    spec = model_version["spec"]
    compiled = spec["compiled"]
    signature = spec.get("signature") or {}
    return {
        "kind": MANIFEST_KIND,
        "modelVersion": model_version["metadata"]["name"],
        "model": spec["model"],
        "version": spec["version"],
        "task": spec.get("task"),
        "file": f"{model_version['metadata']['name']}.onnx",
        "sha256": hashlib.sha256(onnx_bytes).hexdigest(),
        "kadenceVersion": kadence_version,
        "opsets": facts["opsets"],
        "signature": {"inputs": facts["inputs"], "outputs": facts["outputs"],
                      "columns": signature.get("inputs") or [{"name": c} for c in facts["columns"]],
                      "classes": signature.get("classes")},
        "verification": {"maxAbsDifference": compiled.get("maxAbsDifference"), "tolerance": compiled.get("tolerance")},
        "source": compiled["uri"],
    }


def export(model_version: dict, read_bytes, output_dir: Path, kadence_version: str) -> tuple[Path, Path]:
    """Write the graph and its manifest; ExportRefused says why not. `read_bytes(uri, sha256)` returns the
    verified bytes of the stored graph."""
    problem = export_problem(model_version)
    if problem:
        raise ExportRefused(problem)
    compiled = model_version["spec"]["compiled"]
    onnx_bytes = read_bytes(compiled["uri"], compiled["sha256"])
    facts = graph_facts(onnx_bytes)
    name = model_version["metadata"]["name"]
    if facts["scope"] != "pipeline" or facts["inputMode"] != "columns":
        raise ExportRefused(f"{name}'s verified graph takes {'the transformed features' if facts['scope'] != 'pipeline' else 'one numeric matrix'}"
                            " rather than one tensor per raw column; only a whole-pipeline graph runs without "
                            "Kadence, so it is not exported")
    manifest = export_manifest(model_version, onnx_bytes, facts, kadence_version)
    output_dir.mkdir(parents=True, exist_ok=True)
    graph_path = output_dir / f"{name}.onnx"
    manifest_path = output_dir / f"{name}.manifest.json"
    graph_path.write_bytes(onnx_bytes)
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return graph_path, manifest_path


def run(args: argparse.Namespace) -> int:
    from .. import __version__
    from ..serving.artifact import ArtifactRefused, load_verified_bytes
    from . import cluster

    try:
        api, default_namespace = cluster.custom_objects_api(args.kubeconfig, args.context)
        namespace = args.namespace or default_namespace
        model_version = api.get_namespaced_custom_object(cluster.GROUP, cluster.VERSION, namespace,
                                                         "modelversions", args.name)
    except Exception as error:  # kubernetes client errors: no config, unreachable, forbidden, not found
        if getattr(error, "status", None) == 404:
            print(f"kadence models export: no ModelVersion {args.name!r}", file=sys.stderr)
            return 1
        print(f"kadence models export: {cluster.explain(error, 'ModelVersion', 'read modelversions.kadence.dev')}",
              file=sys.stderr)
        return 1
    try:
        graph, manifest = export(model_version, load_verified_bytes, Path(args.output_dir), __version__)
    except (ExportRefused, ArtifactRefused) as error:
        print(f"kadence models export: refused: {error}", file=sys.stderr)
        return 3
    except Exception as error:  # noqa: BLE001 - storage errors: unreachable, no credentials
        print(f"kadence models export: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(graph)
    print(manifest)
    return 0
