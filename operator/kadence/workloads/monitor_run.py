"""What `kadence monitor` does: read the window's prediction logs and feedback, join them by
request id, compute drift per feature and the quality metrics, judge them against the
policy, and write report.json, report.html and result.json under
`monitoring/<namespace>/<policy>/<stamp>/`."""

from __future__ import annotations

import io
import json
import os
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any

from pydantic import ValidationError

from ..api.monitorpolicy import DriftWindowStatus, QualityWindowStatus
from ..domain.monitoring import labelled as labels
from ..domain.monitoring import policy as verdicts
from ..domain.data import pii
from ..domain.data.pii import PERSONAL_DATA, pseudonymize_categories
from ..domain.monitoring.fairness import evaluate_segments
from ..domain.monitoring.drift import DriftConfigError, DriftSettings, ReferenceFormatError, evaluate_drift
from ..domain.monitoring.logformat import LogFormatError, feedback_prefix, predictions_prefix
from ..domain.monitoring.quality import QualityError, quality_for
from ..domain.monitoring.triggers import production_gap
from ..engines import EngineError, resolve_engine, run_with_store
from ..serving.artifact import ArtifactRefused
from ..settings import Settings
from ..storage import ObjectStore, StorageError
from .monitor_io import (
    Labelled,
    LogWindow,
    ReferenceNotFound,
    load_reference,
    previous_results,
    read_labelled,
    read_prediction_logs,
)
from .monitor_estimate import estimate_performance
from .monitor_report import comparison_histogram, render_html
from .monitor_task import (
    ComparisonResult,
    EXIT_ERROR,
    EXIT_EVALUATED,
    FeatureDriftReport,
    FeedbackExportResult,
    MonitorResult,
    MonitorTask,
    Verdict,
    monitoring_prefix,
    stamp,
)


def load_task(path: str | None, env_name: str) -> MonitorTask:
    if path:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    elif os.environ.get(env_name):
        text = os.environ[env_name]
    else:
        raise ValueError(f"no task: pass --task FILE or set {env_name}")
    return MonitorTask.model_validate(json.loads(text))


def _span(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g}{unit}"
    return f"{seconds:.3g}s"


def covers(window: QualityWindowStatus) -> str:
    """What a quality figure covers, in words: 'predictions of 2026-11-01T00:00:00Z to
    2026-11-20T00:00:00Z, label delay p50 3d p95 6d'."""
    return (f"labelled predictions made {window.start} to {window.end}, label delay p50 "
            f"{_span(window.label_delay_p50_seconds)} p95 {_span(window.label_delay_p95_seconds)}")


def _wire(model) -> dict[str, Any]:
    return model.model_dump(by_alias=True, mode="json", exclude_none=True)


