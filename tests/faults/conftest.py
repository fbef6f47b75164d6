"""One whole sandbox (S3, API server, node, operator) for the fault-injection suite, started the
way `kadence sandbox up` starts it; each module works in its own namespace and injects real
process faults (SIGKILL, SIGSTOP, SIGTERM) into it.

Scenario lengths are parameters (environment variables named in each module) so that a
quick local run can shorten them; the defaults are the issue's.
"""

from __future__ import annotations

import json
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from kadence.sandbox import supervisor
from kadence.sandbox.cli import running_sandbox
from kadence.sandbox.kubeconfig import client_options

# How often the sandbox's API server writes its snapshot in this suite (a crash loses at most
# the writes of about one interval).
SNAPSHOT_INTERVAL_S = 1.0


@dataclass
class FaultSandbox:
    state_dir: Path
    server: str
    kubeconfig: Path
    s3_env: dict

    def client(self, **options) -> httpx.Client:
        return httpx.Client(base_url=self.server, **{"timeout": 30, **client_options(self.state_dir), **options})

    def record(self, name: str) -> supervisor.ComponentRecord:
        return next(r for r in supervisor.read_records(self.state_dir) if r.name == name)


@pytest.fixture(scope="package")
def fault_sandbox(tmp_path_factory) -> FaultSandbox:
    state_dir = tmp_path_factory.mktemp("fault-sandbox")
    with running_sandbox(state_dir, with_operator=True, backoff=(0.2, 2),
                         snapshot_interval=SNAPSHOT_INTERVAL_S) as summary:
        if summary["operator"] != "running":
            pytest.fail("the operator did not start: " + " ".join(summary["notes"]))
        yield FaultSandbox(state_dir, summary["server"], Path(summary["kubeconfig"]), summary["s3_env"])


def wait_for(condition, timeout: float = 120, interval: float = 0.2, message: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = condition()
        except (httpx.HTTPError, OSError) as error:  # a component restarting
            last = error
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message}; last value: {last!r}")


def namespace(sandbox: FaultSandbox, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    with sandbox.client() as client:
        response = client.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace",
                                                           "metadata": {"name": name}})
        assert response.status_code == 201, response.text
    return name


def condition(obj: dict | None, type_: str) -> dict | None:
    for item in ((obj or {}).get("status") or {}).get("conditions") or []:
        if item.get("type") == type_:
            return item
    return None


def operator_reconciles(sandbox: FaultSandbox, ns: str, timeout: float = 120) -> dict:
    """A MonitorPolicy whose InferenceService does not exist: the operator answers it with
    Ready=False/InferenceServiceNotFound without touching object storage. Returns the condition."""
    name = f"probe-{uuid.uuid4().hex[:6]}"
    path = f"/apis/kadence.dev/v1alpha1/namespaces/{ns}/monitorpolicies"
    with sandbox.client() as client:
        created = client.post(path, json={
            "apiVersion": "kadence.dev/v1alpha1", "kind": "MonitorPolicy", "metadata": {"name": name},
            "spec": {"inferenceServiceRef": {"name": "absent"}, "interval": "5m", "window": {"duration": "1h"},
                     "performance": {"metric": "accuracy", "threshold": 0.5, "minLabelled": 10}}})
        assert created.status_code == 201, created.text

        def answered():
            found = condition(client.get(f"{path}/{name}").json(), "Ready")
            return found if found and found.get("reason") == "InferenceServiceNotFound" else None
        return wait_for(answered, timeout=timeout, message=f"the operator to reconcile MonitorPolicy {ns}/{name}")


def listening_sockets(pids: set[int]) -> list[tuple[int, str, int]]:
    """(pid, address, port) of every listening TCP socket of these processes."""
    found = []
    for pid in pids:
        try:
            connections = psutil.Process(pid).net_connections(kind="inet")
        except psutil.Error:
            continue
        for conn in connections:
            if conn.status == psutil.CONN_LISTEN:
                found.append((pid, conn.laddr.ip, conn.laddr.port))
    return found


