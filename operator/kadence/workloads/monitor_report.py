"""The monitor's HTML report: one self-contained page (inline SVG, no scripts, no external
files) with the verdict, the metrics, the policy metric over time with its threshold, and
per feature a histogram of reference versus current shares."""

from __future__ import annotations

import bisect
import html
from typing import Any, Sequence

import numpy as np

from ..domain.monitoring.drift import CategoricalReference, NumericReference, category_values, finite_values

REFERENCE_COLOUR = "#4c78a8"
CURRENT_COLOUR = "#f58518"
HISTOGRAM_BINS = 20
TOP_CATEGORIES = 15


def comparison_histogram(reference: NumericReference | CategoricalReference, current: Any) -> dict[str, Any] | None:
    """Reference and current shares over common bins (numeric) or the most common categories;
    None when either side has no values."""
    if isinstance(reference, NumericReference):
        values, _ = finite_values(current)
        if reference.count == 0 or len(values) == 0:
            return None
        ref_low, ref_high = reference.cdf_values[0], reference.cdf_values[-1]  # min and max
        low, high = min(ref_low, values.min()), max(ref_high, values.max())
        if high <= low:
            high = low + 1.0
        edges = np.linspace(low, high, HISTOGRAM_BINS + 1)
        bounds = reference.cdf_before(edges)  # bins are [e_i, e_i+1), the last one closed
        bounds[-1] = 1.0
        ref_shares = np.diff(bounds)
        cur_counts, _ = np.histogram(values, bins=edges)
        labels = [f"{edges[i]:.3g}–{edges[i + 1]:.3g}" for i in range(HISTOGRAM_BINS)]
        return {"kind": "numeric", "edges": edges.tolist(), "labels": labels,
                "reference": np.clip(ref_shares, 0, None).tolist(), "current": (cur_counts / len(values)).tolist()}
    values, _ = category_values(current)
    if reference.count == 0 or len(values) == 0:
        return None
    names, counts = np.unique(values, return_counts=True)
    current_shares = {str(n): c / len(values) for n, c in zip(names, counts)}
    reference_shares = {k: v / reference.count for k, v in reference.category_counts.items()}
    ranked = sorted(set(current_shares) | set(reference_shares),
                    key=lambda c: -(reference_shares.get(c, 0) + current_shares.get(c, 0)))[:TOP_CATEGORIES]
    return {"kind": "categorical", "labels": ranked,
            "reference": [reference_shares.get(c, 0.0) for c in ranked],
            "current": [current_shares.get(c, 0.0) for c in ranked]}


