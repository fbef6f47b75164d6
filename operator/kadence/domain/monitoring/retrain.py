"""What a retrain learns from, and whether it has anything new to learn (pure).

A retrain's inputs are the data version it trains on (the Dataset version, content-derived,
which covers any feedback folded into it, and the FeatureSet version materialized from it),
the labelled feedback in it (rows and the period of predictions they span) and the hash of the
training spec. Two retrains with equal inputs learn the same thing: when a registered
ModelVersion of the model (its lineage) or a retrain still in flight has the same inputs, no
TrainingRun starts (`NothingNewToLearn`).

The retrain TrainingRun's name derives from the decision (the evaluation that decided it, the
triggers and the inputs), never from the clock: two reconciles of the same decision create
one child.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Sequence

from .policy import DRIFT_AND_QUALITY, DRIFT_DETECTED, ESTIMATED_QUALITY_BELOW_THRESHOLD

# Retrain outcomes (status.retrains[].outcome)
PENDING = "Pending"
WON = "Won"
LOST = "Lost"
NOTHING_NEW = "NothingNew"
FAILED = "Failed"

# Decision reasons of this module
NOTHING_NEW_TO_LEARN = "NothingNewToLearn"
WAITING_FOR_LABELS = "WaitingForLabels"
ALERT_ONLY = "AlertOnly"
RETRAIN_IN_PROGRESS = "RetrainInProgress"
COOLDOWN = "CooldownActive"
BUDGET_EXHAUSTED = "DailyBudgetExhausted"

# spec.actions.retrain.withoutNewLabels
RETRAIN_ANYWAY = "RetrainAnyway"
WAIT_FOR_LABELS = "WaitForLabels"

# Champion/challenger verdicts that could not judge yet (too few labelled predictions the
# candidate did not train on): the comparison runs again as labels arrive.
NOT_YET_JUDGED = frozenset({"TooFewLabelsToCompare", "ChallengerNotEvaluated"})

DAY = timedelta(days=1)


def training_spec_hash(spec: dict) -> str:
    """sha256 of a TrainingRun spec (wire form) without what does not change what is learnt
    from given data: the data version pins (an input of their own) and the promotion policy
    (a retrain always registers a Candidate)."""
    canonical = {k: v for k, v in (spec or {}).items() if k != "promotion"}
    for ref in ("datasetRef", "featureSetRef"):
        if isinstance(canonical.get(ref), dict):
            canonical[ref] = {"name": canonical[ref].get("name")}
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class Feedback:
    """Labelled predictions: an export of the monitor Job, or those folded into a Dataset version."""

    rows: int
    sha256: str
    uri: str | None = None
    since: str | None = None
    start: str | None = None  # oldest prediction time ("from" on the wire)
    end: str | None = None  # newest prediction time ("to" on the wire)

    @classmethod
    def from_wire(cls, wire: dict | None) -> "Feedback | None":
        if not wire or not wire.get("sha256"):
            return None
        return cls(rows=int(wire.get("rows") or 0), sha256=wire["sha256"], uri=wire.get("uri"),
                   since=wire.get("since"), start=wire.get("from"), end=wire.get("to"))


@dataclass(frozen=True)
class RetrainInputs:
    dataset: str | None
    dataset_version: str | None
    spec_hash: str
    feature_set: str | None = None
    feature_set_version: str | None = None
    feedback: Feedback | None = None

    @property
    def data_version(self) -> str | None:
        """The version the TrainingRun pins: the FeatureSet's when it reads one, else the Dataset's."""
        return self.feature_set_version if self.feature_set else self.dataset_version

    def key(self) -> str:
        """What identifies the learning: data versions and spec (the feedback is inside the data)."""
        return "|".join(str(x) for x in (self.dataset_version, self.feature_set, self.feature_set_version,
                                          self.spec_hash))

    def wire(self) -> dict:
        entry = {"dataset": self.dataset, "datasetVersion": self.dataset_version, "featureSet": self.feature_set,
                 "featureSetVersion": self.feature_set_version, "specHash": self.spec_hash}
        if self.feedback is not None:
            entry.update({"feedbackRows": self.feedback.rows, "feedbackFrom": self.feedback.start,
                          "feedbackTo": self.feedback.end, "feedbackSha256": self.feedback.sha256})
        return {k: v for k, v in entry.items() if v is not None}

    @classmethod
    def from_wire(cls, wire: dict | None) -> "RetrainInputs | None":
        if not wire or not wire.get("specHash"):
            return None
        feedback = None
        if wire.get("feedbackSha256"):
            feedback = Feedback(rows=int(wire.get("feedbackRows") or 0), sha256=wire["feedbackSha256"],
                                start=wire.get("feedbackFrom"), end=wire.get("feedbackTo"))
        return cls(dataset=wire.get("dataset"), dataset_version=wire.get("datasetVersion"),
                   spec_hash=wire["specHash"], feature_set=wire.get("featureSet"),
                   feature_set_version=wire.get("featureSetVersion"), feedback=feedback)

    def describe(self) -> str:
        data = f"Dataset {self.dataset} version {self.dataset_version}"
        if self.feature_set:
            data += f" (FeatureSet {self.feature_set} version {self.feature_set_version})"
        if self.feedback is not None and self.feedback.rows:
            data += (f" with {self.feedback.rows} labelled predictions from {self.feedback.start} "
                     f"to {self.feedback.end}")
        return f"{data}, training spec {self.spec_hash[:12]}"


def lineage_inputs(lineage: dict | None) -> RetrainInputs | None:
    """The inputs a registered ModelVersion was trained on (its spec.lineage); None when its
    lineage does not record the training spec's hash (imported, or registered before it was)."""
    lineage = lineage or {}
    if not lineage.get("trainingSpecHash"):
        return None
    return RetrainInputs(dataset=lineage.get("dataset"), dataset_version=lineage.get("datasetVersion"),
                         spec_hash=lineage["trainingSpecHash"], feature_set=lineage.get("featureSet"),
                         feature_set_version=lineage.get("featureSetVersion"))


