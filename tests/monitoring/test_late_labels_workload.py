"""`kadence monitor` with labels that come days or weeks after their predictions, against the
S3 fixture: the quality window, the label delay, the retention's bound on what is read, the
feedback export and champion/challenger on rows the challenger did not see."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from kadence.domain.monitoring.logformat import (
    FeedbackRecord,
    PredictionRecord,
    encode_batch,
    feedback_batch_key,
    key_date,
    prediction_batch_key,
)
from kadence.workloads.monitor_run import evaluate
from kadence.workloads.monitor_task import MonitorTask

from .test_monitor_workload import _publish_model, run_monitor, write_reference

T = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)


def predict_days(store, ns: str, days: list[int], per_day: int = 50, accuracy: float = 0.9, shift: float = 0.0,
                 label_after: timedelta | None = None, seed: int = 0, version: str = "1") -> list[tuple[str, int, datetime]]:
    """`per_day` predictions on each of the days `T - d` (d in `days`), one batch a day; when
    `label_after` is set, every prediction's label is given that long after it (only labels
    given up to T + 60 days are written). Returns (request id, truth, prediction time)."""
    rng = np.random.default_rng(seed)
    made = []
    for d in days:
        start = T - d * DAY
        x = rng.normal(shift, 1, per_day)
        truth = (x + rng.normal(0, 0.5, per_day) > shift).astype(int)
        predicted = np.where(rng.random(per_day) < accuracy, truth, 1 - truth)
        records = [PredictionRecord(request_id=f"{ns}-{version}-{d}-{i}", time=start + timedelta(minutes=i),
                                    model_version=version, inputs={"x": float(x[i]), "plan": "basic"},
                                    outputs={"prediction": int(predicted[i])}) for i in range(per_day)]
        store.put_bytes(prediction_batch_key(ns, "churn", version, records[0].time), encode_batch(records))
        made += [(r.request_id, int(t), r.time) for r, t in zip(records, truth)]
    if label_after is not None:
        give_labels(store, ns, [(rid, truth, when + label_after) for rid, truth, when in made])
    return made


def give_labels(store, ns: str, labels: list[tuple[str, object, datetime]]) -> None:
    """One feedback batch per label day, dated by the day the labels were given (as the server does)."""
    by_day: dict = {}
    for rid, label, when in labels:
        by_day.setdefault(when.date(), []).append(FeedbackRecord(request_id=rid, time=when, label=label))
    for records in by_day.values():
        records.sort(key=lambda r: r.time)
        store.put_bytes(feedback_batch_key(ns, "churn", records[0].time), encode_batch(records))


def body(ns: str, **overrides) -> dict:
    task = {"namespace": ns, "policy": "late", "inferenceService": "churn", "time": T.isoformat(),
            "window": {"durationSeconds": 3600},
            "performance": {"metric": "accuracy", "threshold": 0.7, "minLabelled": 50,
                            "window": {"labelledPredictions": 2000, "maxAge": "30d"}}}
    return task | overrides


def test_labels_a_week_late_are_judged_and_the_delay_is_reported(store, s3_env, tmp_path):
    # 20 days of traffic; every label comes 7 days after its prediction: the last week has none yet
    predict_days(store, "weekly", list(range(1, 21)), label_after=7 * DAY)
    code, result = run_monitor(tmp_path, body("weekly"))
    assert code == 0, result["message"]
    quality = result["qualityWindow"]
    # days 20 .. 8, and day 7's first prediction, labelled exactly at the evaluation time
    assert result["labelledSamples"] == quality["labelled"] == 13 * 50 + 1
    assert quality["end"] == "2026-11-16T12:00:00Z" and quality["start"] == "2026-11-03T12:00:00Z"
    assert quality["labelDelayP50Seconds"] == quality["labelDelayP95Seconds"] == 7 * 86400
    assert result["samples"] == 0 and result["driftWindow"]["predictions"] == 0  # nothing in the last hour
    assert result["reason"] == "Healthy"
    assert "labelled predictions made 2026-11-03T12:00:00Z to 2026-11-16T12:00:00Z" in result["message"]
    assert "label delay p50 7d p95 7d" in result["message"]


def test_the_drift_verdict_says_which_predictions_it_judged(store, s3_env, tmp_path):
    predict_days(store, "driftsays", [1, 2], per_day=60)
    reference = write_reference(store, "datasets/driftsays/churn/v1/sample.parquet")
    task = body("driftsays", window={"lastPredictions": 100}, drift={"method": "psi", "minSamples": 50},
                performance=None, referenceUri=reference, features=["x", "plan"])
    code, result = run_monitor(tmp_path, task)
    assert code == 0, result["message"]
    assert result["driftWindow"] == {"predictions": 100, "start": "2026-11-21T12:20:00Z",
                                     "end": "2026-11-23T12:00:00Z"}
    assert result["drift"]["message"].endswith(
        "(drift window: 100 predictions made 2026-11-21T12:20:00Z to 2026-11-22T12:59:00Z)")


def test_the_window_holds_the_newest_labelled_predictions_up_to_its_count(store, s3_env, tmp_path):
    predict_days(store, "counted", list(range(1, 11)), label_after=DAY)
    limited = body("counted", performance={"metric": "accuracy", "threshold": 0.7,
                                           "window": {"labelledPredictions": 120, "maxAge": "30d"}})
    code, result = run_monitor(tmp_path, limited)
    assert code == 0
    quality = result["qualityWindow"]
    assert quality["labelled"] == 120 and quality["limit"] == 120
    # the newest labelled ones: day 1's first (labelled at T), days 2 and 3, the last 19 of day 4
    assert quality["end"] == "2026-11-22T12:00:00Z" and quality["start"] == "2026-11-19T12:31:00Z"


def test_no_labelled_predictions_is_said_only_when_none_lies_within_the_retention(store, s3_env, tmp_path):
    predict_days(store, "stale", [40], label_after=DAY)  # labelled, but 40 days ago
    predict_days(store, "stale", [1], seed=1)  # recent, no label yet
    code, result = run_monitor(tmp_path, body("stale"))
    assert code == 0
    assert result["reason"] == "NoFeedback" and result["labelledSamples"] == 0
    # then why there is no estimate either (this model was stored without an estimation reference)
    assert result["quality"]["message"].startswith("no labelled predictions made since 2026-10-24T12:00:00Z "
                                                   "(the quality window's maxAge); no estimate of accuracy: ")
    wider = body("stale", performance={"metric": "accuracy", "threshold": 0.7,
                                       "window": {"labelledPredictions": 2000, "maxAge": "45d"}})
    code, result = run_monitor(tmp_path, wider)
    assert result["labelledSamples"] == 50 and result["reason"] != "NoFeedback"


def test_a_relabelled_prediction_is_judged_once_with_its_latest_label(store, s3_env, tmp_path):
    made = predict_days(store, "relabel", [2], accuracy=1.0)
    # first every label is wrong, then corrected a day later: accuracy 1 over 50, not 0.5 over 100
    give_labels(store, "relabel", [(rid, 1 - truth, when + timedelta(hours=1)) for rid, truth, when in made])
    give_labels(store, "relabel", [(rid, truth, when + DAY) for rid, truth, when in made])
    code, result = run_monitor(tmp_path, body("relabel"))
    assert result["labelledSamples"] == 50 and result["metrics"]["accuracy"] == 1.0
    assert result["qualityWindow"]["labelDelayP50Seconds"] == 86400


class Recording:
    """An object store that records what is listed and read."""

    def __init__(self, store):
        self.store, self.listed, self.read = store, [], []

    def list_dirs(self, prefix):
        self.listed.append(prefix)
        return self.store.list_dirs(prefix)

    def list_keys(self, prefix):
        self.listed.append(prefix)
        return self.store.list_keys(prefix)

    def get_bytes(self, key):
        self.read.append(key)
        return self.store.get_bytes(key)

    def __getattr__(self, name):
        return getattr(self.store, name)


def test_an_evaluation_reads_and_lists_no_day_older_than_its_retention(store, s3_env, tmp_path):
    predict_days(store, "year-of-logs", list(range(1, 400, 7)), per_day=5, label_after=DAY)  # over a year of history
    task = MonitorTask.model_validate(body("year-of-logs", performance={
        "metric": "accuracy", "threshold": 0.7, "window": {"labelledPredictions": 2000, "maxAge": "10d"}}))
    recording = Recording(store)
    result, _, _ = evaluate(task, recording)
    assert result.labelled_samples == 6  # day 8, and day 1's first prediction (labelled at T)
    oldest_allowed = (T - 11 * DAY).date()
    assert recording.read and all(key_date(k) >= oldest_allowed for k in recording.read)
    listed_days = [p for p in recording.listed if key_date(p + "x")]
    assert listed_days and all(key_date(p + "x") >= oldest_allowed for p in listed_days)
    assert not any(p.endswith("/2025/") for p in recording.listed)  # last year's months are never listed


def test_the_feedback_export_holds_every_labelled_prediction_since_once_with_its_latest_label(store, s3_env,
                                                                                              tmp_path):
    made = predict_days(store, "export", [20, 12, 5, 1], per_day=10, label_after=DAY)
    relabelled = [rid for rid, _, when in made if when > T - 6 * DAY][:3]
    give_labels(store, "export", [(rid, 7, T - timedelta(hours=1)) for rid in relabelled])
    since = T - 15 * DAY
    task = body("export", feedbackExport={"target": "churned", "since": since.isoformat(),
                                          "timeColumn": "event_time"})
    code, result = run_monitor(tmp_path, task)
    assert code == 0, result["message"]
    export = result["feedbackExport"]
    # days 12 and 5, day 1's first prediction (labelled at T), never day 20 (before since)
    assert export["rows"] == 21 and export["since"] == "2026-11-08T12:00:00Z"
    assert export["start"] == "2026-11-11T12:00:00Z" and export["end"] == "2026-11-22T12:00:00Z"
    assert export["labelsUntil"] == "2026-11-23T12:00:00Z"
    data = store.get_bytes(store.key_of(export["uri"]))
    import hashlib

    assert hashlib.sha256(data).hexdigest() == export["sha256"]
    frame = pd.read_parquet(io.BytesIO(data))
    assert frame.columns.tolist() == ["x", "plan", "churned", "event_time"]
    assert (frame["churned"] == 7).sum() == 3  # the relabels win
    assert frame["event_time"].is_monotonic_increasing
    # the same evaluation again exports the same bytes
    again = task | {"feedbackExport": task["feedbackExport"] | {"key": "elsewhere/feedback.parquet"}}
    code, repeat = run_monitor(tmp_path, again)
    assert repeat["feedbackExport"]["sha256"] == export["sha256"]
    nothing = body("export", feedbackExport={"target": "churned", "since": T.isoformat()})
    code, empty = run_monitor(tmp_path, nothing)
    assert empty["feedbackExport"]["rows"] == 0 and "uri" not in empty["feedbackExport"]


def test_the_export_holds_the_newest_labelled_predictions_out_for_the_comparison(store, s3_env, tmp_path):
    predict_days(store, "holdout", [6, 4, 2], per_day=10, label_after=timedelta(hours=1))
    export = {"target": "churned", "timeColumn": "event_time", "holdOut": 8}
    code, result = run_monitor(tmp_path, body("holdout", feedbackExport=export))
    assert code == 0, result["message"]
    held = result["feedbackExport"]
    # 30 labelled predictions; day 2's newest 8 (minutes 2..9) are kept out
    assert (held["rows"], held["heldOut"]) == (22, 8) and held["end"] == "2026-11-21T12:01:00Z"
    frame = pd.read_parquet(io.BytesIO(store.get_bytes(store.key_of(held["uri"]))))
    assert len(frame) == 22 and frame["event_time"].max() == pd.Timestamp("2026-11-21T12:01:00Z")
    page = store.get_bytes(store.key_of(result["reportUri"])).decode()
    assert "the newest 8 held out for champion/challenger" in page
    # never more than holdOutMaxFraction of them: a small feedback still trains
    code, capped = run_monitor(tmp_path, body("holdout", feedbackExport=export | {"holdOutMaxFraction": 0.1}))
    assert (capped["feedbackExport"]["rows"], capped["feedbackExport"]["heldOut"]) == (27, 3)
    # nothing new arrived: the same export, the same digest (nothing new to learn)
    code, again = run_monitor(tmp_path, body("holdout", feedbackExport=export))
    assert again["feedbackExport"]["sha256"] == held["sha256"]
    # 10 more labelled predictions: the 8 held out before are trained on, the newest 8 held out
    predict_days(store, "holdout", [1], per_day=10, label_after=timedelta(hours=1), seed=3)
    code, later = run_monitor(tmp_path, body("holdout", feedbackExport=export))
    assert (later["feedbackExport"]["rows"], later["feedbackExport"]["heldOut"]) == (32, 8)
    assert later["feedbackExport"]["end"] == "2026-11-22T12:01:00Z"


def test_champion_and_challenger_are_scored_only_on_predictions_the_challenger_did_not_see(store, s3_env, tmp_path):
    champion = _publish_model(store, "models/unseen/churn/1/model.skops", shift=0.0, seed=11)
    challenger = _publish_model(store, "models/unseen/churn/2/model.skops", shift=1.0, seed=12)
    # the model inputs are x and y; log both
    rng = np.random.default_rng(5)
    records, labels = [], []
    for d in range(1, 9):
        x = rng.normal(1.0, 1, 40)
        for i in range(40):
            when = T - d * DAY + timedelta(minutes=i)
            records.append(PredictionRecord(request_id=f"u-{d}-{i}", time=when, model_version="1",
                                            inputs={"x": float(x[i]), "y": 5.0}, outputs={"prediction": 1}))
            labels.append((f"u-{d}-{i}", int(x[i] + rng.normal(0, 0.5) > 1.0), when + timedelta(hours=2)))
    store.put_bytes(prediction_batch_key("unseen", "churn", "1", records[0].time), encode_batch(records))
    give_labels(store, "unseen", labels)
    trained_until = T - 3 * DAY
    code, result = run_monitor(tmp_path, body("unseen", compare={
        "champion": champion, "challenger": challenger, "unseenAfter": trained_until.isoformat(), "heldOut": 40}))
    assert code == 0, result["message"]
    comparison = result["comparison"]
    assert comparison["heldOut"] == 40
    assert comparison["message"].endswith("(the retrain held the newest 40 labelled predictions out of its training "
                                          "data for this comparison)")
    # days 3 .. 1 only, less day 3's first prediction, made at unseenAfter itself
    assert result["labelledSamples"] == 320 and comparison["labelled"] == 119
    assert comparison["unseenAfter"] == "2026-11-20T12:00:00Z"
    assert comparison["start"] == "2026-11-20T12:01:00Z" and comparison["end"] == "2026-11-22T12:39:00Z"
    assert comparison["reason"] == "ChallengerBeatsChampion"
    page = store.get_bytes(store.key_of(result["reportUri"])).decode()
    assert ("Scored on 119 labelled predictions of 2026-11-20T12:01:00Z to 2026-11-22T12:39:00Z, made after "
            "2026-11-20T12:00:00Z (what the challenger trained on); the retrain held the newest 40 labelled "
            "predictions out for it") in page
    code, result = run_monitor(tmp_path, body("unseen", compare={
        "champion": champion, "challenger": challenger, "unseenAfter": T.isoformat()}))
    assert result["comparison"]["labelled"] == 0 and result["comparison"]["reason"] == "TooFewLabelsToCompare"
    assert "made after 2026-11-23T12:00:00Z" in result["comparison"]["message"]


@pytest.mark.parametrize("field, value, message", [
    ("feedbackExport", {"target": "y", "timeColumn": "y"}, "timeColumn and target are both 'y'"),
    ("feedbackExport", {"target": "y", "since": "2026-11-01T00:00:00"}, "since must carry a time zone"),
])
def test_a_bad_export_request_is_refused_naming_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        MonitorTask.model_validate(body("x", **{field: value}))


def test_an_export_since_long_ago_reads_only_the_retention_once_a_checkpoint_exists(store, s3_env, tmp_path):
    made = predict_days(store, "carry", list(range(1, 200, 3)), per_day=4, label_after=DAY)  # half a year
    export = {"target": "churned", "timeColumn": "t"}
    first = MonitorTask.model_validate(body("carry", time=(T - 5 * DAY).isoformat(), feedbackExport=export))
    earlier, _, _ = evaluate(first, store)
    assert earlier.feedback_export.carried_until is None  # no checkpoint yet: everything read once
    # a relabel within the retention, given after the first export
    recent = [rid for rid, _, when in made if T - 10 * DAY < when < T - 6 * DAY][0]
    give_labels(store, "carry", [(recent, 7, T - DAY)])
    recording = Recording(store)
    result, _, _ = evaluate(MonitorTask.model_validate(body("carry", feedbackExport=export)), recording)
    assert result.feedback_export.carried_until == "2026-10-24T12:00:00Z"
    reads = [k for k in recording.read if k.startswith(("predictions/", "feedback/"))]
    assert reads and all(key_date(k) >= (T - 31 * DAY).date() for k in reads)
    labels_read = [k for k in reads if k.startswith("feedback/")]
    assert len(labels_read) == len(set(labels_read))  # the export and the quality window share one read
    assert result.labelled_samples == len([1 for _, _, when in made if T - 30 * DAY < when <= T - DAY])
    # the same rows as an export that read every log (another policy: no checkpoint)
    full, _, _ = evaluate(MonitorTask.model_validate(body("carry", policy="other", feedbackExport=export)), store)
    assert full.feedback_export.carried_until is None
    assert result.feedback_export.rows == full.feedback_export.rows == len(made) - 3  # day 1: 3 labelled after T
    assert result.feedback_export.sha256 == full.feedback_export.sha256
    frame = pd.read_parquet(io.BytesIO(store.get_bytes(store.key_of(result.feedback_export.uri))))
    assert (frame["churned"] == 7).sum() == 1
    # half a minute later, nothing new: the same export, named again rather than written again
    later = body("carry", time=(T + timedelta(seconds=30)).isoformat(), feedbackExport=export)
    again, _, _ = evaluate(MonitorTask.model_validate(later), store)
    assert (again.feedback_export.uri, again.feedback_export.sha256) == (result.feedback_export.uri,
                                                                         result.feedback_export.sha256)
    assert not store.exists("monitoring/carry/late/20261123T120030Z/feedback.parquet")
    # a minute later, day 1's second label has come: a new export
    newer, _, _ = evaluate(MonitorTask.model_validate(later | {"time": (T + timedelta(minutes=1)).isoformat()}), store)
    assert newer.feedback_export.rows == result.feedback_export.rows + 1
    assert newer.feedback_export.uri.endswith("/20261123T120100Z/feedback.parquet")
