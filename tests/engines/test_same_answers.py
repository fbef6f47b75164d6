"""engine: ray gives the local engine's answers: the same version, verdicts, profile and
snapshot for a Dataset, the same trials and winner for a search. One real Ray head (conftest)
and the session's SeaweedFS; every ingest runs once per engine (module-scoped)."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kadence.domain.training import families as fam
from kadence.domain.training.metrics import make_metric_scorer
from kadence.domain.training.search import FAILED, Fold, SearchSettings, run_search
from kadence.engines.search import search_fits
from kadence.settings import Settings
from kadence.workloads.data_tasks import IngestTask
from kadence.workloads.ingest_run import ingest

COLUMNS = [
    {"name": "amount", "type": "float", "min": -50, "max": 1e6},
    {"name": "visits", "type": "int", "min": 0},
    {"name": "active", "type": "bool"},
    {"name": "plan", "type": "category", "allowedValues": ["basic", "pro", "team"]},
    {"name": "code", "type": "string", "regex": "C[0-9]{4}", "nullable": False},
    {"name": "seen", "type": "datetime"},
    {"name": "churned", "type": "int", "allowedValues": ["0", "1"]},
]
QUALITY = {"minRows": 100, "maxMissingFraction": 0.2, "maxMissingFractionPerColumn": {"amount": 0.1},
           "maxDuplicateFraction": 0.01, "classBalance": {"minFraction": 0.1, "maxFraction": 0.9}}


def frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({
        "amount": rng.lognormal(3, 1, rows).round(4),
        "visits": rng.integers(0, 60, rows),
        "active": rng.random(rows) < 0.4,
        "plan": rng.choice(["basic", "pro", "team"], rows, p=[0.6, 0.3, 0.1]),
        "code": [f"C{i % 10_000:04d}" for i in range(seed * rows, (seed + 1) * rows)],
        "seen": pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 10**7, rows), unit="s"),
        "churned": (rng.random(rows) < 0.3).astype(int),
    })
    data.loc[rng.random(rows) < 0.05, "amount"] = np.nan
    data.loc[rng.random(rows) < 0.1, "plan"] = None
    return data


def put_source(store, prefix: str, parts: list[pd.DataFrame]) -> str:
    for index, part in enumerate(parts):
        store.put_bytes(f"{prefix}part-{index}.csv", part.to_csv(index=False).encode(), "text/csv")
    return f"s3://{store.bucket}/{prefix}"


def run_both(store, tmp: Path, name: str, spec: dict, appended: list[str] = ()) -> dict:
    """engine -> (IngestResult, profile, manifest), each engine's run in its own output directory."""
    out = {}
    for engine in ("local", "ray"):
        task = IngestTask.model_validate({"namespace": "engines", "name": f"{name}-{engine}", "runId": "r1",
                                          "spec": {**spec, "engine": engine}, "appended": list(appended)})
        result = ingest(task, store, output_dir=tmp / engine)
        written = (tmp / engine / "profile.json").exists()
        out[engine] = (result,
                       json.loads((tmp / engine / "profile.json").read_text()) if written else None,
                       json.loads((tmp / engine / "manifest.json").read_text()) if written else None)
    return out


@pytest.fixture(scope="module")
def engine_env(ray_address, s3_config):
    with pytest.MonkeyPatch.context() as patch:
        for key, value in s3_config.as_env().items():
            patch.setenv(key, value)
        patch.setenv("KADENCE_RAY_ADDRESS", ray_address)
        yield


@pytest.fixture(scope="module")
def valid(engine_env, store, tmp_path_factory):
    parts = [frame(700, 1), frame(900, 2), frame(400, 3)]
    uri = put_source(store, "sources/engines/valid/", parts)
    appended = frame(150, 4).drop(columns=["visits"])  # feedback files may lack columns
    store.put_bytes("sources/engines/appended/feedback.csv", appended.to_csv(index=False).encode(), "text/csv")
    spec = {"source": {"uri": uri}, "format": "csv", "schema": {"columns": COLUMNS, "target": "churned"},
            "quality": QUALITY}
    return run_both(store, tmp_path_factory.mktemp("valid"), "valid", spec,
                    [f"s3://{store.bucket}/sources/engines/appended/feedback.csv"])


def test_both_engines_store_the_same_version_of_a_multi_file_source_with_an_appended_file(valid):
    local, ray = valid["local"][0], valid["ray"][0]
    assert local.outcome == ray.outcome == "Valid", (local.message, ray.message)
    assert (ray.version, ray.sha256, ray.rows) == (local.version, local.sha256, local.rows) and local.rows == 2150
    assert ray.source_files == local.source_files and len(local.source_files) == 3


