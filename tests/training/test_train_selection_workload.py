"""`kadence train` with a time column against the S3 fixture: the hold-out is the newest rows,
recency weighting goes through the search and the final fit, Recent keeps the newest rows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from .datagen import put_dataset
from kadence.workloads.train_task import TrainTask
from kadence.workloads.trainer import TrainingError, train

COLUMNS = [{"name": "event_time", "type": "datetime"}, {"name": "x0", "type": "float"},
           {"name": "x1", "type": "float"}, {"name": "y", "type": "int"}]


def shifted_frame(rows: int = 900, seed: int = 4) -> pd.DataFrame:
    """A year of rows; from late September on (the newest ~26 %) the label follows x1 instead of x0.
    Stored in shuffled order: only the time column says which rows are recent."""
    rng = np.random.default_rng(seed)
    days = np.sort(rng.uniform(0, 365, rows))
    X = rng.normal(size=(rows, 2))
    recent = days >= 270
    frame = pd.DataFrame({"event_time": pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(days, unit="D"),
                          "x0": X[:, 0], "x1": X[:, 1],
                          "y": np.where(recent, X[:, 1] > 0, X[:, 0] > 0).astype(int)})
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def task(store, run: str, selection: dict | None) -> TrainTask:
    uri = put_dataset(store, "ml", "shifted", "s1", shifted_frame(), COLUMNS, "y")
    spec = {"datasetRef": {"name": "shifted"}, "task": "classification", "objective": {"metric": "accuracy"},
            "search": {"strategy": "random", "maxTrials": 3, "families": [{"name": "logistic_regression"}],
                       "pruning": False},
            "cvFolds": 3, "model": "shifted", "split": {"testFraction": 0.1}}
    if selection is not None:
        spec["dataSelection"] = selection
    return TrainTask.model_validate({"namespace": "ml", "run": run, "spec": spec,
                                     "input": {"kind": "Dataset", "name": "shifted", "version": "s1", "uri": uri}})


def quiet(line: str) -> None:
    pass


def test_recency_weighting_scores_and_serves_the_recent_regime(store):
    everything = train(task(store, "sel-all", {"timeColumn": "event_time"}), store, log=quiet)
    lines: list[str] = []
    weighted = train(task(store, "sel-weighted", {"timeColumn": "event_time", "mode": "RecencyWeighted",
                                                  "halfLife": "15d"}), store, log=lines.append)
    # both are scored on the newest tenth of the rows, all of the new regime
    assert weighted.metrics["accuracy"] > 0.85 > 0.7 > everything.metrics["accuracy"]
    assert [c.name for c in weighted.signature.inputs] == ["x0", "x1"]  # the time column is no feature
    metrics = json.loads(store.get_bytes("runs/ml/sel-weighted/metrics.json"))
    selection = metrics["dataSelection"]
    assert selection["mode"] == "RecencyWeighted" and selection["rows"] == 900
    assert selection["holdout"]["from"] >= selection["train"]["to"] and selection["holdout"]["to"] >= "2026-12-"
    # cross-validation scores the newest half of the training rows only
    assert selection["train"]["from"] < "2026-01-10" and "2026-05-" < selection["validation"]["from"] < "2026-07-"
    assert selection["validation"]["to"] == selection["train"]["to"]
    assert selection["effectiveTrainingRows"] < 0.5 * metrics["rows"]["train"]
    assert any(line.startswith("time split by 'event_time'") for line in lines)


def test_recent_rows_train_on_the_newest_only(store):
    lines: list[str] = []
    result = train(task(store, "sel-recent", {"timeColumn": "event_time", "mode": "Recent",
                                              "recent": {"period": "75d"}}), store, log=lines.append)
    metrics = json.loads(store.get_bytes("runs/ml/sel-recent/metrics.json"))
    assert metrics["dataSelection"]["train"]["from"] >= "2026-10-"
    assert 100 < metrics["dataSelection"]["rows"] < 250
    assert result.metrics["accuracy"] > 0.85
    assert any("data selection: the newest" in line for line in lines)


def test_a_time_column_missing_from_the_data_is_named(store):
    with pytest.raises(TrainingError, match="time column 'when' .* is not in Dataset shifted"):
        train(task(store, "sel-missing", {"timeColumn": "when"}), store, log=quiet)


def newest_regime_frame(rows: int = 900, seed: int = 6) -> pd.DataFrame:
    """A year of rows whose newest tenth alone (exactly the hold-out of testFraction 0.1) follows
    x1 instead of x0: only a model fitted on the hold-out rows has seen the new rule."""
    rng = np.random.default_rng(seed)
    days = np.sort(rng.uniform(0, 365, rows))
    X = rng.normal(size=(rows, 2))
    newest = np.arange(rows) >= rows - rows // 10
    frame = pd.DataFrame({"event_time": pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(days, unit="D"),
                          "x0": X[:, 0], "x1": X[:, 1],
                          "y": np.where(newest, X[:, 1] > 0, X[:, 0] > 0).astype(int)})
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def refit_task(store, run: str, selection: dict, refit: bool) -> TrainTask:
    uri = put_dataset(store, "ml", "newest", "n1", newest_regime_frame(), COLUMNS, "y")
    spec = {"datasetRef": {"name": "newest"}, "task": "classification", "objective": {"metric": "accuracy"},
            "search": {"strategy": "random", "maxTrials": 2, "families": [{"name": "logistic_regression"}],
                       "pruning": False},
            "cvFolds": 3, "model": "newest", "split": {"testFraction": 0.1, "refit": refit},
            "dataSelection": selection}
    return TrainTask.model_validate({"namespace": "ml", "run": run, "spec": spec,
                                     "input": {"kind": "Dataset", "name": "newest", "version": "n1", "uri": uri}})


def artifact_accuracy_on_the_newest_rows(store, result) -> float:
    from kadence.domain.training import artifact as artifacts

    model = artifacts.loads(store.get_bytes(store.key_of(result.artifact.uri)), expected_sha256=result.artifact.sha256)
    frame = newest_regime_frame().sort_values("event_time").iloc[-90:]
    return float((model.predict(frame[["x0", "x1"]]) == frame["y"].to_numpy()).mean())


WEIGHTED = {"timeColumn": "event_time", "mode": "RecencyWeighted", "halfLife": "10d"}


def test_refit_registers_a_model_that_has_seen_the_hold_out_and_reports_the_pre_refit_metrics(store):
    lines: list[str] = []
    plain = train(refit_task(store, "refit-off", WEIGHTED, refit=False), store, log=quiet)
    refit = train(refit_task(store, "refit-on", WEIGHTED, refit=True), store, log=lines.append)
    # the hold-out scores the model fitted without it, the same with and without refit
    assert refit.metrics == plain.metrics and refit.metrics["accuracy"] < 0.7
    # the registered model is another one, and it has learned the rule only the newest rows follow
    assert refit.artifact.sha256 != plain.artifact.sha256
    assert artifact_accuracy_on_the_newest_rows(store, plain) < 0.7
    assert artifact_accuracy_on_the_newest_rows(store, refit) > 0.85
    metrics = json.loads(store.get_bytes("runs/ml/refit-on/metrics.json"))
    assert metrics["refit"] == {"rows": 900, "holdoutRows": 90, "weighted": True}
    assert metrics["rows"] == {"train": 810, "holdout": 90}
    assert "refit" not in json.loads(store.get_bytes("runs/ml/refit-off/metrics.json"))
    assert "fitted again on 900 rows" in store.get_bytes("runs/ml/refit-on/model_card.html").decode()
    assert any(line.startswith("refit: the chosen model fitted again on 900 rows") for line in lines)
    if refit.compiled is not None:  # the ONNX graph checked is the refit model's own
        assert refit.compiled.verified and refit.compiled.sha256 != plain.compiled.sha256


def test_refit_weights_every_row_by_recency(store):
    unweighted = train(refit_task(store, "refit-unweighted", {"timeColumn": "event_time"}, refit=True), store,
                       log=quiet)
    # 90 rows of the new rule among 900 unweighted: the refit model keeps mostly to the old rule
    assert artifact_accuracy_on_the_newest_rows(store, unweighted) < 0.75
    assert json.loads(store.get_bytes("runs/ml/refit-unweighted/metrics.json"))["refit"]["weighted"] is False
