"""`kadence canary`: a canary's quality per version, where the data is (runs in a short Job).

An InferenceService whose canary has a quality gate needs each version's f1 or accuracy over
the labelled requests of the current step. Computing it means listing the prediction log,
loading it, and joining it with the feedback by request id: data work that does not belong in
the operator. The operator starts this Job instead (`handlers.inferenceservice`), once per
analysis slot of the step, and reads the small JSON it writes:

    {"since": ..., "until": ..., "versions": {"2": {"labelled": 140, "value": 0.81, "segments": {...}}, ...}}

(`segments`, a SegmentResult, when the gate names spec.canary.analysis.quality.segments.)

at `task.resultKey` (under monitoring/<namespace>/, stamped with the owner like every result).
Exit codes: 0 written; 1 the store failed (the Job retries); 2 bad task.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Literal

from pydantic import Field

from ..api.common import KadenceModel
from ..api.segments import SegmentPolicy, SegmentResult

EXIT_WRITTEN, EXIT_FAILED, EXIT_BAD_TASK = 0, 1, 2


class CanaryQualityTask(KadenceModel):
    namespace: str
    inference_service: str
    versions: list[str] = Field(min_length=1)
    metric: Literal["f1", "accuracy"]
    since: datetime
    until: datetime
    result_key: str
    segments: SegmentPolicy | None = None


class VersionQuality(KadenceModel):
    labelled: int = 0
    value: float | None = None
    segments: SegmentResult | None = None

    @property
    def segments_failure(self) -> str | None:
        """The failed segment gate in words, None when it passed or was not asked for."""
        if self.segments is None or self.segments.passed:
            return None
        return f"{self.segments.reason}: {self.segments.message}"


class CanaryQualityResult(KadenceModel):
    since: datetime
    until: datetime
    versions: dict[str, VersionQuality]


def evaluate(store, task: CanaryQualityTask) -> CanaryQualityResult:
    """Each version's labelled requests and metric between since and until."""
    from ..domain.monitoring.fairness import evaluate_segments
    from ..domain.monitoring.logformat import feedback_prefix, predictions_prefix
    from ..domain.monitoring.quality import quality_for
    from .monitor_io import LogWindow, join_feedback, read_feedback, read_prediction_logs

    predictions = read_prediction_logs(store, predictions_prefix(task.namespace, task.inference_service),
                                       LogWindow(end=task.until, duration=task.until - task.since), task.versions)
    feedback = read_feedback(store, feedback_prefix(task.namespace, task.inference_service), task.since, task.until)
    labelled = join_feedback(predictions, feedback)
    logged_inputs = (predictions.inputs.assign(request_id=predictions.meta["request_id"].values)
                     if task.segments is not None else None)
    versions = {}
    for version in task.versions:
        rows = labelled[labelled["model_version"] == version] if len(labelled) else labelled
        if len(rows) == 0:
            versions[version] = VersionQuality()
            continue
        metrics = quality_for(task.metric, rows["label"].tolist(), rows["prediction"].tolist()).metrics
        segments = None
        if task.segments is not None:
            policy = task.segments
            inputs = rows[["request_id"]].merge(logged_inputs, on="request_id", how="left")
            _, _, wire = evaluate_segments(
                task.metric, rows["label"].tolist(), rows["prediction"].tolist(),
                columns={c: inputs[c].tolist() if c in inputs.columns else None for c in policy.all_columns},
                sensitive=policy.sensitive_attribute, min_segment_metric=policy.min_segment_metric,
                max_disparity=policy.max_disparity, min_rows=policy.min_rows)
            segments = SegmentResult.model_validate(wire)
        versions[version] = VersionQuality(labelled=len(rows), value=metrics.get(task.metric), segments=segments)
    return CanaryQualityResult(since=task.since, until=task.until, versions=versions)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", metavar="FILE", help="The task as a JSON file (default: $KADENCE_TASK).")


def run(args: argparse.Namespace, env: dict[str, str] | None = None) -> int:
    from ..settings import Settings
    from ..storage import ObjectStore
    from .task_file import load_task

    settings = Settings.from_env(env)
    try:
        task = load_task(args.task, settings, CanaryQualityTask)
    except (OSError, ValueError) as error:
        print(json.dumps({"written": False, "message": f"bad task: {error}"}))
        return EXIT_BAD_TASK
    try:
        store = ObjectStore.from_env()
        result = evaluate(store, task)
        store.put_bytes(task.result_key, result.model_dump_json(by_alias=True).encode(), "application/json")
    except Exception as error:  # the store or the log: the Job's backoff retries
        print(json.dumps({"written": False, "message": f"{type(error).__name__}: {error}"}))
        return EXIT_FAILED
    print(result.model_dump_json(by_alias=True))
    sys.stdout.flush()
    return EXIT_WRITTEN