def test_both_engines_give_every_rule_the_same_verdict_and_numbers(valid):
    local, ray = valid["local"][0], valid["ray"][0]
    assert [r.model_dump() for r in ray.rule_results] == [r.model_dump() for r in local.rule_results]
    assert {r.rule for r in local.rule_results} >= {"min[amount]", "allowedValues[plan]", "regex[code]",
                                                    "nullable[code]", "minRows", "maxDuplicateFraction",
                                                    "classBalance[min]", "maxMissingFraction[amount]"}


def test_both_engines_give_the_same_profile_to_the_last_bit(valid):
    local, ray = valid["local"][1], valid["ray"][1]
    assert ray == local
    assert set(local["columns"]) == {c["name"] for c in COLUMNS}
    assert local["columns"]["amount"]["histogram"]["counts"] and local["columns"]["plan"]["topCategories"]


def test_both_engines_write_the_same_snapshot_table(valid):
    local, ray = valid["local"][2], valid["ray"][2]
    assert ray["dataFileSha256"] == local["dataFileSha256"]


def test_the_ray_engine_stores_the_snapshot_its_tasks_assembled_and_leaves_no_parts_behind(valid, store):
    import hashlib

    result, _, manifest = valid["ray"]
    prefix = store.key_of(result.uri)
    stored = sorted(key[len(prefix):] for key in store.list_keys(prefix))
    assert stored == ["data.parquet", "manifest.json", "profile.json"]
    assert hashlib.sha256(store.get_bytes(prefix + "data.parquet")).hexdigest() == manifest["dataFileSha256"]
    assert not list(store.list_keys("datasets/engines/valid-ray/runs/"))


@pytest.fixture(scope="module")
def broken(engine_env, store, tmp_path_factory):
    bad = frame(300, 5)
    bad.loc[:9, "amount"] = -99.5  # below min
    bad.loc[10:14, "plan"] = "enterprise"  # not allowed
    bad.loc[15:16, "code"] = None  # nullable: false
    uri = put_source(store, "sources/engines/broken/", [frame(200, 6), bad])
    spec = {"source": {"uri": uri}, "format": "csv", "schema": {"columns": COLUMNS, "target": "churned"},
            "quality": QUALITY}
    return run_both(store, tmp_path_factory.mktemp("broken"), "broken", spec)


def test_both_engines_fail_the_same_rules_with_the_same_message(broken):
    local, ray = broken["local"][0], broken["ray"][0]
    assert local.outcome == ray.outcome == "Invalid"
    assert ray.failed_rules == local.failed_rules and set(local.failed_rules) >= {"min[amount]", "allowedValues[plan]",
                                                                                 "nullable[code]"}
    assert ray.message == local.message and ray.version == local.version


def test_both_engines_report_a_value_of_the_wrong_type_in_the_same_file(engine_env, store, tmp_path):
    bad = frame(50, 7).astype({"visits": object})
    bad.loc[3, "visits"] = "many"
    uri = put_source(store, "sources/engines/typed/", [frame(50, 8), bad])
    spec = {"source": {"uri": uri}, "format": "csv", "schema": {"columns": COLUMNS}}
    both = run_both(store, tmp_path, "typed", spec)
    local, ray = both["local"][0], both["ray"][0]
    assert local.outcome == ray.outcome == "Invalid" and ray.failed_rules == local.failed_rules == ["schema[types]"]
    assert ray.message == local.message and "part-1.csv" in local.message


def test_a_missing_ray_address_is_a_clear_error(s3_config, store, monkeypatch):
    for key, value in s3_config.as_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("KADENCE_RAY_ADDRESS", raising=False)
    task = IngestTask.model_validate({"namespace": "engines", "name": "noaddress", "spec": {
        "source": {"inline": "x\n1\n"}, "schema": {"columns": [{"name": "x", "type": "int"}]}, "engine": "ray"}})
    result = ingest(task, store)
    assert result.outcome == "Error" and "ray.address" in result.message


def _search(fits):
    from sklearn.datasets import make_classification
    from sklearn.model_selection import StratifiedKFold

    X, y = make_classification(n_samples=600, n_features=8, n_informative=4, random_state=0)
    folds = [Fold(X[a], y[a], X[b], y[b]) for a, b in StratifiedKFold(3, shuffle=True, random_state=0).split(X, y)]
    spaces = {name: fam.resolve_space(name, "classification") for name in ("logistic_regression", "random_forest")}
    settings = SearchSettings(task="classification", metric="f1", strategy="tpe", spaces=spaces, max_trials=8,
                              seed=7, parallelism=2)
    return run_search(settings, folds, make_metric_scorer("f1", [0, 1]), fits=fits)


