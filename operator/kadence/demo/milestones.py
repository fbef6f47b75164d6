"""What changed in the loop between two looks at the cluster, as milestones (pure).

`Snapshot.of(...)` condenses the objects the demo reads - the MonitorPolicy, the Dataset, the
ModelVersions, the retrain TrainingRuns and the InferenceService - into what the loop's steps
depend on; `changes(before, after, now, month)` names the steps that happened in between.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import report
from .report import Milestone
from ..api import keys

RETRAINED_BY_LABEL = keys.RETRAINED_BY_LABEL


@dataclass(frozen=True)
class Snapshot:
    breached_at: tuple[str, ...] = ()  # times of the breached evaluations in the policy's history
    evaluations: dict[str, dict] = field(default_factory=dict)  # time -> evaluation
    retrains: tuple[tuple[str, str, str], ...] = ()  # (trainingRun, trigger, message)
    nothing_new: tuple[tuple[str, str], ...] = ()  # (time, message) of retrain decisions that found nothing new
    dataset_version: str | None = None
    dataset_rows: int | None = None
    versions: dict[str, tuple[int, str]] = field(default_factory=dict)  # ModelVersion -> (version, stage)
    verdicts: dict[str, dict] = field(default_factory=dict)  # ModelVersion -> verdict (policy status.verdicts)
    stable_version: int | None = None
    canary_version: int | None = None
    canary_weight: int | None = None
    rollout_phase: str | None = None
    rollout_reason: str | None = None
    retrains_running: tuple[str, ...] = ()  # retrain TrainingRuns not yet Succeeded or Failed
    retrain_pending: str | None = None  # the Dataset a decided retrain waits on (policy status.pendingRetrain)

    def busy(self) -> str | None:
        """The step of the loop in flight, in words: a decided retrain waiting for its feedback to be
        ingested, a retrain running, a candidate awaiting its verdict (not one that waits for labels
        still to come), an approved candidate whose canary has not started, or a canary going on."""
        if self.retrain_pending:
            return f"a retrain waits for Dataset {self.retrain_pending} to take in the labelled feedback"
        if self.retrains_running:
            return f"retrain {', '.join(self.retrains_running)} runs"
        if self.canary_version and self.rollout_phase not in (None, "Stable", "RolledBack", "Degraded"):
            return f"the canary of version {self.canary_version} goes on ({self.rollout_phase})"
        for name, (version, stage) in sorted(self.versions.items()):
            verdict = self.verdicts.get(name)
            if stage != "Candidate" or version <= (self.stable_version or 0):
                continue
            if verdict is None or verdict.get("reason") == "ChallengerNotEvaluated":
                return f"candidate {name} awaits the champion/challenger verdict"
            if verdict.get("allowed") and verdict.get("rollout") == "Canary" and self.canary_version != version:
                return f"candidate {name} is approved and its canary has not started"
        return None

    @classmethod
    def of(cls, policy: dict | None, dataset: dict | None, model_versions: list[dict], training_runs: list[dict],
           service: dict | None) -> "Snapshot":
        policy_status = (policy or {}).get("status") or {}
        history = list(policy_status.get("history") or [])
        last = policy_status.get("lastEvaluation")
        if last and all(e.get("time") != last.get("time") for e in history):
            history.append(last)
        evaluations = {e["time"]: e for e in history if e.get("time")}
        records = policy_status.get("retrains") or []
        retrains = {r["trainingRun"]: (r["trainingRun"], r.get("trigger", ""), r.get("message") or "")
                    for r in records if r.get("trainingRun")}
        nothing_new = tuple(sorted((r["time"], r.get("outcomeMessage") or r.get("message") or "")
                                   for r in records if not r.get("trainingRun") and r.get("outcome") == "NothingNew"))
        for run in training_runs:
            meta = run["metadata"]
            if (meta.get("labels") or {}).get(RETRAINED_BY_LABEL) and meta["name"] not in retrains:
                annotations = meta.get("annotations") or {}
                retrains[meta["name"]] = (meta["name"], annotations.get(keys.RETRAIN_TRIGGER_ANNOTATION, ""),
                                          annotations.get(keys.RETRAIN_CAUSE_ANNOTATION, ""))
        dataset_status = (dataset or {}).get("status") or {}
        versions, verdicts = {}, {}
        for item in model_versions:
            name, spec, status = item["metadata"]["name"], item.get("spec") or {}, item.get("status") or {}
            versions[name] = (int(spec.get("version", 0)), status.get("stage") or spec.get("stage") or "")
        for verdict in policy_status.get("verdicts") or []:
            if verdict.get("candidate") in versions:
                verdicts[verdict["candidate"]] = verdict
        rollout = (service or {}).get("status") or {}
        return cls(
            breached_at=tuple(sorted(t for t, e in evaluations.items() if e.get("breached"))),
            evaluations=evaluations, retrains=tuple(sorted(retrains.values())), nothing_new=nothing_new,
            dataset_version=dataset_status.get("latestVersion"), dataset_rows=_rows_of(dataset_status),
            versions=versions, verdicts=verdicts, stable_version=rollout.get("stableVersion"),
            canary_version=rollout.get("canaryVersion"), canary_weight=rollout.get("canaryWeight"),
            rollout_phase=rollout.get("phase"), rollout_reason=rollout.get("rolloutReason"),
            retrain_pending=(policy_status.get("pendingRetrain") or {}).get("dataset"),
            retrains_running=tuple(sorted(
                run["metadata"]["name"] for run in training_runs
                if (run["metadata"].get("labels") or {}).get(RETRAINED_BY_LABEL)
                and ((run.get("status") or {}).get("phase") not in ("Succeeded", "Failed")))))


def _rows_of(dataset_status: dict) -> int | None:
    latest = dataset_status.get("latestVersion")
    for version in dataset_status.get("versions") or []:
        if version.get("id") == latest:
            return version.get("rows")
    return None


def _verdict_message(verdict: dict) -> str:
    scores = ""
    if verdict.get("candidateScore") is not None and verdict.get("championScore") is not None:
        scores = (f"{verdict.get('metric', 'score')} {verdict['candidateScore']:.3f} (candidate) vs "
                  f"{verdict['championScore']:.3f} (Production); ")
    return scores + (verdict.get("message") or "")


def changes(before: Snapshot, after: Snapshot, now: str, month: int | None) -> list[Milestone]:
    """The loop's steps seen in `after` and not yet in `before`, in the loop's order."""
    found: list[Milestone] = []

    def add(kind: str, obj: str, reason: str, message: str) -> None:
        found.append(Milestone(now, kind, obj, reason, message, month))

    times = sorted(after.evaluations)
    for moment in after.breached_at:
        earlier = times[times.index(moment) - 1] if times.index(moment) > 0 else None
        # Only the first breached evaluation of a run of them: the ones after it repeat the news.
        if moment not in before.breached_at and not (earlier and after.evaluations[earlier].get("breached")):
            evaluation = after.evaluations[moment]
            add(report.BREACH, "MonitorPolicy", evaluation.get("reason", "Breached"),
                f"window ending {moment}: " + (evaluation.get("message") or ""))
    known_runs = {r[0] for r in before.retrains}
    for run, trigger, message in after.retrains:
        if run not in known_runs:
            add(report.RETRAIN, f"TrainingRun/{run}", trigger or "retrain", message)
    for moment, message in after.nothing_new:
        if (moment, message) not in before.nothing_new:
            add(report.NOTHING_NEW, "MonitorPolicy", "NothingNewToLearn", message)
    if before.dataset_version and after.dataset_version and after.dataset_version != before.dataset_version:
        rows = f" ({after.dataset_rows} rows)" if after.dataset_rows is not None else ""
        add(report.DATASET_VERSION, "Dataset", "NewVersion", f"version {after.dataset_version}{rows}")
    for name, (version, stage) in sorted(after.versions.items(), key=lambda kv: kv[1][0]):
        if name not in before.versions and stage == "Candidate":
            add(report.CANDIDATE, f"ModelVersion/{name}", "Candidate", f"version {version} registered as a Candidate")
    for name, verdict in sorted(after.verdicts.items()):
        if before.verdicts.get(name) != verdict:
            reason = "Approved" if verdict.get("allowed") else verdict.get("reason", "NotApproved")
            add(report.VERDICT, f"ModelVersion/{name}", reason, _verdict_message(verdict))
    if after.canary_version and after.canary_version != before.canary_version:
        add(report.CANARY, "InferenceService", "CanaryStarted",
            f"version {after.canary_version} at {after.canary_weight or 0}% of the traffic")
    elif after.canary_version and after.canary_weight != before.canary_weight and after.canary_weight:
        add(report.CANARY_STEP, "InferenceService", "CanaryStep",
            f"version {after.canary_version} at {after.canary_weight}% of the traffic")
    if before.stable_version and after.stable_version and after.stable_version != before.stable_version:
        current = next((n for n, (v, _) in after.versions.items() if v == after.stable_version), None)
        add(report.PROMOTED, f"ModelVersion/{current or after.stable_version}", "Promoted",
            f"version {after.stable_version} is the stable version (was {before.stable_version})")
    if after.rollout_phase == "RolledBack" and before.rollout_phase != "RolledBack":
        add(report.ROLLED_BACK, "InferenceService", "RolledBack", after.rollout_reason or "")
    return found
