"""Two namespaces on one operator and one store (issue 17.1), driven as users would: each
namespace's pods get keys that reach only its own data (the store itself answers 403 to
the other's) and what the other explicitly shares (a Dataset's spec.sharedWith, read-only),
and a result that its own workload did not write is ignored with an Event."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import textwrap
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

from kadence.sandbox import s3, supervisor

from .conftest import wait_for
from .operator_process import REPO, condition, get_json

pytestmark = pytest.mark.sandbox

A, B = "tenant-a", "tenant-b"
SCHEMA = {"columns": [{"name": "x", "type": "float"}, {"name": "y", "type": "int"}], "target": "y"}


@contextmanager
def operator_for(apiserver, kubeconfig: Path, kubectl, storage: s3.S3Settings, namespaces: list[str],
                 **extra_env: str):
    """One operator watching both namespaces, started as `kadence sandbox up` starts it."""
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    for namespace in namespaces:
        kubectl("create", "namespace", namespace, check=False)
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), **storage.operator_env(),
           "KADENCE_METRICS_PORT": str(supervisor.free_port()), "KADENCE_METRICS_ADDRESS": "127.0.0.1", **extra_env}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    flags = [f"--namespace={n}" for n in namespaces]
    with open(apiserver.state_dir / f"operator-tenancy-{'-'.join(namespaces)}.log", "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "kadence", "operator", *flags], env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield process
        finally:
            supervisor.stop_processes([supervisor.psutil.Process(process.pid)], timeout=15)


@pytest.fixture(scope="module")
def operator(sandbox_apiserver, sandbox_node, sandbox_s3, sandbox_kubeconfig, kubectl):
    with operator_for(sandbox_apiserver, sandbox_kubeconfig, kubectl, sandbox_s3, [A, B]) as process:
        yield process


def apply(kubectl, namespace: str, body: dict) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(body))


def dataset(name: str, shared_with: list[str] | None = None) -> dict:
    rows = "x,y\n" + "".join(f"{i / 10},{i % 2}\n" for i in range(20))
    spec = {"source": {"inline": rows}, "format": "csv", "schema": SCHEMA, "quality": {"minRows": 10}}
    if shared_with:
        spec["sharedWith"] = [{"namespace": n} for n in shared_with]
    return {"apiVersion": "kadence.dev/v1alpha1", "kind": "Dataset", "metadata": {"name": name}, "spec": spec}


def ready(kubectl, namespace: str, kind: str, name: str) -> dict | None:
    obj = get_json(kubectl, namespace, kind, name)
    found = condition(obj, "Ready")
    return obj if found and found["status"] == "True" else None


PROBE = textwrap.dedent("""
    import io, json, os, sys
    from minio import Minio
    from minio.error import S3Error
    client = Minio(os.environ["KADENCE_S3_ENDPOINT"], access_key=os.environ["KADENCE_S3_ACCESS_KEY"],
                   secret_key=os.environ["KADENCE_S3_SECRET_KEY"], secure=False, region="us-east-1")
    bucket = os.environ["KADENCE_S3_BUCKET"]
    def attempt(what, call):
        try:
            call()
            return "ok"
        except S3Error as error:
            return f"{error.response.status} {error.code}"
    own, other, shared = sys.argv[1], sys.argv[2], sys.argv[3]
    print(json.dumps({
        "read own": attempt("r", lambda: client.get_object(bucket, own).read()),
        "read other": attempt("r", lambda: client.get_object(bucket, other).read()),
        "write other": attempt("w", lambda: client.put_object(bucket, other, io.BytesIO(b"x"), 1)),
        "list other": attempt("l", lambda: list(client.list_objects(bucket, prefix=other.rsplit("/", 1)[0] + "/"))),
        "read shared": attempt("r", lambda: client.get_object(bucket, shared).read()),
        "write shared": attempt("w", lambda: client.put_object(bucket, shared, io.BytesIO(b"x"), 1)),
    }), flush=True)