def trials_of(result) -> list[tuple]:
    return [(t.number, t.family, t.params, t.state, t.score, t.fold_scores) for t in result.trials]


@pytest.fixture(scope="module")
def local_search():
    return _search(None)


def test_a_search_on_ray_runs_the_same_trials_and_picks_the_same_winner(ray_address, local_search):
    with search_fits("ray", Settings(KADENCE_RAY_ADDRESS=ray_address)) as fits:
        ray = _search(fits)
    assert trials_of(ray) == trials_of(local_search)
    assert (ray.best.number, ray.best.score) == (local_search.best.number, local_search.best.score)


def test_a_fit_whose_ray_worker_is_killed_is_run_again_and_the_search_ends_the_same(ray_address, local_search):
    """Kill -9 the first worker process seen running a fold fit (Ray titles it ray::_fit)."""
    import threading

    import psutil

    killed: list[int] = []
    done = threading.Event()

    def kill_one_fit() -> None:
        while not done.is_set() and not killed:
            for proc in psutil.process_iter(["cmdline"]):
                if any("ray::_fit" in part for part in proc.info["cmdline"] or []):
                    proc.kill()
                    killed.append(proc.pid)
                    return
            time.sleep(0.01)

    killer = threading.Thread(target=kill_one_fit, daemon=True)
    killer.start()
    try:
        with search_fits("ray", Settings(KADENCE_RAY_ADDRESS=ray_address)) as fits:
            ray = _search(fits)
    finally:
        done.set()
        killer.join()
    assert killed, "no fit was seen running"
    assert trials_of(ray) == trials_of(local_search) and not [t for t in ray.trials if t.state == FAILED]


FEATURES = [
    {"name": "amount_z", "transform": {"type": "standardScale", "column": "amount"}},
    {"name": "amount_filled", "transform": {"type": "impute", "column": "amount", "strategy": "median"}},
    {"name": "visits_01", "transform": {"type": "minMaxScale", "column": "visits"}},
    {"name": "visits_band", "transform": {"type": "bucketize", "column": "visits", "boundaries": [5, 20, 40]}},
    {"name": "plan", "transform": {"type": "oneHot", "column": "plan", "maxCategories": 2}},
    {"name": "code", "transform": {"type": "hash", "column": "code", "buckets": 8}},
    {"name": "seen_weekday", "transform": {"type": "datePart", "column": "seen", "part": "dayOfWeek"}},
    {"name": "engaged", "expression": "where(active, log1p(visits), 0)"},
]


@pytest.fixture(scope="module")
def materialized(valid, store):
    """The valid Dataset's local snapshot materialized once per engine: engine -> (result, table)."""
    import pyarrow.parquet as pq
    import skops.io as sio

    from kadence.domain.data.transforms import TRUSTED_TYPES
    from kadence.workloads.data_tasks import MaterializeTask
    from kadence.workloads.materialize_run import materialize

    out = {}
    for engine in ("local", "ray"):
        task = MaterializeTask.model_validate({
            "namespace": "engines", "name": f"features-{engine}", "datasetUri": valid["local"][0].uri,
            "spec": {"datasetRef": {"name": "valid-local"}, "entityColumn": "code", "features": FEATURES,
                     "engine": engine}})
        result = materialize(task, store)
        table = transformer = None
        if result.valid:
            table = pq.read_table(io.BytesIO(store.get_bytes(store.key_of(result.uri) + "features.parquet"))).to_pandas()
            transformer = sio.loads(store.get_bytes(store.key_of(result.transformer_uri)), trusted=TRUSTED_TYPES)
        out[engine] = (result, table, transformer)
    return out


def test_both_engines_materialize_the_same_feature_version_and_table_row_for_row(materialized):
    (local, local_table, local_fitted), (ray, ray_table, ray_fitted) = materialized["local"], materialized["ray"]
    assert local.outcome == ray.outcome == "Valid", (local.message, ray.message)
    assert ray.created and local.created  # each engine wrote its own FeatureSet's snapshot
    assert (ray.version, ray.dataset_version, ray.rows) == (local.version, local.dataset_version, local.rows) == (
        local.version, local.dataset_version, 2150)
    # 3 one-hot columns (2 categories and the other bucket), 8 hash buckets, one column per other feature
    assert ray.feature_columns == local.feature_columns and len(local.feature_columns) == 17
    pd.testing.assert_frame_equal(ray_table, local_table, check_exact=True)
    assert list(local_table.columns[:1]) == ["code"] and "churned" in local_table.columns
    # the same fitted transformer (its skops bytes carry a zip timestamp, so they are compared by content)
    assert ray_fitted.steps_ == local_fitted.steps_ and ray_fitted.feature_names_out_ == local_fitted.feature_names_out_


