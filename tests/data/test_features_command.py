"""`kadence features list`: the catalog rows and their table, and a clear error without a cluster."""

import subprocess
import sys

from kadence.commands.features import catalog_rows, render_table

ITEMS = [
    {"metadata": {"name": "users", "namespace": "team-b"},
     "spec": {"datasetRef": {"name": "users-ds"}, "features": [{"name": "age", "expression": "log1p(age)"}]}},
    {"metadata": {"name": "churn", "namespace": "team-a"},
     "spec": {"datasetRef": {"name": "customers"}, "features": []},
     "status": {"latestVersion": "abc123", "datasetVersion": "d42", "features": [
         {"name": "tenure_log", "type": "float", "source": "log1p(tenure)"},
         {"name": "plan", "type": "category", "source": "oneHot(plan, maxCategories=5, otherBucket=True)"}]}},
]


def test_the_catalog_lists_resolved_features_from_status_and_falls_back_to_the_spec():
    assert catalog_rows(ITEMS) == [
        ("team-a", "churn", "tenure_log", "float", "log1p(tenure)", "abc123", "d42"),
        ("team-a", "churn", "plan", "category", "oneHot(plan, maxCategories=5, otherBucket=True)", "abc123", "d42"),
        ("team-b", "users", "age", "-", "log1p(age)", "-", "users-ds"),
    ]


def test_the_table_aligns_columns_under_a_header():
    lines = render_table(catalog_rows(ITEMS)).splitlines()
    assert lines[0].split() == ["NAMESPACE", "FEATURESET", "FEATURE", "TYPE", "SOURCE", "VERSION", "DATASET"]
    assert lines[1].index("churn") == lines[0].index("FEATURESET")
    assert lines[3].split()[:3] == ["team-b", "users", "age"]


def test_without_a_cluster_the_command_fails_with_a_message(tmp_path):
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'http://127.0.0.1:9'}\n"
                          "contexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\n"
                          "users:\n- name: u\n  user: {}\n")
    done = subprocess.run([sys.executable, "-m", "kadence", "features", "list", "-A", "--kubeconfig", str(kubeconfig)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.startswith("kadence features list: ")
