"""A real kopf operator's whole life against the sandbox API server: create/update/delete
handlers, finalizers, status patches, timers, daemons, Events, and a restart that resumes;
nothing in kopf's log may show a retry or an error caused by the server."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .apiserver_helpers import MERGE, GIZMOS, ensure_gizmo_crd, wait_for, gizmo

OPERATOR = textwrap.dedent('''
    import asyncio, json, os
    import kopf

    TRACE = os.environ["KOPF_TRACE"]
    RESOURCE = ("conformance.kadence.dev", "v1alpha1", "gizmos")

    def trace(**record):
        with open(TRACE, "a") as handle:
            handle.write(json.dumps(record) + "\\n")

    @kopf.on.startup()
    def configure(settings: kopf.OperatorSettings, **_):
        settings.posting.level = 0
        settings.watching.server_timeout = 20

    @kopf.on.create(*RESOURCE)
    def created(spec, name, body, patch, **_):
        trace(handler="create", name=name, size=spec["size"])
        kopf.info(body, reason="Created", message=f"size {spec['size']}")
        patch.status["phase"] = "Created"
        return {"size": spec["size"]}

    @kopf.on.update(*RESOURCE, field="spec.size")
    def resized(old, new, name, patch, **_):
        trace(handler="update", name=name, old=old, new=new)
        patch.status["phase"] = f"Resized-{new}"

    @kopf.on.delete(*RESOURCE)
    def deleted(name, **_):
        trace(handler="delete", name=name)

    @kopf.timer(*RESOURCE, interval=0.5)
    def ticking(status, patch, **_):
        patch.status["ticks"] = (status.get("ticks") or 0) + 1

    @kopf.daemon(*RESOURCE, cancellation_timeout=5)
    async def watching(stopped, name, **_):
        trace(handler="daemon-start", name=name)
        while not stopped:
            await stopped.wait(0.2)
        trace(handler="daemon-stop", name=name)
''')


class Operator:
    def __init__(self, directory: Path, kubeconfig: Path, namespace: str):
        self.script = directory / "operator.py"
        self.script.write_text(OPERATOR)
        self.trace = directory / "trace.jsonl"
        self.log = directory / "kopf.log"
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "KOPF_TRACE": str(self.trace)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kopf", "run", "--standalone", "--namespace", self.namespace,
             "--verbose", str(self.script)],
            env=env, stdout=open(self.log, "a"), stderr=subprocess.STDOUT)

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)

    def records(self, handler: str) -> list[dict]:
        if not self.trace.exists():
            return []
        lines = self.trace.read_text().splitlines()
        return [r for r in map(json.loads, lines) if r["handler"] == handler]


@pytest.fixture()
def operator(tmp_path, sandbox_kubeconfig, apiserver_namespace, apiserver_http):
    ensure_gizmo_crd(apiserver_http)
    running = Operator(tmp_path, sandbox_kubeconfig, apiserver_namespace)
    running.start()
    yield running
    if running.process.poll() is None:
        running.process.kill()


# kopf's signs of trouble: warnings and errors (e.g. patches with inconsistencies), retries,
# tracebacks, API errors, handlers that failed.
TROUBLE = re.compile(r"\[(WARNING|ERROR|CRITICAL) *\]|retry|retries|Traceback|APIError|"
                     r"\b[1-9][0-9]* failed")
# What kopf itself logs on an orderly SIGTERM shutdown.
SHUTDOWN = re.compile(r"Unprocessed streams left|Stop-flag is raised|Operator is shutting down")


def test_a_kopf_operator_lives_its_whole_life_against_the_sandbox(operator, apiserver_http,
                                                                  apiserver_namespace):
    gizmos = f"{GIZMOS}/namespaces/{apiserver_namespace}/gizmos"
    apiserver_http.post(gizmos, json=gizmo("w", size=2))

    def status():
        return apiserver_http.get(f"{gizmos}/w").json().get("status") or {}

    # creation: handler result and status patch land in status, kopf's finalizer is added
    wait_for(lambda: status().get("phase") == "Created", "the create handler's status", 60)
    assert status()["created"] == {"size": 2}
    obj = apiserver_http.get(f"{gizmos}/w").json()
    assert "kopf.zalando.org/KopfFinalizerMarker" in obj["metadata"]["finalizers"]

    # the Event kopf posted (with generateName) is there for `kubectl describe`
    # kopf posts Events from a queue of its own, after the status patch: wait for it.
    def created_event():
        events = apiserver_http.get(f"/api/v1/namespaces/{apiserver_namespace}/events", params={
            "fieldSelector": "involvedObject.name=w,involvedObject.kind=Gizmo"}).json()["items"]
        return any(e["reason"] == "Created" and e["message"] == "size 2" for e in events)
    wait_for(created_event, "the Event kopf posted", 60)

    # timers tick and daemons run
    wait_for(lambda: (status().get("ticks") or 0) >= 3, "the timer to tick three times", 30)
    wait_for(lambda: operator.records("daemon-start"), "the daemon to start", 30)

    # update
    apiserver_http.patch(f"{gizmos}/w", json={"spec": {"size": 5}}, headers=MERGE)
    wait_for(lambda: status().get("phase") == "Resized-5", "the update handler", 60)

    # restart: a change made while the operator is down is handled when it comes back,
    # and creation is not handled again
    assert operator.stop() == 0
    apiserver_http.patch(f"{gizmos}/w", json={"spec": {"size": 6}}, headers=MERGE)
    operator.start()
    wait_for(lambda: status().get("phase") == "Resized-6", "the resumed update handler", 60)
    assert [r["size"] for r in operator.records("create")] == [2]
    assert [(r["old"], r["new"]) for r in operator.records("update")] == [(2, 5), (5, 6)]

    # deletion: the handler runs, the daemon stops, kopf's finalizer is released, object gone
    apiserver_http.delete(f"{gizmos}/w")
    wait_for(lambda: apiserver_http.get(f"{gizmos}/w").status_code == 404,
             "the gizmo to be deleted once kopf released it", 60)
    assert [r["name"] for r in operator.records("delete")] == ["w"]
    wait_for(lambda: operator.records("daemon-stop"), "the daemon to stop", 30)
    assert operator.stop() == 0

    troubles = [line for line in operator.log.read_text().splitlines()
                if TROUBLE.search(line) and not SHUTDOWN.search(line)]
    assert troubles == []
