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


def score_against_time_plot(search: SearchResult, finished_s: dict[int, float]) -> str:
    """Every trial's CV score against the time its trial finished (seconds from the search's
    start), one colour per family, pruned trials hollow at their partial score, the best so far
    as a step line: where the search spent its time and which family paid off."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for family in sorted({t.family for t in search.trials}):
        done = [(finished_s[t.number], t.score) for t in search.trials
                if t.family == family and t.state == COMPLETE and t.number in finished_s]
        partial = [(finished_s[t.number], t.score) for t in search.trials
                   if t.family == family and t.state != COMPLETE and t.score is not None and t.number in finished_s]
        colour = None
        if done:
            colour = ax.scatter(*zip(*done), s=18, label=family).get_facecolor()[0]
        if partial:
            ax.scatter(*zip(*partial), s=30, facecolors="none", edgecolors=colour if colour is not None else "grey",
                       label=f"{family} (pruned)" if not done else None)
    best, line = None, []
    for t in sorted((t for t in search.trials if t.state == COMPLETE and t.number in finished_s),
                    key=lambda t: finished_s[t.number]):
        if best is None or (t.score > best if search.direction == "maximize" else t.score < best):
            best = t.score
            line.append((finished_s[t.number], best))
    if line:
        ax.step(*zip(*line), where="post", color="black", linewidth=1.2, label="best so far")
    ax.set_xlabel("seconds since the search started")
    ax.set_ylabel(f"CV {search.metric}")
    ax.set_title("Score against time, by family")
    ax.legend(fontsize=7, loc="best")
    return _png(fig)


def permutation_importances(model, X, y, scorer, seed: int, max_rows: int = 2_000, repeats: int = 5
                            ) -> list[tuple[str, float, float]]:
    """(column, mean drop of the metric, sd) for every input column of `model`, shuffling one column
    of the hold-out at a time (at most `max_rows` rows, seeded), largest drop first. The drop is in
    the metric's natural units, signed so that positive = the column helps."""
    import numpy as np
    from sklearn.inspection import permutation_importance

    if len(X) > max_rows:
        picked = np.random.default_rng(seed).choice(len(X), size=max_rows, replace=False)
        X = X.iloc[picked] if hasattr(X, "iloc") else X[picked]
        y = np.asarray(y)[picked]
    found = permutation_importance(model, X, np.asarray(y), scoring=scorer.scorer, n_repeats=repeats,
                                   random_state=seed, n_jobs=1)
    names = list(X.columns) if hasattr(X, "columns") else [f"x{i}" for i in range(np.asarray(X).shape[1])]
    rows = [(str(n), float(m), float(s)) for n, m, s in zip(names, found.importances_mean, found.importances_std)]
    return sorted(rows, key=lambda r: -r[1])


def calibration(model, X, y, classes, bins: int = 10) -> dict[str, Any] | None:
    """The reliability curve on the hold-out: binary, P(positive class) against the observed share
    of it; more classes, the predicted class's probability against how often it is right. None
    for a regressor or a classifier without probabilities."""
    import numpy as np
    from sklearn.calibration import calibration_curve

    if classes is None or not hasattr(model, "predict_proba"):
        return None
    probabilities = np.asarray(model.predict_proba(X))
    y = np.asarray(y)
    if len(classes) == 2:
        outcome, confidence = (y == sorted(classes)[-1]).astype(int), probabilities[:, 1]
        kind = f"P({sorted(classes)[-1]})"
    else:
        predicted = np.asarray(model.classes_)[np.argmax(probabilities, axis=1)]
        outcome, confidence = (predicted == y).astype(int), probabilities.max(axis=1)
        kind = "probability of the predicted class"
    observed, predicted_mean = calibration_curve(outcome, confidence, n_bins=bins, strategy="quantile")
    return {"kind": kind, "predicted": predicted_mean.tolist(), "observed": observed.tolist(),
            "brier": float(np.mean((confidence - outcome) ** 2))}


def calibration_plot(curve: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=0.8, label="perfectly calibrated")
    ax.plot(curve["predicted"], curve["observed"], marker="o", label="model")
    ax.set_xlabel(f"predicted {curve['kind']}")
    ax.set_ylabel("observed frequency")
    ax.set_title(f"Calibration (hold-out), Brier {curve['brier']:.4f}")
    ax.legend(fontsize=7, loc="upper left")
    return _png(fig)