def learnt_before(inputs: RetrainInputs, known: Iterable[tuple[str, RetrainInputs]]) -> str | None:
    """The name (a ModelVersion, or a TrainingRun in flight) already trained on these inputs, or None."""
    for name, other in known:
        if other is not None and other.key() == inputs.key():
            return name
    return None


def retrain_run_name_suffix(slot: str, trigger: str, inputs: RetrainInputs) -> str:
    """10 hex digits of the decision: the evaluation that decided it, its triggers, its inputs."""
    return hashlib.sha256(f"{slot}|{trigger}|{inputs.key()}".encode()).hexdigest()[:10]


# --- new labels --------------------------------------------------------------------------


def new_labels(export: Feedback | None, trained_on: Feedback | None) -> int:
    """How many more labelled predictions the export holds than the feedback the serving model
    (or the last retrain) was trained on: 0 when they are the same export."""
    if export is None or export.rows == 0:
        return 0
    if trained_on is None:
        return export.rows
    if export.sha256 == trained_on.sha256:
        return 0
    return max(export.rows - trained_on.rows, 0) or 1  # relabels only: same count, different labels


@dataclass(frozen=True)
class Hold:
    reason: str
    message: str


def label_free_breach(*, breach_only: bool, reason: str | None, quality_reason: str | None) -> str | None:
    """What breached when nothing measured on labels did: "drift", "estimated quality" or
    "drift and estimated quality"; None when a realized metric breached or another trigger fired
    (a schedule, new data, a manual request: those are asked for, not inferred)."""
    if not breach_only:
        return None
    if reason == DRIFT_DETECTED:
        return "drift"
    if reason == ESTIMATED_QUALITY_BELOW_THRESHOLD:
        return "estimated quality"
    if reason == DRIFT_AND_QUALITY and quality_reason == ESTIMATED_QUALITY_BELOW_THRESHOLD:
        return "drift and estimated quality"
    return None


def without_new_labels(*, choice: str, breach: str | None, new: int, new_data: bool = False) -> Hold | None:
    """What a breach seen without labels (drift, an estimated metric: `label_free_breach`) does when no
    new labelled prediction arrived (spec.actions.retrain.withoutNewLabels). A realized quality
    breach is measured on labels and is not concerned; nor is a breach with a Dataset version newer
    than the serving model's (`new_data`): there is something new to learn from without labels."""
    if breach is None or new > 0 or new_data or choice == RETRAIN_ANYWAY:
        return None
    if choice == ALERT_ONLY:
        return Hold(ALERT_ONLY, f"{breach} breached with no new labelled predictions; withoutNewLabels is "
                                f"AlertOnly: no retrain on {breach} alone")
    return Hold(WAITING_FOR_LABELS, f"{breach} breached, but no labelled prediction arrived since the serving "
                                    "model's data: waiting for labels (withoutNewLabels: WaitForLabels)")


# --- cooldown, budget, outcomes -----------------------------------------------------------