def test_a_materialize_on_ray_refuses_a_bad_feature_as_the_local_one_does(valid, engine_env, store):
    from kadence.workloads.data_tasks import MaterializeTask
    from kadence.workloads.materialize_run import materialize

    results = [materialize(MaterializeTask.model_validate({
        "namespace": "engines", "name": f"bad-features-{engine}", "datasetUri": valid["local"][0].uri,
        "spec": {"datasetRef": {"name": "valid-local"}, "engine": engine,
                 "features": [{"name": "ratio", "expression": "amount / nosuch"}]}}), store)
        for engine in ("local", "ray")]
    assert [r.outcome for r in results] == ["Invalid", "Invalid"]
    assert results[1].message == results[0].message and results[1].failed_feature == results[0].failed_feature


@pytest.fixture(scope="module")
def monitored(engine_env, store, tmp_path_factory):
    """One drifted hour of traffic with labels, evaluated by each engine in its own namespace
    (the same seeded logs in both): engine -> (exit code, result, report)."""
    import argparse

    from tests.monitoring.test_monitor_workload import HOUR, T, task, write_reference, write_traffic

    from kadence.workloads.monitor_run import run_from_args

    reference = write_reference(store, "datasets/engines-monitor/churn/v1/sample.parquet")
    tmp = tmp_path_factory.mktemp("monitor")
    out = {}
    for engine in ("local", "ray"):
        namespace = f"monitor-{engine}"
        write_traffic(store, namespace, "churn", n=600, start=T - HOUR, end=T, shift=0.6, accuracy=0.7, seed=3)
        body = task(namespace, reference, engine=engine, drift={"method": "ks", "minSamples": 100})
        path = tmp / f"{engine}.json"
        path.write_text(json.dumps(body))
        stdout = io.StringIO()
        code = run_from_args(argparse.Namespace(task=str(path)), "KADENCE_TASK", stdout)
        result = json.loads(stdout.getvalue().strip().splitlines()[-1])
        report_key = next(k for k in store.list_keys(f"monitoring/{namespace}/") if k.endswith("report.json"))
        out[engine] = (code, result, json.loads(store.get_bytes(report_key)))
    return out


def test_both_engines_evaluate_a_monitor_policy_to_the_same_scores_and_verdicts(monitored):
    (local_code, local, local_report), (ray_code, ray, ray_report) = monitored["local"], monitored["ray"]
    assert ray_code == local_code == 0, (local, ray)
    where = ("reportUri", "resultUri")  # each policy's own namespace
    assert {k: v for k, v in ray.items() if k not in where} == {k: v for k, v in local.items() if k not in where}
    assert "/monitor-ray/" in ray["reportUri"] and "/monitor-local/" in local["reportUri"]
    assert local["driftedFeatures"] and set(local["driftScores"]) == {"x", "y", "plan"}
    assert "f1" in local["metrics"]
    assert ray_report["histograms"] == local_report["histograms"] and local_report["histograms"]


def test_a_monitor_on_ray_without_an_address_fails_with_the_setting_to_set(s3_config, store, monkeypatch, tmp_path):
    import argparse

    from tests.monitoring.test_monitor_workload import task

    from kadence.workloads.monitor_run import run_from_args

    for key, value in s3_config.as_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("KADENCE_RAY_ADDRESS", raising=False)
    path = tmp_path / "task.json"
    path.write_text(json.dumps(task("monitor-noaddress", None, engine="ray")))
    stdout = io.StringIO()
    code = run_from_args(argparse.Namespace(task=str(path)), "KADENCE_TASK", stdout)
    result = json.loads(stdout.getvalue().strip().splitlines()[-1])
    assert code != 0 and "ray.address" in result["message"]


def test_a_feature_set_without_an_engine_follows_the_operator_default(store, monkeypatch):
    """spec.engine unset and KADENCE_ENGINE=ray (the chart's `engine`): the ray path, here refused
    for want of an address with the setting to set."""
    from kadence.workloads.data_tasks import MaterializeTask
    from kadence.workloads.materialize_run import materialize

    monkeypatch.setenv("KADENCE_ENGINE", "ray")
    monkeypatch.delenv("KADENCE_RAY_ADDRESS", raising=False)
    result = materialize(MaterializeTask.model_validate({
        "namespace": "engines", "name": "default-engine", "datasetUri": f"s3://{store.bucket}/datasets/none/",
        "spec": {"datasetRef": {"name": "none"}, "features": [{"name": "x", "expression": "x"}]}}), store)
    assert result.outcome == "Error" and "ray.address" in result.message
