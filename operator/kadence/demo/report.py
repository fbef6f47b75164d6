"""The demo's bookkeeping and its outputs: F1 per month, the loop's milestones, whether the loop
closed, and the files - f1_by_month.png, f1_by_month.html (self-contained: the plot inline as
base64, no network) and demo.json (the machine-readable record the end-to-end test reads).

Everything here is pure except the `write_*` functions, which only write the files named.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sklearn.metrics import f1_score

from ..commands.cluster import render_table

EVENT_COLUMNS = ("TIME", "KIND", "OBJECT", "REASON", "MESSAGE")

# The loop's steps in the order they must happen; each is a milestone `kind`.
BREACH = "Breach"
RETRAIN = "RetrainStarted"
NOTHING_NEW = "NothingNewToLearn"  # a retrain decided against: its inputs equal a registered version's
DATASET_VERSION = "NewDatasetVersion"
CANDIDATE = "CandidateRegistered"
VERDICT = "ChallengerVerdict"
CANARY = "CanaryStarted"
CANARY_STEP = "CanaryStep"
PROMOTED = "Promoted"
ROLLED_BACK = "RolledBack"
# Verdicts that only say "not yet": with late labels the unseen labelled predictions come later.
PROVISIONAL_VERDICTS = ("TooFewLabelsToCompare", "ChallengerNotEvaluated")
LOOP_STEPS = (
    (BREACH, "the MonitorPolicy never reported a breach"),
    (RETRAIN, "no retrain TrainingRun was started after the breach"),
    (CANDIDATE, "the retrain registered no candidate ModelVersion"),
    (VERDICT, "the champion/challenger comparison gave no verdict on the candidate"),
    (CANARY, "the approved candidate never started as a canary"),
    (PROMOTED, "the canary was not promoted to Production"),
)


def f1(labels: list[int], predictions: list[int]) -> float | None:
    """F1 of the positive class 1; None without any label (nothing to judge)."""
    if not labels:
        return None
    if len(labels) != len(predictions):
        raise ValueError(f"{len(labels)} labels but {len(predictions)} predictions")
    return float(f1_score(labels, predictions, pos_label=1, zero_division=0.0))


@dataclass
class Month:
    """One month of traffic and what was observed during it."""

    month: int
    share: float  # the new segment's share of the month's customers
    labels: list[int] = field(default_factory=list)
    predictions: list[int] = field(default_factory=list)
    original: list[int] = field(default_factory=list)  # the first model's predictions on the same rows
    versions: dict[str, int] = field(default_factory=dict)  # model version -> rows it answered
    canary_weight: int | None = None
    evaluation: dict | None = None  # the MonitorPolicy's evaluation of this month (time, f1, breached, ...)
    extra: bool = False  # a month past --months, sent while waiting for the loop to close
    errors: int = 0
    labels_sent: int = 0  # ground truth sent during the month (with a label delay: of an earlier month's rows)
    held: bool = False  # kept open while a retrain ran or a canary went on (with a label delay)

    def record(self, labels: list[int], predictions: list[int], version: str) -> None:
        self.labels += labels
        self.predictions += predictions
        self.versions[version] = self.versions.get(version, 0) + len(labels)

    @property
    def rows(self) -> int:
        return len(self.labels)

    @property
    def f1(self) -> float | None:
        return f1(self.labels, self.predictions)

    @property
    def f1_original(self) -> float | None:
        """The first model's F1 on the same rows (what the month would have scored without the loop)."""
        return f1(self.labels, self.original) if len(self.original) == len(self.labels) else None

    @property
    def f1_estimated(self) -> float | None:
        """The F1 the MonitorPolicy estimated without labels over the month's window (from the served
        probabilities), beside the F1 of the labelled answers."""
        return (((self.evaluation or {}).get("estimate") or {}).get("metrics") or {}).get("f1")

    def summary(self) -> dict:
        data = {k: v for k, v in asdict(self).items() if k not in ("labels", "predictions", "original")}
        return {**data, "rows": self.rows, "f1": _round(self.f1), "f1Original": _round(self.f1_original),
                "f1Estimated": _round(self.f1_estimated)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


@dataclass(frozen=True)
class Milestone:
    """A step of the loop as the demo saw it happen (also one row of the events table)."""

    time: str
    kind: str
    object: str
    reason: str
    message: str
    month: int | None = None

    def row(self) -> tuple[str, ...]:
        return (self.time, self.kind, self.object, self.reason, self.message)


def _first(milestones: list[Milestone], kind: str, after: Milestone | None = None) -> Milestone | None:
    start = milestones.index(after) if after is not None else 0
    return next((m for m in milestones[start:] if m.kind == kind), None)


def loop_verdict(milestones: list[Milestone], retrains: int, exactly_one: bool = True) -> tuple[bool, str]:
    """Whether the loop closed - breach, then a retrain, then the rest of LOOP_STEPS in order,
    with an approving verdict - and, if not, the first step that did not happen. `exactly_one`:
    the cooldown allows one retrain only (labels moments after the predictions); with late
    labels a retrain whose candidate lost is followed by another once new labels arrived."""
    previous = None
    for kind, missing in LOOP_STEPS:
        found = _first(milestones, kind, previous)
        if kind == VERDICT and found is not None and found.reason in PROVISIONAL_VERDICTS:
            # Not scored yet (labels to come): the policy compares again; a later verdict decides.
            later = [m for m in milestones[milestones.index(found):] if m.kind == VERDICT]
            found = next((m for m in later if m.reason == "Approved"), None) or next(
                (m for m in later if m.reason not in PROVISIONAL_VERDICTS), found)
        if found is None:
            if kind == PROMOTED and _first(milestones, ROLLED_BACK, previous):
                return False, "the canary was rolled back: " + _first(milestones, ROLLED_BACK, previous).message
            return False, missing
        if kind == VERDICT and found.reason != "Approved":
            return False, f"the champion/challenger comparison did not approve the candidate: {found.message}"
        previous = found
    if exactly_one and retrains != 1:
        return False, f"expected exactly one retrain inside the cooldown, the MonitorPolicy started {retrains}"
    retrained = "one retrain" if retrains == 1 else f"{retrains} retrains"
    return True, f"the loop closed: breach -> {retrained} -> candidate approved -> canary -> promoted"


def month_line(month: Month, threshold: float, label_delay: int = 0) -> str:
    """The progress line printed when a month ends."""
    score = "  n/a" if month.f1 is None else f"{month.f1:.3f}"
    mark = " " if month.f1 is None or month.f1 >= threshold else "<"
    served = ", ".join(f"v{v}:{n}" for v, n in sorted(month.versions.items()))
    canary = f" canary {month.canary_weight}%" if month.canary_weight else ""
    evaluation = month.evaluation or {}
    if not evaluation:
        verdict = "monitor: no evaluation"
    else:
        metric = (evaluation.get("metrics") or {}).get("f1")
        shown = "" if metric is None else f" f1={metric:.3f}"
        verdict = f"monitor:{shown} {'BREACHED' if evaluation.get('breached') else evaluation.get('reason', '')}"
        if label_delay and month.month >= label_delay:
            verdict += f" (labels of month {month.month - label_delay})"
    extra = " (extra)" if month.extra else ""
    return (f"month {month.month:>2}{extra}  new segment {month.share:4.0%}  F1 {score}{mark}  "
            f"served {served or '-'}{canary}  {verdict}")


def events_table(milestones: list[Milestone]) -> str:
    return render_table(EVENT_COLUMNS, [m.row() for m in milestones])


# ---------------------------------------------------------------- files


def plot_png(months: list[Month], threshold: float, milestones: list[Milestone], label_delay: int = 0) -> bytes:
    """F1 per month (served, and the first model's on the same rows), the threshold, and the
    months of the breach, the retrains, the canary and the promotion marked."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 5.4), dpi=110)
    axes = figure.subplots()
    xs = [m.month for m in months]
    axes.plot(xs, [m.f1 for m in months], marker="o", color="#1f6feb", label="F1 served")
    if any(m.f1_original is not None for m in months):
        axes.plot(xs, [m.f1_original for m in months], linestyle="--", marker=".", color="#8c959f",
                  label="F1 of the first model (no retraining)")
    if any(m.f1_estimated is not None for m in months):
        axes.plot(xs, [m.f1_estimated for m in months], linestyle="-.", marker="s", markersize=4, color="#8250df",
                  label="F1 estimated by the monitor without labels")
    axes.axhline(threshold, color="#cf222e", linestyle=":", label=f"threshold {threshold:g}")
    by_month = {m.month: m.f1 for m in months}
    breach = _first(milestones, BREACH)
    if breach is not None and by_month.get(breach.month) is not None:
        axes.plot([breach.month], [by_month[breach.month]], marker="X", markersize=14, color="#cf222e",
                  linestyle="none", label=f"breach detected (month {breach.month})")
    retrains = [m.month for m in milestones if m.kind == RETRAIN and m.month is not None]
    for index, month in enumerate(retrains):
        label = None
        if index == 0:
            label = (f"retrain started (month {month})" if len(retrains) == 1 else
                     f"retrains started (months {', '.join(str(m) for m in retrains)})")
        axes.axvline(month, color="#bf8700", linestyle="--", linewidth=2, label=label)
    canary, promoted = _first(milestones, CANARY), _first(milestones, PROMOTED)
    if canary is not None and canary.month is not None:
        end = promoted.month if promoted is not None and promoted.month is not None else xs[-1]
        axes.axvspan(canary.month - 0.15, end + 0.15, color="#bf8700", alpha=0.12, label="canary")
    if promoted is not None and promoted.month is not None:
        axes.axvline(promoted.month, color="#1a7f37", linewidth=2,
                     label=f"retrained model promoted (month {promoted.month})")
    axes.set_xlabel("month")
    axes.set_ylabel("F1 on labelled traffic")
    axes.set_ylim(0, 1.05)
    axes.set_xticks(xs)
    late = f" (ground truth {label_delay} month{'s' if label_delay > 1 else ''} late)" if label_delay else ""
    axes.set_title("Kadence closed loop: F1 of the served answers per month" + late)
    axes.grid(alpha=0.3)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, fontsize=8, frameon=False)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def render_html(png: bytes, months: list[Month], threshold: float, milestones: list[Milestone],
                verdict: tuple[bool, str]) -> str:
    """One self-contained page: the plot (base64 PNG), the months and the events."""
    def cell(value) -> str:
        return f"<td>{html.escape('' if value is None else str(value))}</td>"

    month_rows = "\n".join(
        "<tr>" + "".join(cell(v) for v in (
            m.month, f"{m.share:.0%}", m.rows, _fmt(m.f1), _fmt(m.f1_original),
            ", ".join(f"v{v}: {n}" for v, n in sorted(m.versions.items())), m.canary_weight or "",
            _fmt((m.evaluation or {}).get("metrics", {}).get("f1") if m.evaluation else None),
            _fmt(m.f1_estimated),
            ("breached" if (m.evaluation or {}).get("breached") else (m.evaluation or {}).get("reason", "")),
        )) + "</tr>" for m in months)
    event_rows = "\n".join("<tr>" + "".join(cell(v) for v in m.row()) + "</tr>" for m in milestones)
    closed, message = verdict
    image = base64.b64encode(png).decode()
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Kadence demo: F1 by month</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:70em}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #d0d7de;padding:.25em .6em;text-align:left;font-size:.9em}}th{{background:#f6f8fa}}
.ok{{color:#1a7f37}}.fail{{color:#cf222e}}</style></head><body>
<h1>Kadence closed loop: F1 by month</h1>
<p class="{'ok' if closed else 'fail'}">{html.escape(message)}</p>
<img alt="F1 per month with the threshold {threshold:g} and the retraining marked" src="data:image/png;base64,{image}">
<h2>Months</h2>
<table><tr><th>month</th><th>new segment</th><th>rows</th><th>F1 served</th><th>F1 first model</th>
<th>answered by</th><th>canary weight</th><th>monitor F1</th><th>monitor F1 estimated</th><th>monitor verdict</th></tr>
{month_rows}
</table>
<h2>Events</h2>
<table><tr>{''.join(f'<th>{c.lower()}</th>' for c in EVENT_COLUMNS)}</tr>
{event_rows}
</table>
</body></html>
"""


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def demo_record(months: list[Month], threshold: float, milestones: list[Milestone], retrains: int,
                verdict: tuple[bool, str], settings: dict) -> dict:
    """demo.json: what the end-to-end test checks."""
    def at(kind: str) -> dict | None:
        found = _first(milestones, kind)
        return asdict(found) if found else None

    closed, message = verdict
    return {"settings": settings, "threshold": threshold, "months": [m.summary() for m in months],
            "events": [asdict(m) for m in milestones], "breach": at(BREACH), "retrain": at(RETRAIN),
            "candidate": at(CANDIDATE), "verdict": at(VERDICT), "canary": at(CANARY), "promotion": at(PROMOTED),
            "retrains": retrains, "closed": closed, "message": message}


ANSWER_COLUMNS = ("month", "row_id", "label", "prediction", "version")


def answers_csv(answers: list[tuple[int, str, int, int, str]]) -> str:
    """Every served answer with its ground truth, one row each (what anyone can recompute F1 from)."""
    lines = [",".join(ANSWER_COLUMNS)]
    lines += [",".join(str(value) for value in answer) for answer in answers]
    return "\n".join(lines) + "\n"


def write_outputs(directory: Path, months: list[Month], threshold: float, milestones: list[Milestone],
                  retrains: int, verdict: tuple[bool, str], settings: dict,
                  answers: list[tuple[int, str, int, int, str]] = ()) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    png = plot_png(months, threshold, milestones, int(settings.get("labelDelay") or 0))
    paths = [directory / "f1_by_month.png", directory / "f1_by_month.html", directory / "demo.json",
             directory / "answers.csv"]
    paths[0].write_bytes(png)
    paths[1].write_text(render_html(png, months, threshold, milestones, verdict))
    record = demo_record(months, threshold, milestones, retrains, verdict, settings)
    paths[2].write_text(json.dumps(record, indent=2) + "\n")
    paths[3].write_text(answers_csv(list(answers)))
    return paths
