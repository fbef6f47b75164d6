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


def test_the_catalog_is_listed_from_a_real_api_server(tmp_path):
    """Against the sandbox's API server with Kadence's CRDs: FeatureSets in two namespaces."""
    import json
    from pathlib import Path

    from kadence.sandbox import kubeconfig as kubeconfig_module
    from kadence.sandbox import supervisor
    from kadence.sandbox.cli import api_answers, apiserver_argv

    port = supervisor.free_port()
    record, _ = supervisor.start_component(tmp_path, "apiserver", apiserver_argv(port, tmp_path), port=port)
    url = kubeconfig_module.api_url(port)
    try:
        supervisor.wait_until(lambda: api_answers(url), timeout=60, record=record, what="API server")
        kubeconfig = kubeconfig_module.write_kubeconfig(tmp_path, url)
        kubectl = [str(Path(sys.executable).parent / "kubectl"), "--kubeconfig", str(kubeconfig)]
        crds = Path(__file__).resolve().parents[2] / "crds"
        applied = subprocess.run([*kubectl, "apply", "-f", str(crds / "kadence.dev_featuresets.yaml")],
                                 capture_output=True, text=True, timeout=60)
        assert applied.returncode == 0, applied.stderr
        for namespace, name, expression in (("team-a", "churn", "log1p(tenure)"), ("team-b", "users", "age * 2")):
            subprocess.run([*kubectl, "create", "namespace", namespace], check=True, capture_output=True, timeout=60)
            body = {"apiVersion": "kadence.dev/v1alpha1", "kind": "FeatureSet",
                    "metadata": {"name": name, "namespace": namespace},
                    "spec": {"datasetRef": {"name": "d"}, "features": [{"name": "f", "expression": expression}]}}
            subprocess.run([*kubectl, "apply", "-f", "-"], input=json.dumps(body), check=True, capture_output=True,
                           text=True, timeout=60)

        def listing(*scope):
            done = subprocess.run([sys.executable, "-m", "kadence", "features", "list", *scope, "-o", "json",
                                   "--kubeconfig", str(kubeconfig)], capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr
            return [(row["namespace"], row["featureset"], row["source"]) for row in json.loads(done.stdout)]

        assert listing("-A") == [("team-a", "churn", "log1p(tenure)"), ("team-b", "users", "age * 2")]
        assert listing("-n", "team-b") == [("team-b", "users", "age * 2")]
    finally:
        proc = record.process()
        if proc is not None:
            supervisor.stop_processes([proc], timeout=15)
