"""The model card: one self-contained HTML page (plots embedded as PNG data URIs)."""

from __future__ import annotations

import base64
import html
import io
import json
from typing import Any

from ..api.modelversion import Lineage, Signature
from ..domain.training.search import COMPLETE, SearchResult
from .train_task import TrainTask


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def search_progress_plot(search: SearchResult) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    families = sorted({t.family for t in search.trials})
    for family in families:
        points = [(t.number + 1, t.score) for t in search.trials if t.family == family and t.score is not None]
        if points:
            xs, ys = zip(*points)
            ax.scatter(xs, ys, s=18, label=family)
    pruned = [(t.number + 1, t.score) for t in search.trials if t.state != COMPLETE and t.score is not None]
    if pruned:
        xs, ys = zip(*pruned)
        ax.scatter(xs, ys, s=40, facecolors="none", edgecolors="grey", label="pruned (partial CV)")
    best, line = None, []
    for t in search.trials:
        if t.state == COMPLETE and (best is None or (t.score > best if search.direction == "maximize" else t.score < best)):
            best = t.score
        line.append((t.number + 1, best))
    xs, ys = zip(*[(x, y) for x, y in line if y is not None]) if any(y is not None for _, y in line) else ((), ())
    ax.step(xs, ys, where="post", color="black", linewidth=1.2, label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"CV {search.metric}")
    ax.set_title("Search progress")
    ax.legend(fontsize=7, loc="best")
    return _png(fig)


def confusion_matrix_plot(details: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels = details["confusionMatrix"]["labels"]
    matrix = np.array(details["confusionMatrix"]["matrix"])
    size = max(3.0, 0.6 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center",
                    color="white" if matrix[i, j] > matrix.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix (hold-out)")
    return _png(fig)


def residuals_plot(residuals: dict[str, float]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ["p05", "p25", "median", "p75", "p95"]
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(keys, [residuals[k] for k in keys], color="tab:blue")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_ylabel("residual (true - predicted)")
    ax.set_title(f"Hold-out residual quantiles (mean {residuals['mean']:.4g}, std {residuals['std']:.4g})")
    return _png(fig)


def _table(rows: list[tuple[Any, ...]], header: tuple[str, ...]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_model_card(task: TrainTask, search: SearchResult, metrics: dict[str, float], details: dict[str, Any],
                      signature: Signature, lineage: Lineage, sha256: str) -> str:
    spec = task.spec
    best = search.best
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Model card: {e(spec.model)} from {e(task.run)}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}</style></head><body>",
        f"<h1>Model card: {e(spec.model)}</h1>",
        f"<p>Trained by TrainingRun <b>{e(task.namespace)}/{e(task.run)}</b> (attempt {task.attempt}) "
        f"for {e(spec.task)}, selected by cross-validated <b>{e(search.metric)}</b> ({e(search.direction)}).</p>",
        "<h2>Winner</h2>",
        _table([("family", best.family), ("parameters", json.dumps(best.params, sort_keys=True, default=str)),
                (f"CV {search.metric}", f"{best.score:.6f}"), ("artifact sha256", sha256)], ("", "")),
        "<h2>Hold-out metrics</h2>",
        _table(sorted((k, f"{v:.6f}") for k, v in metrics.items()), ("metric", "value")),
    ]
    if "perClass" in details:
        parts.append("<h3>Per class</h3>")
        parts.append(_table([(label, f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1']:.4f}", m["support"])
                             for label, m in details["perClass"].items()],
                            ("class", "precision", "recall", "F1", "support")))
        parts.append(f"<p><img alt='confusion matrix' src='{confusion_matrix_plot(details)}'></p>")
    if "residuals" in details:
        parts.append("<h3>Residuals</h3>")
        parts.append(_table(sorted(details["residuals"].items()), ("statistic", "value")))
        parts.append(f"<p><img alt='residuals' src='{residuals_plot(details['residuals'])}'></p>")
    parts += [
        "<h2>Search</h2>",
        f"<p>Strategy {e(spec.search.strategy)}, {len(search.trials)} of {search.planned} trials run "
        f"({search.counts.get('complete', 0)} complete, {search.counts.get('pruned', 0)} pruned, "
        f"{search.counts.get('failed', 0)} failed), stopped by {e(search.stopped_by)}, {spec.cv_folds}-fold CV.</p>",
        f"<p><img alt='search progress' src='{search_progress_plot(search)}'></p>",
        "<h2>Input signature</h2>",
        _table([(c.name, c.type) for c in signature.inputs], ("column", "type")),
        "<h2>Lineage</h2>",
        _table([(k, v if not isinstance(v, dict) else json.dumps(v, sort_keys=True))
                for k, v in lineage.wire().items()], ("", "")),
        "</body></html>",
    ]
    return "\n".join(parts)