""")


def probe_pod(namespace: str, name: str, own_key: str, other_key: str, shared_key: str) -> dict:
    """A pod that reads the namespace's storage Secret exactly as Kadence's Jobs do."""
    secret = "kadence-tenant-storage"
    env = [{"name": variable, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
           for variable, key in (("KADENCE_S3_ENDPOINT", "endpoint"), ("KADENCE_S3_ACCESS_KEY", "accessKey"),
                                 ("KADENCE_S3_SECRET_KEY", "secretKey"), ("KADENCE_S3_BUCKET", "bucket"))]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": {"restartPolicy": "Never", "containers": [{
                "name": "probe", "image": "kadence-workloads", "env": env,
                "command": [sys.executable, "-c", PROBE, own_key, other_key, shared_key]}]}}


def snapshot_key(kubectl, namespace: str, name: str) -> str:
    version = ready(kubectl, namespace, "dataset", name)["status"]["latestVersion"]
    return f"datasets/{namespace}/{name}/{version}/manifest.json"


def test_each_namespace_reaches_only_its_own_objects_and_the_store_says_403(operator, kubectl, kube, sandbox_s3):
    apply(kubectl, B, dataset("points", shared_with=[A]))  # B shares this one with A, read-only
    apply(kubectl, B, dataset("secret"))
    apply(kubectl, A, dataset("points"))
    for namespace, name in ((A, "points"), (B, "points"), (B, "secret")):
        wait_for(lambda: ready(kubectl, namespace, "dataset", name), timeout=240,
                 message=f"the Dataset {namespace}/{name} becomes Ready (its ingest Job ran with the tenant keys)")
    keys = {}
    for namespace in (A, B):
        secret = get_json(kubectl, namespace, "secret", "kadence-tenant-storage")
        data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
        assert data["accessKey"] != sandbox_s3.access_key and data["secretKey"] != sandbox_s3.secret_key
        keys[namespace] = data["accessKey"]
    assert keys[A] != keys[B]
    own, other = snapshot_key(kubectl, A, "points"), snapshot_key(kubectl, B, "secret")
    shared = snapshot_key(kubectl, B, "points")
    name = "probe-" + uuid.uuid4().hex[:6]
    kube.create("v1", "pods", A, probe_pod(A, name, own, other, shared))

    def finished():
        pod = kube.get("v1", "pods", A, name)
        return pod if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed") else None
    assert wait_for(finished, timeout=120, message="the probe pod finishes")["status"]["phase"] == "Succeeded"
    log = kubectl("logs", "-n", A, name).stdout.strip().splitlines()[-1]
    assert json.loads(log) == {"read own": "ok", "read other": "403 AccessDenied",
                               "write other": "403 AccessDenied", "list other": "403 AccessDenied",
                               "read shared": "ok", "write shared": "403 AccessDenied"}


def test_a_dataset_may_read_what_another_namespace_shares_with_it(operator, kubectl):
    version = ready(kubectl, B, "dataset", "points")["status"]["latestVersion"]
    body = dataset("borrowed")
    body["spec"]["source"] = {"uri": f"s3://kadence/datasets/{B}/points/{version}/data.parquet"}
    body["spec"]["format"] = "parquet"
    apply(kubectl, A, body)
    found = wait_for(lambda: ready(kubectl, A, "dataset", "borrowed"), timeout=240,
                     message="a Dataset in A reading B's shared snapshot becomes Ready")
    assert found["status"]["latestRows"] == 20


def test_a_result_its_own_workload_did_not_write_is_ignored_with_an_event(operator, kubectl, sandbox_s3):
    run = "forged-" + uuid.uuid4().hex[:6]
    # what a workload of another object (or an earlier TrainingRun of the same name) would have left
    forged = {"kind": "kadence.dev/train-result", "outcome": "Succeeded", "artifactUri": f"s3://kadence/runs/{A}/x"}
    storage = s3.client(sandbox_s3)
    data = json.dumps(forged).encode()
    storage.put_object(sandbox_s3.bucket, f"runs/{A}/{run}/result.json", io.BytesIO(data), len(data),
                       metadata={"kadence-owner-uid": "uid-of-someone-else", "kadence-owner-kind": "TrainingRun",
                                 "kadence-owner-namespace": B, "kadence-owner-name": run})
    apply(kubectl, A, {"apiVersion": "kadence.dev/v1alpha1", "kind": "TrainingRun", "metadata": {"name": run},
                       "spec": {"model": "forged", "datasetRef": {"name": "no-such-dataset"}, "task": "classification",
                                "objective": {"metric": "accuracy"}, "search": {"maxTrials": 1}}})

    def foreign_event():
        events = json.loads(kubectl("get", "events", "-n", A, "-o", "json").stdout)["items"]
        return [e for e in events if e.get("reason") == "ForeignResult"
                and (e.get("involvedObject") or {}).get("name") == run]
    events = wait_for(foreign_event, timeout=120, message="a ForeignResult Event on the TrainingRun")
    assert events[0]["type"] == "Warning" and "uid-of-someone-else" in events[0]["message"]
    status = (get_json(kubectl, A, "trainingrun", run) or {}).get("status") or {}
    assert not status.get("modelVersion") and status.get("phase") != "Succeeded"
    kubectl("delete", "trainingrun", run, "-n", A, "--wait=false")


def test_a_spec_that_names_another_namespaces_storage_is_refused(operator, kubectl):
    body = dataset("peek")
    body["spec"]["source"] = {"uri": f"s3://kadence/datasets/{B}/secret/"}  # not shared with A
    apply(kubectl, A, body)

    def refused():
        found = condition(get_json(kubectl, A, "dataset", "peek"), "Ready")
        return found if found and found.get("reason") == "InvalidSpec" else None
    found = wait_for(refused, timeout=60, message="InvalidSpec on a Dataset reading another namespace")
    assert f"lies outside namespace {A}'s storage" in found["message"]


def test_outside_sandbox_mode_a_file_source_is_refused_with_the_reason(sandbox_apiserver, sandbox_node, sandbox_s3,
                                                                       sandbox_kubeconfig, kubectl, tmp_path):
    """The same operator as on a cluster (no KADENCE_SANDBOX): file:// would read the node's files."""
    namespace = "tenant-c"
    (tmp_path / "x.csv").write_text("x,y\n1,0\n")
    with operator_for(sandbox_apiserver, sandbox_kubeconfig, kubectl, sandbox_s3, [namespace], KADENCE_SANDBOX=""):
        body = dataset("local")
        body["spec"]["source"] = {"uri": f"file://{tmp_path / 'x.csv'}"}
        apply(kubectl, namespace, body)

        def refused():
            found = condition(get_json(kubectl, namespace, "dataset", "local"), "Ready")
            return found if found and found.get("reason") == "InvalidSpec" else None
        found = wait_for(refused, timeout=90, message="InvalidSpec on a file:// source outside sandbox mode")
    assert "spec.source.uri: file:// URIs are only accepted when the operator runs in sandbox mode" in found["message"]
    assert not get_json(kubectl, namespace, "jobs") or not get_json(kubectl, namespace, "jobs")["items"]
