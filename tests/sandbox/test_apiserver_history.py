"""A dedicated API server process with a short watch history: 410 Gone for compacted
resourceVersions, and state that survives a restart (SIGTERM snapshot and periodic one)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import httpx
import pytest

from kadence.sandbox import supervisor
from kadence.sandbox.kubeconfig import api_url, client_options

from .apiserver_helpers import configmap, ensure_gizmo_crd, wait_for, watch, gizmo, GIZMOS

HISTORY = 20


class ServerProcess:
    def __init__(self, state_dir):
        self.state_dir = state_dir
        self.port = supervisor.free_port()
        self.url = api_url(self.port)
        self.process: subprocess.Popen | None = None

    def start(self) -> httpx.Client:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kadence.sandbox.apiserver", "--port", str(self.port),
             "--state-dir", str(self.state_dir), "--watch-history", str(HISTORY),
             "--token-file", str(self.state_dir / "token")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def answers():
            try:
                return httpx.get(self.url + "/readyz", timeout=1, verify=False).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(answers, "the API server to answer", timeout=60, interval=0.1)
        return httpx.Client(base_url=self.url, timeout=30, **client_options(self.state_dir))

    def stop(self, sig=signal.SIGTERM) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        return self.process.wait(timeout=30)


@pytest.fixture()
def server(tmp_path):
    process = ServerProcess(tmp_path / "state")
    yield process
    if process.process is not None and process.process.poll() is None:
        process.stop(signal.SIGKILL)


def test_a_watch_from_a_compacted_resource_version_gets_a_410_error_event(server):
    http = server.start()
    path = "/api/v1/namespaces/default/configmaps"
    first = http.post(path, json=configmap("c")).json()["metadata"]["resourceVersion"]
    for index in range(HISTORY + 5):
        http.patch(f"{path}/c", json={"data": {"k": str(index)}},
                   headers={"Content-Type": "application/merge-patch+json"})
    events = watch(http, path, resourceVersion=first)
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert (status["kind"], status["code"], status["reason"]) == ("Status", 410, "Expired")
    recent = http.get(path).json()["metadata"]["resourceVersion"]
    assert watch(http, path, timeoutSeconds=1, resourceVersion=recent) == []


def test_a_continue_token_older_than_the_history_is_gone_with_410(server):
    http = server.start()
    path = "/api/v1/namespaces/default/configmaps"
    for index in range(3):
        http.post(path, json=configmap(f"c{index}"))
    token = http.get(path, params={"limit": 1}).json()["metadata"]["continue"]
    assert http.get(path, params={"limit": 1, "continue": token}).status_code == 200
    for index in range(HISTORY + 1):
        http.patch(f"{path}/c0", json={"data": {"k": str(index)}},
                   headers={"Content-Type": "application/merge-patch+json"})
    expired = http.get(path, params={"limit": 1, "continue": token})
    assert expired.status_code == 410
    assert expired.json()["reason"] == "Expired"


def test_objects_crds_and_the_version_counter_survive_a_restart(server):
    http = server.start()
    ensure_gizmo_crd(http)
    http.post(f"{GIZMOS}/namespaces/default/gizmos", json=gizmo("kept", size=2))
    created = http.post("/api/v1/namespaces/default/configmaps", json=configmap("kept")).json()
    before = int(http.get("/api/v1/namespaces").json()["metadata"]["resourceVersion"])
    assert server.stop() == 0
    http = server.start()
    assert http.get("/api/v1/namespaces/default/configmaps/kept").json() == created
    restored = http.get(f"{GIZMOS}/namespaces/default/gizmos/kept").json()
    assert restored["spec"]["size"] == 2
    written = http.post("/api/v1/namespaces/default/configmaps", json=configmap("new")).json()
    assert int(written["metadata"]["resourceVersion"]) > before
    names = [n["metadata"]["name"] for n in http.get("/api/v1/namespaces").json()["items"]]
    assert names.count("default") == 1


def test_the_state_is_snapshotted_periodically_so_a_crash_loses_little(server):
    http = server.start()
    http.post("/api/v1/namespaces/default/configmaps", json=configmap("durable"))
    snapshot = server.state_dir / "apiserver-state.json"

    def snapshot_has_it():
        if not snapshot.exists():
            return False
        objects = json.loads(snapshot.read_bytes())["objects"]
        return any(o["object"]["metadata"]["name"] == "durable" for o in objects)

    wait_for(snapshot_has_it, "the periodic snapshot", timeout=30)
    server.stop(signal.SIGKILL)
    http = server.start()
    assert http.get("/api/v1/namespaces/default/configmaps/durable").status_code == 200