@dataclass(frozen=True)
class PastRetrain:
    """A retrain as the gate counts it: from status.retrains and the retrain TrainingRuns."""

    name: str | None
    time: datetime
    outcome: str
    feedback_rows: int | None = None


def retrain_gate(*, now: datetime, triggers: Sequence[str], past: Sequence[PastRetrain], cooldown: timedelta,
                 max_per_day: int, labelled_rows: int | None, min_new_labels: int) -> Hold | None:
    """None when a retrain may start now, else why not.

    - a retrain still Pending (training, or awaiting its verdict) holds the next one;
    - the cooldown runs from the latest retrain that Won champion/challenger;
    - after one that Lost (or was identical), the next starts once `min_new_labels` more labelled
      predictions arrived than it trained on (`labelled_rows` None: feedback is not used, no wait);
    - the budget counts the retrains started in the last 24 hours (NothingNew ones start nothing)."""
    causes = ", ".join(triggers)
    started = sorted((p for p in past if p.outcome != NOTHING_NEW and p.time <= now), key=lambda p: p.time)
    pending = [p for p in started if p.outcome == PENDING]
    if pending:
        return Hold(RETRAIN_IN_PROGRESS, f"{causes} fired, but retrain {pending[-1].name} is still in progress")
    won = [p for p in started if p.outcome == WON]
    if won and now < won[-1].time + cooldown:
        return Hold(COOLDOWN, f"{causes} fired, but retrain {won[-1].name} of {won[-1].time.isoformat()} "
                                      f"produced a winning candidate; the cooldown ends at "
                                      f"{(won[-1].time + cooldown).isoformat()}")
    finished = [p for p in started if p.outcome in (WON, LOST)]
    if finished and finished[-1].outcome == LOST and labelled_rows is not None:
        seen = finished[-1].feedback_rows or 0
        if labelled_rows - seen < min_new_labels:
            return Hold(WAITING_FOR_LABELS,
                        f"{causes} fired; the last retrain ({finished[-1].name}) lost champion/challenger and "
                        f"{max(labelled_rows - seen, 0)} labelled predictions arrived since its data, "
                        f"{min_new_labels} needed before the next one")
    recent = [p for p in started if p.time > now - DAY]
    if len(recent) >= max_per_day:
        return Hold(BUDGET_EXHAUSTED,
                    f"{causes} fired, but {len(recent)} retrains in the last 24h reach the budget of {max_per_day}; "
                    f"next possible at {(recent[0].time + DAY).isoformat()}")
    return None


def past_retrains(records: Sequence[dict]) -> list[PastRetrain]:
    """The retrains status.retrains lists (the planner lists there any retrain TrainingRun it
    finds unlisted, so the count comes from the children, not from the last writer of status)."""
    out = []
    for record in records or []:
        time = _parse(record.get("time"))
        if time is None:
            continue
        out.append(PastRetrain(record.get("trainingRun"), time, record.get("outcome") or PENDING,
                               (record.get("inputs") or {}).get("feedbackRows")))
    return out


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class RunState:
    """A retrain TrainingRun as the policy follows it."""

    name: str
    phase: str | None = None
    model_version: str | None = None
    identical_to: str | None = None
    message: str | None = None
    trigger: str | None = None  # its kadence.dev/retrain-trigger annotation


def outcome(record: dict, run: RunState | None, verdicts: dict[str, dict], served: str | None) -> tuple[str, str | None]:
    """The outcome of a Pending retrain record: (outcome, message)."""
    if run is None:
        return PENDING, record.get("outcomeMessage")
    if run.phase == "Failed":
        return FAILED, run.message or f"TrainingRun {run.name} failed"
    if run.identical_to:
        return LOST, f"its model is identical to {run.identical_to} (same sha256): not registered again"
    candidate = run.model_version
    if candidate is None:
        return PENDING, record.get("outcomeMessage")
    if served == candidate:
        return WON, f"{candidate} is served"
    verdict = verdicts.get(candidate)
    if verdict is None:
        return PENDING, f"{candidate} awaits champion/challenger"
    if verdict.get("reason") in NOT_YET_JUDGED:
        return PENDING, f"{candidate} awaits labelled predictions it did not train on: {verdict.get('message') or ''}"
    if verdict.get("allowed"):
        return WON, f"{candidate}: {verdict.get('message') or verdict.get('reason')}"
    return LOST, f"{candidate}: {verdict.get('reason')}: {verdict.get('message') or ''}".rstrip(": ")