def sandbox_pids(state_dir: Path) -> set[int]:
    """Every process of the sandbox: its components, their children, and the pods' processes."""
    pids = set()
    for record in supervisor.read_records(state_dir):
        proc = record.process()
        if proc is None:
            continue
        pids.add(proc.pid)
        pids.update(child.pid for child in proc.children(recursive=True))
    registry = state_dir / "kubelet" / "processes.json"
    if registry.exists():
        for pid in json.loads(registry.read_text()):
            if psutil.pid_exists(int(pid)):
                pids.add(int(pid))
                try:
                    pids.update(c.pid for c in psutil.Process(int(pid)).children(recursive=True))
                except psutil.Error:
                    pass
    return pids


def kill(pid: int, sig: int = signal.SIGKILL) -> None:
    psutil.Process(pid).send_signal(sig)


# ---- a served model, shared by the serving scenarios ---------------------------------------

SERVE_NAMESPACE = "faults-serving"
MODEL = "faultsmodel"
COLUMNS = ["tenure", "charges", "calls"]
MEMORY_LIMIT = "512Mi"
REPLICAS = 2
MEMORY_LIMIT_BYTES = 512 * 1024 * 1024


@dataclass
class ServedModel:
    sandbox: FaultSandbox
    namespace: str
    name: str  # the InferenceService (and the model)
    feedback_token: str

    def ready_pods(self) -> list[dict]:
        with self.sandbox.client() as client:
            pods = client.get(f"/api/v1/namespaces/{self.namespace}/pods",
                              params={"labelSelector": f"kadence.dev/inferenceservice={self.name}"}).json()["items"]
        return [p for p in pods if not p["metadata"].get("deletionTimestamp")
                and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or [])]

    def settled(self) -> bool:
        """No rollout under way: exactly the replicas, all Ready, none terminating, one version."""
        with self.sandbox.client() as client:
            pods = client.get(f"/api/v1/namespaces/{self.namespace}/pods",
                              params={"labelSelector": f"kadence.dev/inferenceservice={self.name}"}).json()["items"]
        versions = {p["metadata"]["labels"].get("kadence.dev/model-version") for p in pods}
        return len(pods) == REPLICAS == len(self.ready_pods()) and len(versions) == 1

    def pod(self) -> dict:
        """One Ready pod of the InferenceService (the first by name: the same one while it lives)."""
        ready = sorted(self.ready_pods(), key=lambda p: p["metadata"]["name"])
        assert ready, "no ready model-server pod"
        return ready[0]

    def url(self) -> str:
        """The server's own port (not the Service proxy): what it accepts is what it must answer."""
        return f"http://127.0.0.1:{self.pod()['metadata']['annotations']['sandbox.kadence.dev/port']}"

    def metrics_url(self) -> str:
        port = self.pod()["metadata"]["annotations"]["sandbox.kadence.dev/port-metrics"]
        return f"http://127.0.0.1:{port}/metrics"

    def server_process(self) -> psutil.Process:
        """The process listening on the pod's port (the model server)."""
        port = int(self.pod()["metadata"]["annotations"]["sandbox.kadence.dev/port"])
        for pid in sandbox_pids(self.sandbox.state_dir):
            if any(p == port for _, _, p in listening_sockets({pid})):
                return psutil.Process(pid)
        raise AssertionError(f"no process listens on the model server's port {port}")

    def rss(self) -> int:
        """Resident memory of the server process and its children (the pod's processes)."""
        proc = self.server_process()
        total = 0
        for member in [proc, *proc.children(recursive=True)]:
            try:
                total += member.memory_info().rss
            except psutil.Error:
                pass
        return total

    def logged_request_ids(self) -> list[str]:
        """Every requestId in the prediction logs the server wrote to S3 (duplicates kept)."""
        import gzip

        from kadence.storage import ObjectStore, StorageConfig

        store = ObjectStore(StorageConfig.from_env(self.sandbox.s3_env))
        ids = []
        for key in store.list_keys(f"predictions/{self.namespace}/{self.name}/"):
            data = store.get_bytes(key)
            if key.endswith(".gz"):
                data = gzip.decompress(data)
            ids += [json.loads(line)["requestId"] for line in data.splitlines() if line.strip()]
        return ids


def predict_body(rows: int = 1) -> dict:
    return {"instances": [{"tenure": 0.5 + i % 7, "charges": -0.2, "calls": 1.0} for i in range(rows)]}