def _iso(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def evaluate(task: MonitorTask, store: ObjectStore) -> tuple[MonitorResult, dict[str, Any], str]:
    """Compute everything; returns (result, the full report document, the HTML page).

    Two windows: drift judges the drift window's predictions (`task.window`, labelled or
    not); quality judges the quality window (`task.performance.window`): the newest labelled
    predictions within the retention, labels joined however late they came."""
    window = LogWindow(end=task.time, duration=task.window.duration, last=task.window.last_predictions)
    predictions = predictions_prefix(task.namespace, task.inference_service)
    feedback = feedback_prefix(task.namespace, task.inference_service)
    log = read_prediction_logs(store, predictions, window, task.model_versions)
    samples = len(log)
    window_start = task.time - task.window.duration if task.window.duration else (
        log.meta["time"].min().to_pydatetime() if samples else None)

    result: dict[str, Any] = {
        "outcome": "Evaluated", "time": _iso(task.time), "window_end": _iso(task.time),
        "window_start": _iso(window_start) if window_start is not None else None,
        "samples": samples,
        "model_versions": {str(k): int(v) for k, v in log.meta["model_version"].value_counts().items()},
        "drift_window": DriftWindowStatus(predictions=samples, start=labels.iso(window_start), end=_iso(task.time)),
    }
    labelled = export_plan = export_read = None
    if task.feedback_export is not None:
        export_plan = plan_export(task, store)
        export_read = read_labelled(store, predictions, feedback, task.time, export_plan.after, newest=None,
                                    model_versions=task.model_versions)
    if task.performance is not None:
        spec = task.quality_window
        retention_start = spec.retention_start(task.time)
        if export_read is not None and (export_plan.after is None or export_plan.after <= retention_start):
            read = export_read  # every labelled prediction of the retention is in it already: one read
        else:
            read = read_labelled(store, predictions, feedback, task.time, retention_start,
                                 newest=spec.limit, model_versions=task.model_versions)
        labelled = Labelled(joined=labels.quality_window(read.joined, task.time, spec), inputs=read.inputs)
        delays = labels.delay_percentiles(labels.label_delays_seconds(labelled.joined))
        times = labelled.joined["time"]
        result["labelled_samples"] = len(labelled)
        result["quality_window"] = QualityWindowStatus(
            labelled=len(labelled), limit=spec.limit, max_age_seconds=spec.max_age.total_seconds(),
            retention_start=_iso(retention_start), start=labels.iso(times.min()) if len(times) else None,
            end=labels.iso(times.max()) if len(times) else None,
            label_delay_p50_seconds=delays.p50_seconds, label_delay_p95_seconds=delays.p95_seconds)
    histograms: dict[str, dict[str, Any]] = {}
    drift_verdict = quality_verdict = None

    if task.drift is not None:
        reference = None
        reference_problem = "no drift reference was given"
        if task.reference_uri:
            try:
                reference = load_reference(store, task.reference_uri)
            except (ReferenceNotFound, ReferenceFormatError) as error:
                reference_problem = str(error)
        inputs = log.inputs.drop(columns=[c for c in task.exclude_columns if c in log.inputs.columns])
        # The model's inputs when the task names them: an id column logged beside them (or kept in
        # the reference sample) is not judged, and a named input that was not logged, or that the
        # reference lacks, is reported as such. Otherwise every column but the excluded ones.
        features = task.features
        if features is None and reference is not None:
            features = [c for c in reference.columns if c not in task.exclude_columns]
            features += [c for c in inputs.columns if c not in reference.columns]
        personal: dict[str, str] = {}
        if task.personal_columns:
            reference, personal = personal_reference(reference, task.personal_columns, Settings.from_env().pii_key)
            features = [f for f in features if f not in personal] if features is not None else None
            inputs = inputs.drop(columns=[c for c in personal if c in inputs.columns])
        drift = evaluate_drift(reference, inputs, DriftSettings.from_policy(task.drift), features)
        result.update(
            drift_scores=drift.scores, drifted_features=drift.drifted_features, drifted_share=drift.share_drifted,
            features=[FeatureDriftReport(**{k: getattr(f, k) for k in FeatureDriftReport.model_fields})
                      for f in drift.features] + [FeatureDriftReport(feature=name, status=PERSONAL_DATA, message=why)
                                                  for name, why in personal.items()],
        )
        decision = verdicts.judge_drift(samples=samples, min_samples=task.drift.min_samples,
                                        reference_available=reference is not None,
                                        judged_features=len(drift.judged), drifted_features=drift.drifted_features,
                                        drift_share=task.drift.drift_share)
        if decision.reason == verdicts.MISSING_REFERENCE:
            decision = verdicts.Decision(decision.reason, f"no drift reference: {reference_problem}", False)
        if decision.judged:
            first = labels.iso(log.meta["time"].min())
            decision = verdicts.Decision(decision.reason, f"{decision.message} (drift window: {samples} predictions "
                                         f"made {first} to {labels.iso(log.meta['time'].max())})", decision.breached)
        drift_verdict = decision
        if reference is not None:
            for f in drift.features:
                column = reference.columns.get(f.feature)
                if column is not None and f.feature in inputs.columns:
                    histogram = comparison_histogram(column, inputs[f.feature])
                    if histogram is not None:
                        histograms[f.feature] = histogram

    if task.performance is not None:
        metric = task.performance.metric
        joined = labelled.joined
        probabilities = joined["probabilities"].tolist()
        if any(p is None for p in probabilities):
            probabilities = None
        quality = quality_for(metric, joined["label"].tolist(), joined["prediction"].tolist(),
                              probabilities, task.classes)
        result.update(metrics=quality.metrics, unavailable_metrics=quality.unavailable)
        value = quality.metrics.get(metric)
        quality_verdict = verdicts.judge_quality(metric=metric, threshold=task.performance.threshold, value=value,
                                                 labelled=len(joined), min_labelled=task.performance.min_labelled,
                                                 unavailable_because=quality.unavailable.get(metric))
        if not len(joined):
            quality_verdict = verdicts.Decision(
                quality_verdict.reason, f"no labelled predictions made since {_iso(spec.retention_start(task.time))} "
                f"(the quality window's maxAge)", quality_verdict.breached)
        else:
            quality_verdict = verdicts.Decision(quality_verdict.reason,
                                                f"{quality_verdict.message} ({covers(result['quality_window'])})",
                                                quality_verdict.breached)
        if task.segments is not None and len(joined):
            segments = segments_on(task, joined, labelled.inputs, joined["prediction"].tolist(), probabilities)
            result["segments"] = segments
            if quality_verdict.judged and not quality_verdict.breached and not segments["passed"]:
                quality_verdict = verdicts.Decision(segments["reason"], f"{segments['message']} "
                                                    f"({covers(result['quality_window'])})", True)
        if value is not None and task.offline_metric is not None and quality_verdict.judged:
            result["production_gap"] = production_gap(metric, task.offline_metric, value)
        if task.compare is None:
            quality_verdict = _with_estimate(task, store, log, labelled, value, quality_verdict, result)

    if task.compare is not None:
        result["comparison"] = compare_models(task, store, labelled)
    if task.feedback_export is not None:
        result["feedback_export"] = export_feedback(task, store, export_plan, export_read)

    overall = verdicts.judge_evaluation(drift_verdict, quality_verdict)
    result.update(
        drift=Verdict(**vars(drift_verdict)) if drift_verdict else None,
        quality=Verdict(**vars(quality_verdict)) if quality_verdict else None,
        breached=overall.breached, reason=overall.reason, message=overall.message,
        report_uri=store.uri(f"{task.prefix}report.html"), result_uri=store.uri(task.resolved_result_key()),
    )
    monitor_result = MonitorResult(**result)
    wire = _wire(monitor_result)
    history = previous_results(store, monitoring_prefix(task.namespace, task.policy), task.resolved_result_key(),
                               task.history)
    report = {"task": _wire(task), "result": wire, "histograms": histograms,
              "history": [{"time": h.get("time"), "metrics": h.get("metrics"), "reason": h.get("reason"),
                           "breached": h.get("breached"), "estimate": h.get("estimate")} for h in history]}
    page = render_html(
        title=f"Monitor {task.namespace}/{task.policy} — {task.inference_service}", result=wire,
        histograms=histograms, metric=task.performance.metric if task.performance else None,
        threshold=task.performance.threshold if task.performance else None, history=history)
    return monitor_result, report, page


def _with_estimate(task: MonitorTask, store: ObjectStore, log, labelled: Labelled, realized: float | None,
                   quality: verdicts.Decision, result: dict[str, Any]) -> verdicts.Decision:
    """The estimate without labels beside the realized metric (and concept, label and prediction
    drift) into `result`; the quality verdict as spec.performance.judgeOn says."""
    estimation = estimate_performance(task, store, log, labelled, realized)
    result.update(estimate=estimation.estimate, concept_drift=estimation.concept_drift,
                  label_drift=estimation.label_drift, prediction_drift=estimation.prediction_drift)
    verdict = verdicts.judge_performance(task.performance.judge_on, quality, estimation.verdict)
    if estimation.concept_drift is not None and estimation.concept_drift.detected:
        verdict = verdicts.Decision(verdict.reason, f"{verdict.message}; {estimation.concept_drift.message}",
                                    verdict.breached)
    return verdict


def personal_reference(reference, personal: list[str], key: str | None):
    """(the reference with each personal category hashed as the logs hold it, {column: why it is
    not judged}): personal numeric columns, and every personal column without a key."""
    from dataclasses import replace

    from ..domain.monitoring.drift import CategoricalReference

    skipped: dict[str, str] = {}
    if reference is None:
        return None, skipped
    columns = dict(reference.columns)
    for name in personal:
        column = columns.get(name)
        if column is None:
            continue
        if key and isinstance(column, CategoricalReference):
            columns[name] = pseudonymize_categories(column, key.strip().encode())
        else:
            skipped[name] = pii.numeric_skip_message(name) if key else pii.missing_key_message(name)
            del columns[name]
    return (replace(reference, columns=columns) if columns else None), skipped


def segments_on(task: MonitorTask, joined, inputs, predictions: list, probabilities: list | None) -> dict[str, Any]:
    """spec.segments on labelled rows (`joined`: request_id, label; `inputs`: the logged inputs by
    request id): the wire form of SegmentResult."""
    policy = task.segments
    frame = joined[["request_id"]].merge(inputs, on="request_id", how="left") if "request_id" in inputs.columns \
        else inputs
    columns = {c: (frame[c].tolist() if c in frame.columns else None) for c in policy.all_columns}
    _, _, wire = evaluate_segments(
        task.performance.metric, joined["label"].tolist(), predictions, columns=columns,
        sensitive=policy.sensitive_attribute, min_segment_metric=policy.min_segment_metric,
        max_disparity=policy.max_disparity, min_rows=policy.min_rows, probabilities=probabilities,
        classes=task.classes)
    return wire


def run_model(pipeline, inputs, labels: list, metric: str) -> tuple[float | None, list, list | None]:
    """(the policy metric, predictions, probabilities) of a pipeline re-run on the labelled inputs."""
    from ..serving.predictor import final_estimator

    names = getattr(pipeline, "feature_names_in_", None)
    frame = inputs[list(names)] if names is not None else inputs
    predictions = pipeline.predict(frame).tolist()
    classes = getattr(final_estimator(pipeline), "classes_", None)
    probabilities = pipeline.predict_proba(frame).tolist() if hasattr(pipeline, "predict_proba") else None
    quality = quality_for(metric, labels, predictions, probabilities,
                          classes.tolist() if classes is not None else None)
    return quality.metrics.get(metric), predictions, probabilities


def unseen_rows(task: MonitorTask, labelled: Labelled) -> tuple[Any, Any]:
    """The quality window's labelled predictions the challenger did not train on (made after
    `compare.unseenAfter`), and their logged inputs in the same order. Being the newest of
    the window, they are also the newest `labelledPredictions` unseen ones in the retention."""
    joined = labelled.joined
    after = task.compare.unseen_after
    if after is not None:
        import pandas as pd

        joined = joined[joined["time"] > pd.Timestamp(after)].reset_index(drop=True)
    inputs = joined[["request_id"]].merge(labelled.inputs, on="request_id", how="left").drop(columns=["request_id"])
    return joined, inputs


def compare_models(task: MonitorTask, store: ObjectStore, labelled: Labelled) -> ComparisonResult:
    """Champion/challenger on the same labelled rows: the quality window's, less those the
    challenger's training saw."""
    from ..serving.artifact import load_verified_pipeline

    compare, metric = task.compare, task.performance.metric
    joined, inputs = unseen_rows(task, labelled)
    labels_ = joined["label"].tolist()
    scores: dict[str, float | None] = {"champion": None, "challenger": None}
    segments = None
    if len(labels_):
        for role in ("champion", "challenger"):
            ref = getattr(compare, role)
            if ref is not None:
                scores[role], predictions, probabilities = run_model(
                    load_verified_pipeline(ref.uri, ref.sha256, store), inputs, labels_, metric)
                if role == "challenger" and task.segments is not None:
                    segments = segments_on(task, joined, inputs, predictions, probabilities)
    gate = verdicts.challenger_gate(metric=metric, champion=scores["champion"], challenger=scores["challenger"],
                                    labelled=len(labels_), min_labelled=task.performance.min_labelled,
                                    margin=compare.margin)
    if segments is not None and gate.allowed and not segments["passed"]:
        gate = verdicts.Gate(segments["reason"], f"the candidate fails spec.segments: {segments['message']}", False)
    if not len(labels_):
        unseen = f" made after {_iso(compare.unseen_after)} (what the challenger trained on)" if compare.unseen_after else ""
        gate = verdicts.Gate(verdicts.TOO_FEW_LABELS_TO_COMPARE,
                             f"no labelled predictions{unseen} in the quality window yet", False)
    elif compare.held_out:
        gate = verdicts.Gate(gate.reason, f"{gate.message} (the retrain held the newest {compare.held_out} labelled "
                                          "predictions out of its training data for this comparison)", gate.allowed)
    times = joined["time"]
    return ComparisonResult(metric=metric, labelled=len(labels_),
                            champion_version=compare.champion.version if compare.champion else None,
                            challenger_version=compare.challenger.version, champion=scores["champion"],
                            challenger=scores["challenger"],
                            unseen_after=_iso(compare.unseen_after) if compare.unseen_after else None,
                            held_out=compare.held_out,
                            start=labels.iso(times.min()) if len(times) else None,
                            end=labels.iso(times.max()) if len(times) else None,
                            reason=gate.reason, message=gate.message, allowed=gate.allowed, segments=segments)


DEFAULT_EXPORT_HORIZON = timedelta(days=30)


def _checkpoint_pointer(task: MonitorTask, by_name: bool = False) -> str:
    """Where the pointer to the latest checkpoint lies: under the policy's uid, so that a policy
    re-created under the same name starts afresh (under its name when the task names no uid, and
    before uids keyed them)."""
    export = task.feedback_export
    since = stamp(export.since) if export.since else "all"
    incarnation = f"{export.policy_uid}/" if export.policy_uid and not by_name else ""
    return f"{monitoring_prefix(task.namespace, task.policy)}feedback/{incarnation}checkpoint-{since}.json"


def _read_pointer(task: MonitorTask, store: ObjectStore) -> dict | None:
    pointer = _pointer_at(_checkpoint_pointer(task), store)
    export = task.feedback_export
    if pointer is None and export.policy_uid and export.policy_created:
        # Kept under the name before uids keyed it: this policy's own only when written after its creation.
        legacy = _pointer_at(_checkpoint_pointer(task, by_name=True), store)
        if legacy is not None and _parse_time(legacy["time"]) >= export.policy_created:
            return legacy
    return pointer


def _pointer_at(key: str, store: ObjectStore) -> dict | None:
    try:
        pointer = json.loads(store.get_bytes(key))
        if isinstance(pointer, dict) and isinstance(pointer.get("time"), str) and _parse_time(pointer["time"]).tzinfo:
            return pointer
    except (FileNotFoundError, ValueError, StorageError):
        pass
    return None


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _previous_checkpoint(pointer: dict | None, task: MonitorTask, store: ObjectStore, horizon: datetime):
    """The checkpoint of the latest earlier export with the same `since`, when it was made
    within the retention (so that it and what is read now leave no gap); else None."""
    import pandas as pd

    if pointer is None:
        return None
    try:
        time = _parse_time(pointer["time"])
        if not horizon <= time <= task.time:
            return None
        return pd.read_parquet(io.BytesIO(store.get_bytes(store.key_of(pointer["uri"]))))
    except (FileNotFoundError, KeyError, ValueError, TypeError, StorageError):
        return None  # unreadable: read everything since `since` once


@dataclass
class ExportPlan:
    """Where an export starts: the previous checkpoint (or none), the retention's start, and
    the time after which predictions are read from the logs (None: every stored one)."""

    pointer: dict | None
    previous: Any
    horizon: datetime
    after: datetime | None


def plan_export(task: MonitorTask, store: ObjectStore) -> ExportPlan:
    export = task.feedback_export
    horizon = task.time - (task.quality_window.max_age if task.quality_window else DEFAULT_EXPORT_HORIZON)
    pointer = _read_pointer(task, store)
    previous = None
    if export.since is None or export.since < horizon:
        previous = _previous_checkpoint(pointer, task, store, horizon)
    # with a checkpoint (only when since is before the retention) only the retention is read
    return ExportPlan(pointer, previous, horizon, horizon if previous is not None else export.since)


def export_feedback(task: MonitorTask, store: ObjectStore, plan: ExportPlan, read: Labelled) -> FeedbackExportResult:
    """Every labelled prediction made after `feedbackExport.since`, as one Parquet file, from
    `read` (the labelled predictions made after `plan.after`).

    Cost: predictions older than the retention (the quality window's maxAge, 30 days without
    performance) are taken from the previous export's checkpoint when there is one made within
    the retention; only the retention's logs are read (once for the export and the quality
    window). Labels arriving for predictions older than the retention are not joined then (as
    for the quality window). An export equal to the previous one (same digest) is not written
    again: its object is named instead."""
    export = task.feedback_export
    checkpoint = labels.to_checkpoint(read.joined, read.inputs)
    if plan.previous is not None:
        checkpoint = labels.fold_checkpoint(plan.previous, checkpoint, plan.horizon)
    joined, inputs = labels.from_checkpoint(checkpoint)
    held = labels.held_out_count(joined["request_id"].nunique(), export.hold_out, export.hold_out_max_fraction)
    joined, _ = labels.hold_out_newest(joined, held)
    frame = labels.export_frame(inputs, joined, export.target, export.time_column)
    times = joined["time"]
    uri = sha = None
    if len(frame):
        data = labels.parquet_bytes(frame)
        sha = labels.digest(data)
        last = (plan.pointer or {}).get("export") or {}
        if export.key is None and last.get("sha256") == sha and last.get("uri") and store.exists(
                store.key_of(last["uri"])):
            uri = last["uri"]
        else:
            uri = store.put_bytes(export.key or f"{task.prefix}feedback.parquet", data,
                                  "application/vnd.apache.parquet")
        _write_checkpoint(task, store, plan.pointer, checkpoint, {"uri": uri, "sha256": sha})
    return FeedbackExportResult(
        uri=uri, rows=len(frame), target=export.target, time_column=export.time_column,
        since=_iso(export.since) if export.since else None,
        start=labels.iso(times.min()) if len(times) else None, end=labels.iso(times.max()) if len(times) else None,
        labels_until=_iso(task.time), sha256=sha, held_out=held,
        carried_until=_iso(plan.horizon) if plan.previous is not None else None)


def _write_checkpoint(task: MonitorTask, store: ObjectStore, pointer: dict | None, checkpoint,
                      exported: dict) -> None:
    """The export's rows with request ids, times and inputs, for the next export to start from
    (written only when they changed); the pointer moves only forward in time (a re-run of an
    older slot leaves it)."""
    if pointer is not None and pointer["time"] > _iso(task.time):
        return
    try:
        data = labels.parquet_bytes(checkpoint)
    except (ValueError, TypeError) as error:  # e.g. labels of mixed types: the next export reads everything
        print(f"feedback checkpoint not written: {error}", file=sys.stderr)
        return
    digest = labels.digest(data)
    uri = (pointer or {}).get("uri")
    if (pointer or {}).get("sha256") != digest or not uri:
        uri = store.put_bytes(f"{task.prefix}feedback-checkpoint.parquet", data, "application/vnd.apache.parquet")
    store.put_bytes(_checkpoint_pointer(task), json.dumps(
        {"uri": uri, "sha256": digest, "time": _iso(task.time), "export": exported}).encode(), "application/json")


def emit(result: MonitorResult, store: ObjectStore | None, key: str | None, out: IO[str]) -> None:
    line = json.dumps(_wire(result), sort_keys=True)
    if store is not None and key:
        store.put_bytes(key, line.encode(), "application/json")
    out.write(line + "\n")
    out.flush()


def _error(task: MonitorTask | None, message: str) -> MonitorResult:
    time = _iso(task.time) if task is not None else ""
    return MonitorResult(outcome="Error", time=time, reason="MonitorError", message=message)


def run_from_args(args: Any, env_name: str, out: IO[str]) -> int:
    try:
        task = load_task(args.task, env_name)
    except (OSError, ValueError, ValidationError) as error:
        emit(_error(None, f"bad task: {error}"), None, None, out)
        return EXIT_ERROR
    try:
        store = ObjectStore.from_env()
    except StorageError as error:
        emit(_error(task, str(error)), None, None, out)
        return EXIT_ERROR
    settings = Settings.from_env()
    try:
        if resolve_engine(task.engine, settings) == "ray":  # the same evaluate, as a Ray task
            result, report, page = run_with_store(evaluate, task, settings)
        else:
            result, report, page = evaluate(task, store)
    except (EngineError, LogFormatError, DriftConfigError, QualityError, ValueError, FileNotFoundError,
            ArtifactRefused) as error:
        emit(_error(task, f"{type(error).__name__}: {error}"), store, task.resolved_result_key(), out)
        return EXIT_ERROR
    store.put_bytes(f"{task.prefix}report.json", json.dumps(report, sort_keys=True).encode(), "application/json")
    store.put_bytes(f"{task.prefix}report.html", page.encode(), "text/html; charset=utf-8")
    emit(result, store, task.resolved_result_key(), out)
    return EXIT_EVALUATED
