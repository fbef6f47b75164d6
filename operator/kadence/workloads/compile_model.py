"""The training run's compiled inference path: an ONNX graph of the refitted winner,
checked against scikit-learn on the hold-out set and recorded with the result.

The stated tolerances (recorded as ModelVersion spec.compiled.tolerance):
- classification: every predicted label equal, and every class probability within
  CLASSIFICATION_TOLERANCE (1e-5, absolute: probabilities live in [0, 1]);
- regression: every prediction within REGRESSION_RELATIVE_TOLERANCE (1e-5) times the
  scale of the hold-out predictions, max(1, largest |prediction|): a relative bound, so a
  target in millions is held to the same number of digits as one in units.
Float64 graphs of linear models land around 1e-12; tree ensembles run in float32 inside
ONNX Runtime, around 1e-7 relative: both pass, a graph with a real defect does not.

Outcomes: within tolerance -> the graph is written and recorded verified=true (the server
uses it); converted but outside -> written and recorded verified=false with the difference
(the server keeps scikit-learn); not convertible, labels that differ, or onnxruntime/skl2onnx
not installed (they come with the `serve` extra) -> nothing recorded, and the log says why.

A FeatureSet's FeatureTransformer converts through its own skl2onnx converter
(`domain.data.transforms_onnx`), so a FeatureSet model compiles whole, raw columns in; a
feature without an ONNX form (hash, weekOfYear, text inside an expression) makes
`verify_compiled` compile the estimator alone, the server then running the transformer in
scikit-learn in front of it. Either way the check runs end to end, on the raw hold-out rows
read back from the FeatureSet's dataset snapshot.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..api.modelversion import CompiledArtifact
from ..domain.training import artifact as artifacts
from ..storage import ObjectStore

CLASSIFICATION_TOLERANCE = 1e-5
REGRESSION_RELATIVE_TOLERANCE = 1e-5
COMPILED_FILENAME = "model.onnx"
GRAPH_NAME = "kadence-compiled"


def compile_tolerance(task: str, predictions, override: float | None = None) -> float:
    """The absolute bound `verify_compiled` checks against (see the module docstring)."""
    if override is not None:
        return float(override)
    if task == "classification":
        return CLASSIFICATION_TOLERANCE
    values = np.abs(np.asarray(predictions, dtype=np.float64))
    scale = max(1.0, float(values.max())) if values.size else 1.0
    return REGRESSION_RELATIVE_TOLERANCE * scale


def _conversion_errors(pipeline, X_holdout) -> str:
    """Why no graph came out: each shape's first error, for the log."""
    from ..serving.compiled import candidate_graphs

    seen: list[str] = []
    for what, make in candidate_graphs(pipeline, X_holdout):
        try:
            make()
        except Exception as error:  # noqa: BLE001 - skl2onnx raises many types
            text = f"{what.split(',')[0]}: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            if text not in seen:
                seen.append(text[:300])
    return "; ".join(seen) or "no conversion was attempted"


def without_random_graph_name(onnx_bytes: bytes) -> bytes:
    """skl2onnx names each graph with a fresh uuid; a fixed name makes the bytes, and so the
    content-addressed key, the same for the same model (a retried attempt writes the same key)."""
    import onnx

    model = onnx.load_from_string(onnx_bytes)
    model.graph.name = GRAPH_NAME
    return model.SerializeToString()


def compile_winner(pipeline, X_holdout, task: str, store: ObjectStore, prefix: str,
                   log: Callable[[str], None], tolerance: float | None = None) -> CompiledArtifact | None:
    """Convert, check and store the compiled graph of `pipeline`; None when there is nothing to record.

    `X_holdout` is what the pipeline takes (raw columns); `tolerance` overrides the stated one."""
    try:
        import onnxruntime  # noqa: F401
        import skl2onnx  # noqa: F401
    except ImportError as error:
        log(f"compiled: not compiled: {error.name} is not installed (it comes with the kadence[serve] extra)")
        return None
    from ..serving.compiled import verify_compiled

    bound = compile_tolerance(task, pipeline.predict(X_holdout) if task != "classification" else (), tolerance)
    ok, difference, onnx_bytes = verify_compiled(pipeline, X_holdout, bound)
    if onnx_bytes is None:
        log(f"compiled: not compiled: skl2onnx cannot convert this pipeline "
            f"({_conversion_errors(pipeline, X_holdout)}); serving uses scikit-learn")
        return None
    if not math.isfinite(difference):
        log("compiled: not recorded: the ONNX graph predicts other labels than scikit-learn on the hold-out; "
            "serving uses scikit-learn")
        return None
    onnx_bytes = without_random_graph_name(onnx_bytes)
    sha = artifacts.sha256_hex(onnx_bytes)
    # Write-once and content-addressed, beside the skops artifact: a retry writes the same key.
    uri = store.put_once(f"{prefix}artifacts/{sha}/{COMPILED_FILENAME}", onnx_bytes)
    verdict = "verified" if ok else "NOT verified (serving uses scikit-learn)"
    log(f"compiled: {verdict}: max |onnx - scikit-learn| = {difference:.3g} on {len(X_holdout)} hold-out rows "
        f"(tolerance {bound:.3g}); {uri}")
    return CompiledArtifact(uri=uri, sha256=sha, format="onnx", max_abs_difference=difference, tolerance=bound,
                            verified=ok)
