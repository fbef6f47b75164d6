"""`kadence canary`: a canary's quality per version, where the data is (runs in a short Job).

An InferenceService whose canary has a quality gate needs each version's f1 or accuracy over
the labelled requests of the current step. Computing it means listing the prediction log,
loading it, and joining it with the feedback by request id: data work that does not belong in
the operator. The operator starts this Job instead (`handlers.inferenceservice`), once per
analysis slot of the step, and reads the small JSON it writes:

    {"since": ..., "until": ..., "versions": {"2": {"labelled": 140, "value": 0.81}, ...}}

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

EXIT_WRITTEN, EXIT_FAILED, EXIT_BAD_TASK = 0, 1, 2


class CanaryQualityTask(KadenceModel):
    namespace: str
    inference_service: str
    versions: list[str] = Field(min_length=1)
    metric: Literal["f1", "accuracy"]
    since: datetime
    until: datetime
    result_key: str


class VersionQuality(KadenceModel):
    labelled: int = 0
    value: float | None = None


class CanaryQualityResult(KadenceModel):
    since: datetime
    until: datetime
    versions: dict[str, VersionQuality]


def evaluate(store, task: CanaryQualityTask) -> CanaryQualityResult:
    """Each version's labelled requests and metric between since and until."""
    from ..domain.monitoring.logformat import feedback_prefix, predictions_prefix
    from ..domain.monitoring.quality import quality_for
    from .monitor_io import LogWindow, join_feedback, read_feedback, read_prediction_logs

    predictions = read_prediction_logs(store, predictions_prefix(task.namespace, task.inference_service),
                                       LogWindow(end=task.until, duration=task.until - task.since), task.versions)
    feedback = read_feedback(store, feedback_prefix(task.namespace, task.inference_service), task.since, task.until)
    labelled = join_feedback(predictions, feedback)
    versions = {}
    for version in task.versions:
        rows = labelled[labelled["model_version"] == version] if len(labelled) else labelled
        if len(rows) == 0:
            versions[version] = VersionQuality()
            continue
        metrics = quality_for(task.metric, rows["label"].tolist(), rows["prediction"].tolist()).metrics
        versions[version] = VersionQuality(labelled=len(rows), value=metrics.get(task.metric))
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
