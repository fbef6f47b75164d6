"""`kadence models`: the formatting of the registry and of a lineage chain (pure)."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone

from kadence.commands.models import age, lineage_links, pick_version, registry_rows, render_lineage, render_table

NOW = datetime(2026, 1, 2, 12, 0, 0, tzinfo=timezone.utc)


def mv(name, model, version, stage="Candidate", status_stage=None, metrics=None, verified=None, run="train-1",
       created="2026-01-02T11:00:00Z", namespace="ml"):
    status = {}
    if status_stage:
        status["stage"] = status_stage
    if verified is not None:
        status["verified"] = verified
    return {
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": created},
        "spec": {"model": model, "version": version, "stage": stage, "metrics": metrics or {"f1": 0.8123},
                 "primaryMetric": "f1", "artifact": {"uri": "s3://k/a", "sha256": "ab" * 32},
                 "lineage": {"trainingRun": run, "dataset": "churn", "datasetVersion": "d1",
                             "featureSet": "churn-features", "featureSetVersion": "f9", "seed": 42}},
        "status": status,
    }


def test_ages_read_like_kubectl():
    assert age("2026-01-02T11:59:15Z", NOW) == "45s"
    assert age("2026-01-02T11:00:00Z", NOW) == "1h"
    assert age("2025-12-28T12:00:00Z", NOW) == "5d"
    assert age(None, NOW) == "-"


def test_registry_rows_are_sorted_by_model_and_version_and_show_the_stage_in_force():
    rows = registry_rows([mv("churn-v2", "churn", 2, stage="Production", status_stage="Staging", verified=True),
                          mv("churn-v1", "churn", 1, status_stage="Archived", verified=False)], NOW)
    assert rows == [
        ("ml", "churn", "1", "churn-v1", "Archived", "f1=0.8123", "NO", "train-1", "1h"),
        ("ml", "churn", "2", "churn-v2", "Staging", "f1=0.8123", "yes", "train-1", "1h"),
    ]


def test_the_table_aligns_columns_under_their_headers():
    table = render_table([("ml", "churn", "1", "churn-v1", "Production", "f1=0.8", "yes", "r", "1h")])
    header, row = table.splitlines()
    assert header.index("STAGE") == row.index("Production")


def test_a_model_name_picks_its_production_version_else_the_highest():
    items = [mv("churn-v1", "churn", 1, status_stage="Production"), mv("churn-v2", "churn", 2)]
    assert pick_version(items, "churn")["metadata"]["name"] == "churn-v1"
    assert pick_version(items[1:], "churn")["metadata"]["name"] == "churn-v2"
    assert pick_version(items, "churn-v2")["metadata"]["name"] == "churn-v2"
    assert pick_version(items, "fraud") is None


def test_the_lineage_chain_runs_from_the_dataset_to_the_model_version():
    version = mv("churn-v2", "churn", 2, status_stage="Production")
    run = {"status": {"phase": "Succeeded", "bestFamily": "random_forest", "bestScore": 0.81234,
                      "conditions": [{"type": "Ready", "status": "True"}]}}
    text = render_lineage(lineage_links(version, run, None, {"status": {"phase": "Ready"}}))
    assert text.splitlines() == [
        "Dataset churn @ d1  [Ready]",
        "└─ FeatureSet churn-features @ f9  [not found]",
        "   └─ TrainingRun train-1  [Succeeded, Ready=True]  best random_forest cv=0.8123",
        "      └─ ModelVersion churn-v2 @ 2  [Production]  f1=0.8123, sha256 abababababab…, seed 42",
    ]


def test_a_model_trained_on_a_dataset_has_no_featureset_link():
    version = mv("churn-v1", "churn", 1)
    del version["spec"]["lineage"]["featureSet"]
    kinds = [link["kind"] for link in lineage_links(version, None, None, None)]
    assert kinds == ["Dataset", "TrainingRun", "ModelVersion"]


def test_models_help_lists_both_actions():
    done = subprocess.run([sys.executable, "-m", "kadence", "models", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and "list" in done.stdout and "lineage" in done.stdout


def test_models_list_without_a_cluster_fails_with_a_message_not_a_traceback(tmp_path):
    config = tmp_path / "kubeconfig"
    config.write_text("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
                      "users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
                      "current-context: x\n")
    done = subprocess.run([sys.executable, "-m", "kadence", "models", "list", "--kubeconfig", str(config)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.startswith("kadence models list: ") and "Traceback" not in done.stderr