def _bars_svg(histogram: dict[str, Any], width: int = 420, height: int = 160) -> str:
    reference, current, labels = histogram["reference"], histogram["current"], histogram["labels"]
    n = len(labels)
    top = max(max(reference, default=0), max(current, default=0)) or 1.0
    plot_h = height - 30
    slot = (width - 10) / max(n, 1)
    bar = max(slot / 2 - 1, 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    for i in range(n):
        for j, (share, colour) in enumerate(((reference[i], REFERENCE_COLOUR), (current[i], CURRENT_COLOUR))):
            h = plot_h * share / top
            x = 5 + i * slot + j * bar
            title = f"{labels[i]}: {'reference' if j == 0 else 'current'} {share:.1%}"
            parts.append(f'<rect x="{x:.1f}" y="{plot_h - h + 5:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                         f'fill="{colour}"><title>{html.escape(title)}</title></rect>')
    parts.append(f'<line x1="5" y1="{plot_h + 5}" x2="{width - 5}" y2="{plot_h + 5}" stroke="#333"/>')
    first, last = html.escape(str(labels[0])), html.escape(str(labels[-1]))
    parts.append(f'<text x="5" y="{height - 6}" font-size="10">{first}</text>')
    parts.append(f'<text x="{width - 5}" y="{height - 6}" font-size="10" text-anchor="end">{last}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _line_svg(points: Sequence[tuple[str, float]], threshold: float | None, metric: str,
              estimates: Sequence[tuple[str, float]] | None = None, width: int = 640, height: int = 200) -> str:
    """The realized metric over time (blue); the estimate without labels (orange, dashed) when given,
    placed by time among the realized points."""
    values = [v for _, v in points] + [v for _, v in estimates or []] + ([threshold] if threshold is not None else [])
    low, high = min(values), max(values)
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    pad = (high - low) * 0.1
    low, high = low - pad, high + pad
    plot_w, plot_h = width - 60, height - 40

    def xy(i: int, v: float) -> tuple[float, float]:
        x = 50 + (plot_w * i / max(len(points) - 1, 1))
        return x, 10 + plot_h * (1 - (v - low) / (high - low))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    parts.append(f'<text x="5" y="15" font-size="11">{html.escape(metric)}</text>')
    for v in (low + pad, high - pad):
        _, y = xy(0, v)
        parts.append(f'<text x="45" y="{y + 4:.1f}" font-size="10" text-anchor="end">{v:.3g}</text>')
    if threshold is not None:
        _, y = xy(0, threshold)
        parts.append(f'<line x1="50" y1="{y:.1f}" x2="{50 + plot_w}" y2="{y:.1f}" stroke="#d62728" '
                     f'stroke-dasharray="4 3"><title>threshold {threshold:g}</title></line>')
    coords = [xy(i, v) for i, (_, v) in enumerate(points)]
    parts.append('<polyline fill="none" stroke="#4c78a8" stroke-width="2" points="'
                 + " ".join(f"{x:.1f},{y:.1f}" for x, y in coords) + '"/>')
    for (x, y), (label, v) in zip(coords, points):
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#4c78a8">'
                     f'<title>{html.escape(label)}: {v:.4g}</title></circle>')
    if estimates:
        times = [label for label, _ in points]
        placed = [(xy(min(bisect.bisect_left(times, label), len(points) - 1), v), label, v) for label, v in estimates]
        parts.append('<polyline class="estimate" fill="none" stroke="#f58518" stroke-width="2" '
                     'stroke-dasharray="5 3" points="' + " ".join(f"{x:.1f},{y:.1f}" for (x, y), _, _ in placed)
                     + '"><title>estimated without labels</title></polyline>')
        parts.append(f'<text x="{50 + plot_w}" y="15" font-size="11" text-anchor="end" fill="#f58518">'
                     'estimated (dashed)</text>')
    if points:
        parts.append(f'<text x="50" y="{height - 8}" font-size="10">{html.escape(points[0][0])}</text>')
        parts.append(f'<text x="{50 + plot_w}" y="{height - 8}" font-size="10" text-anchor="end">'
                     f'{html.escape(points[-1][0])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if value >= size:
            return f"{value / size:.3g} {unit}"
    return f"{value:.3g} s"


def render_html(*, title: str, result: dict[str, Any], histograms: dict[str, dict[str, Any]],
                metric: str | None, threshold: float | None, history: list[dict[str, Any]]) -> str:
    """The page. `result` is the MonitorResult wire dict; `history` earlier results, oldest first."""
    verdict_colour = "#d62728" if result.get("breached") else "#2ca02c"
    rows = []
    out = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:24px;color:#222}"
        "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}"
        ".feature{display:inline-block;margin:8px 16px 8px 0;vertical-align:top}"
        ".legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p><b style='color:{verdict_colour}'>{html.escape(str(result.get('reason')))}</b> — "
        f"{html.escape(str(result.get('message')))}</p>",
        f"<p>Evaluated at {_fmt(result.get('time'))}; drift window {_fmt(result.get('windowStart'))} to "
        f"{_fmt(result.get('windowEnd'))}: {result.get('samples', 0)} predictions.</p>",
    ]
    quality = result.get("qualityWindow")
    if quality:
        out.append(
            f"<p>Quality window: the newest {quality['labelled']} labelled predictions (at most {quality['limit']}) "
            f"made since {_fmt(quality['retentionStart'])}, labels joined whenever they came: predictions of "
            f"{_fmt(quality.get('start'))} to {_fmt(quality.get('end'))}; label delay p50 "
            f"{_seconds(quality.get('labelDelayP50Seconds'))}, p95 {_seconds(quality.get('labelDelayP95Seconds'))}.</p>")
    export = result.get("feedbackExport")
    if export:
        out.append(f"<p>Feedback export: {export['rows']} labelled predictions of {_fmt(export.get('start'))} to "
                   f"{_fmt(export.get('end'))} (since {_fmt(export.get('since'))}) — {_fmt(export.get('uri'))}"
                   + (f"; the newest {export['heldOut']} held out for champion/challenger" if export.get("heldOut")
                      else "") + ".</p>")
    comparison = result.get("comparison")
    if comparison:
        unseen = (f", made after {_fmt(comparison.get('unseenAfter'))} (what the challenger trained on)"
                  if comparison.get("unseenAfter") else "")
        if comparison.get("heldOut"):
            unseen += f"; the retrain held the newest {comparison['heldOut']} labelled predictions out for it"
        out.append(
            f"<h2>Champion/challenger</h2><p>{html.escape(str(comparison.get('reason')))}: "
            f"{html.escape(str(comparison.get('message')))}. Scored on {comparison.get('labelled', 0)} labelled "
            f"predictions of {_fmt(comparison.get('start'))} to {_fmt(comparison.get('end'))}{unseen}.</p>")
    estimate = result.get("estimate") or {}
    if result.get("metrics") or result.get("unavailableMetrics") or estimate:
        estimated = estimate.get("metrics") or {}
        out.append(f"<h2>Quality</h2><table><tr><th>metric</th><th>realized ({result.get('labelledSamples', 0)} "
                   f"labelled)</th><th>estimated without labels ({estimate.get('predictions', 0)} predictions, "
                   f"{_fmt(estimate.get('method'))})</th></tr>")
        unavailable = result.get("unavailableMetrics") or {}
        for name in sorted(set(result.get("metrics") or {}) | set(estimated) | set(unavailable)):
            realized = (result.get("metrics") or {}).get(name)
            shown = _fmt(realized) if realized is not None else (
                f"not available: {html.escape(unavailable[name])}" if name in unavailable else "—")
            out.append(f"<tr><td>{html.escape(name)}</td><td>{shown}</td><td>{_fmt(estimated.get(name))}</td></tr>")
        out.append("</table>")
        if estimate.get("unavailable"):
            out.append(f"<p>No estimate: {html.escape(estimate['unavailable'])}</p>")
    out += segments_html(result.get("segments"))
    for key, heading in (("conceptDrift", "Concept drift"), ("labelDrift", "Label drift (feedback)"),
                         ("predictionDrift", "Prediction drift (served outputs)")):
        part = result.get(key)
        if part and part.get("message"):
            flagged = part.get("detected") or part.get("drifted")
            out.append(f"<p><b style='color:{'#d62728' if flagged else '#222'}'>{heading}</b>: "
                       f"{html.escape(part['message'])}</p>")
    if metric:
        runs = history + [result]
        points = [(str(r.get("time")), float(r["metrics"][metric])) for r in runs
                  if (r.get("metrics") or {}).get(metric) is not None]
        estimates = [(str(r.get("time")), float(r["estimate"]["metrics"][metric])) for r in runs
                     if ((r.get("estimate") or {}).get("metrics") or {}).get(metric) is not None]
        if points or estimates:
            out.append(f"<h2>{html.escape(metric)} over time</h2>")
            out.append(_line_svg(points or estimates, threshold, metric, estimates if points else None))
    features = result.get("features") or []
    if features:
        out.append("<h2>Drift</h2>")
        if result.get("drift"):
            out.append(f"<p>{html.escape(result['drift']['message'])}</p>")
        out.append("<table><tr><th>feature</th><th>method</th><th>score</th><th>threshold</th><th>drifted</th>"
                   "<th>status</th><th>missing (ref / current)</th></tr>")
        for f in features:
            missing = f"{_fmt(f.get('referenceMissingShare'))} / {_fmt(f.get('currentMissingShare'))}"
            rows.append(f"<tr><td>{html.escape(f['feature'])}</td><td>{_fmt(f.get('method'))}</td>"
                        f"<td>{_fmt(f.get('score'))}</td><td>{_fmt(f.get('threshold'))}</td>"
                        f"<td>{'yes' if f.get('drifted') else 'no'}</td><td>{html.escape(f['status'])}</td>"
                        f"<td>{missing}</td></tr>")
        out.extend(rows)
        out.append("</table>")
        out.append(f"<p class='legend'><span style='background:{REFERENCE_COLOUR}'></span>reference"
                   f"<span style='background:{CURRENT_COLOUR}'></span>current</p>")
        for f in features:
            histogram = histograms.get(f["feature"])
            if histogram is None:
                continue
            mark = " (drifted)" if f.get("drifted") else ""
            out.append(f"<div class='feature'><h3>{html.escape(f['feature'])}{mark}</h3>{_bars_svg(histogram)}</div>")
    out.append("</body></html>")
    return "\n".join(out)


def segments_html(segments: dict[str, Any] | None) -> list[str]:
    """spec.segments: the gate's verdict, the metric per segment (worst judged first) and the
    sensitive attribute's disparity."""
    if not segments:
        return []
    out = [f"<h2>Segments</h2><p><b>{html.escape(str(segments.get('reason')))}</b>: "
           f"{html.escape(str(segments.get('message')))}</p>",
           f"<table><tr><th>column</th><th>segment</th><th>rows</th><th>{html.escape(str(segments.get('metric')))}"
           f"</th><th>judged</th></tr>"]
    for s in segments.get("segments") or []:
        judged = "yes" if s.get("judged") else html.escape(str(s.get("unavailable") or "no"))
        out.append(f"<tr><td>{html.escape(s['column'])}</td><td>{html.escape(s['segment'])}</td><td>{s['rows']}</td>"
                   f"<td>{_fmt(s.get('value'))}</td><td>{judged}</td></tr>")
    out.append("</table>")
    disparity = segments.get("disparity")
    if disparity:
        rates = ", ".join(f"{html.escape(g)} {_fmt(r)}" for g, r in (disparity.get("selectionRates") or {}).items())
        out.append(f"<p>{html.escape(disparity['attribute'])}: demographic-parity difference "
                   f"{_fmt(disparity.get('demographicParityDifference'))}, equalized-odds difference "
                   f"{_fmt(disparity.get('equalizedOddsDifference'))} over {disparity.get('groups', 0)} groups"
                   f"{' (selection rates ' + rates + ')' if rates else ''}"
                   f"{'; ' + html.escape(disparity['unavailable']) if disparity.get('unavailable') else ''}.</p>")
    for column, why in (segments.get("skipped") or {}).items():
        out.append(f"<p>{html.escape(column)} not reported: {html.escape(why)}</p>")
    return out