def importance_plot(importances: list[tuple[str, float, float]], metric: str, top: int = 20) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = importances[:top][::-1]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(shown) + 1))
    ax.barh([n for n, _, _ in shown], [m for _, m, _ in shown], xerr=[s for _, _, s in shown], color="tab:blue")
    ax.set_xlabel(f"drop of {metric} when shuffled")
    ax.set_title("Permutation importance (hold-out)")
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
                      signature: Signature, lineage: Lineage, sha256: str, *, winner=None,
                      finished_s: dict[int, float] | None = None,
                      importances: list[tuple[str, float, float]] | None = None,
                      calibration_curve: dict[str, Any] | None = None, refit: dict[str, Any] | None = None) -> str:
    """`winner`: what the run returns (an ensemble's BestTrial) when not the best single trial;
    `finished_s`: each trial's finish time from the search's start (the score-against-time plot);
    `importances`, `calibration_curve`: from `permutation_importances` and `calibration`;
    `refit`: the metrics file's refit entry when split.refit fitted the registered model again."""
    spec = task.spec
    best = search.best
    family, params, cv = ((winner.family, winner.params, winner.cv_score) if winner is not None
                          else (best.family, best.params, best.score))
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
        _table([("family", family), ("parameters", json.dumps(params, sort_keys=True, default=str)),
                (f"CV {search.metric}", f"{cv:.6f}"), ("artifact sha256", sha256)], ("", "")),
        "<h2>Hold-out metrics</h2>",
        _table(sorted((k, f"{v:.6f}") for k, v in metrics.items()), ("metric", "value")),
    ]
    if refit is not None:
        parts.append(f"<p>Refit (split.refit): the registered model was fitted again on {refit['rows']} rows, "
                     f"the {refit['holdoutRows']} hold-out rows included, after it was scored; the hold-out "
                     "metrics, importances and calibration here are those of the model that did not see them.</p>")
    if "perClass" in details:
        parts.append("<h3>Per class</h3>")
        parts.append(_table([(label, f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1']:.4f}", m["support"])
                             for label, m in details["perClass"].items()],
                            ("class", "precision", "recall", "F1", "support")))
        parts.append(f"<p><img alt='confusion matrix' src='{confusion_matrix_plot(details)}'></p>")
    if calibration_curve is not None:
        parts.append("<h3>Calibration</h3>")
        parts.append(f"<p><img alt='calibration curve' src='{calibration_plot(calibration_curve)}'></p>")
    if importances:
        parts.append("<h3>Permutation importance</h3>")
        parts.append(f"<p><img alt='permutation importance' src='{importance_plot(importances, search.metric)}'></p>")
        parts.append(_table([(n, f"{m:.6f}", f"{sd:.6f}") for n, m, sd in importances],
                            ("column", f"drop of {search.metric}", "sd")))
    if "residuals" in details:
        parts.append("<h3>Residuals</h3>")
        parts.append(_table(sorted(details["residuals"].items()), ("statistic", "value")))
        parts.append(f"<p><img alt='residuals' src='{residuals_plot(details['residuals'])}'></p>")
    parts += [
        "<h2>Search</h2>",
        f"<p>Strategy {e(spec.search.strategy)}, {len(search.trials)} of {search.planned} trials run "
        f"({search.counts.get('complete', 0)} complete, {search.counts.get('pruned', 0)} pruned, "
        f"{search.counts.get('failed', 0)} failed, {search.counts.get('timeout', 0)} timed out), stopped by {e(search.stopped_by)}, {spec.cv_folds}-fold CV.</p>",
        f"<p><img alt='search progress' src='{search_progress_plot(search)}'></p>",
        *([f"<p><img alt='score against time' src='{score_against_time_plot(search, finished_s)}'></p>"]
          if finished_s else []),
        "<h2>Input signature</h2>",
        _table([(c.name, c.type) for c in signature.inputs], ("column", "type")),
        "<h2>Lineage</h2>",
        _table([(k, v if not isinstance(v, dict) else json.dumps(v, sort_keys=True))
                for k, v in lineage.wire().items()], ("", "")),
        "</body></html>",
    ]
    return "\n".join(parts)