def _train_and_store(sandbox: FaultSandbox, ns: str, seed: int = 7) -> tuple[str, str]:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from kadence.domain.training.artifact import dumps, sha256_hex
    from kadence.storage import ObjectStore, StorageConfig

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(200, 3)), columns=COLUMNS)
    model = LogisticRegression().fit(frame, (frame.tenure - frame.charges > 0).astype(int))
    data = dumps(model)
    store = ObjectStore(StorageConfig.from_env(sandbox.s3_env))
    key = f"runs/{ns}/imported-{MODEL}/{sha256_hex(data)}/model.skops"
    store.put_bytes(key, data)
    return store.uri(key), sha256_hex(data)


@pytest.fixture(scope="package")
def served_model(fault_sandbox) -> ServedModel:
    """One InferenceService with two replicas (memory limit 512Mi) serving a tiny model, every
    request logged; the feedback token read from the Secret the operator made. Scenarios aim at
    one pod's own port, or at the Service when a pod is to go away under traffic."""
    import base64

    sandbox = fault_sandbox
    ns = SERVE_NAMESPACE
    with sandbox.client() as client:
        client.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        uri, sha256 = _train_and_store(sandbox, ns)
        group = f"/apis/kadence.dev/v1alpha1/namespaces/{ns}"
        created = client.post(f"{group}/modelversions", json={
            "apiVersion": "kadence.dev/v1alpha1", "kind": "ModelVersion", "metadata": {"name": f"{MODEL}-v1"},
            "spec": {"model": MODEL, "version": 1, "task": "classification", "stage": "Production",
                     "artifact": {"uri": uri, "sha256": sha256},
                     "signature": {"inputs": [{"name": c, "type": "float"} for c in COLUMNS]}}})
        assert created.status_code == 201, created.text
        wait_for(lambda: (client.get(f"{group}/modelversions/{MODEL}-v1").json().get("status") or {}).get("verified"),
                 timeout=120, message="the ModelVersion to be verified")
        created = client.post(f"{group}/inferenceservices", json={
            "apiVersion": "kadence.dev/v1alpha1", "kind": "InferenceService", "metadata": {"name": MODEL},
            "spec": {"model": MODEL, "stage": "Production", "replicas": REPLICAS,
                     "resources": {"limits": {"memory": MEMORY_LIMIT}},
                     "logging": {"enabled": True, "sampleRate": 1.0},
                     # Short enough for the slow-body scenario to end quickly.
                     "server": {"bodyTimeout": "3s"}}})
        assert created.status_code == 201, created.text
        served = ServedModel(sandbox, ns, MODEL, feedback_token="")

        def ready():
            status = client.get(f"{group}/inferenceservices/{MODEL}").json().get("status") or {}
            return status.get("phase") == "Stable" and len(served.ready_pods()) == REPLICAS
        try:
            wait_for(ready, timeout=240, message="the InferenceService to serve")
        except AssertionError as error:
            raise AssertionError(f"{error}\n{diagnose(sandbox, ns)}") from None

        def token():
            secret = client.get(f"/api/v1/namespaces/{ns}/secrets/{MODEL}-feedback-token")
            return secret.status_code == 200 and base64.b64decode(secret.json()["data"]["token"]).decode()
        served.feedback_token = wait_for(token, timeout=60, message="the feedback token Secret")
    return served


def diagnose(sandbox: FaultSandbox, ns: str) -> str:
    """What a failed wait needs: the namespace's Kadence objects' status, its pods, the logs' tails."""
    lines = []
    with sandbox.client() as client:
        for path in (f"/apis/kadence.dev/v1alpha1/namespaces/{ns}/modelversions",
                     f"/apis/kadence.dev/v1alpha1/namespaces/{ns}/inferenceservices",
                     f"/api/v1/namespaces/{ns}/pods"):
            for item in client.get(path).json().get("items", []):
                lines.append(f"{item['kind']} {item['metadata']['name']}: {json.dumps(item.get('status'))[:1500]}")
    for name in ("operator", "node"):
        lines.append(f"--- {name} log:\n" + supervisor.tail(sandbox.state_dir / "logs" / f"{name}.log", 30))
    return "\n".join(lines)


class ThreadGroup:
    """Worker threads (`self.threads`) started on enter; on exit `self.stop` is set and each is joined."""

    join_timeout = 30.0

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=self.join_timeout)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]
