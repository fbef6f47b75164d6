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
