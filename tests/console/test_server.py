"""The console's HTTP API on an in-memory snapshot and a recording stand-in for the cluster:
what is served, what is refused and why, and what an allowed action sends to the API."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from aiohttp.test_utils import TestClient, TestServer

from kadence.api import keys
from kadence.console.cluster import Review
from kadence.console.server import make_app
from kadence.console.views import Snapshot
from kadence.storage import StorageError

from .objects import NS, dataset, featureset, policy, run, service, version


class Watched:
    """The part of console.watch.Watcher the server uses."""

    def __init__(self, snapshot: Snapshot, namespaces: list[str] | None = (NS,)):
        self.snapshot, self.namespaces, self.errors = snapshot, namespaces, {}
        self.queues: set = set()

    def watches(self, namespace):
        return self.namespaces is None or namespace in self.namespaces

    def subscribe(self):
        queue = asyncio.Queue()
        self.queues.add(queue)
        return queue

    def unsubscribe(self, queue):
        self.queues.discard(queue)


class Store:
    def __init__(self, objects: dict[str, bytes]):
        self.objects = objects

    def get_bytes(self, key: str) -> bytes:
        if key not in self.objects:
            raise FileNotFoundError(key)
        return self.objects[key]


class Recorder:
    """Answers reviews as told and records patches and Events."""

    def __init__(self, allowed: bool = True, objects: dict[str, bytes] | None = None, storage_error: str = ""):
        self.allowed, self.objects, self.storage_error = allowed, objects or {}, storage_error
        self.reviews, self.patches, self.events = [], [], []

    def review(self, namespace, kind, name):
        self.reviews.append((namespace, kind, name))
        return Review(self.allowed, "" if self.allowed else "RBAC: no rule allows patch")

    def patch(self, namespace, kind, name, patch):
        self.patches.append((namespace, kind, name, patch))
        return {}

    def record_event(self, namespace, event):
        self.events.append(event)

    def store(self, namespace):
        if self.storage_error:
            raise StorageError(self.storage_error)
        return Store(self.objects)


PAUSED = service(canary=2, phase="Paused", step=1, weight=50, source="challenger",
                 reason="awaiting promotion: every step passed and autoPromote is off")


def snapshot() -> Snapshot:
    return Snapshot.of([dataset(), featureset(), run(), version(1, "Production"), version(2, "Candidate"), PAUSED,
                        policy()])


def call(cluster: Recorder, writes: bool, fn, watched: Watched | None = None):
    async def go():
        app = make_app(watched or Watched(snapshot()), cluster, writes, "alice")
        async with TestClient(TestServer(app)) as client:
            return await fn(client)
    return asyncio.run(go())


def promote_body() -> dict:
    return {"namespace": NS, "model": "churn", "action": "promote", "name": "churn"}


async def post(client, body, **headers):
    response = await client.post("/api/actions", data=json.dumps(body),
                                 headers={"Content-Type": "application/json", **headers})
    return response.status, await response.json()


def test_the_overview_and_model_page_are_served_as_json():
    async def fn(client):
        overview = await (await client.get("/api/overview")).json()
        page = await (await client.get(f"/api/models/{NS}/churn")).json()
        missing = await client.get(f"/api/models/{NS}/nothing")
        return overview, page, missing.status, await missing.json()
    overview, page, status, missing = call(Recorder(), False, fn)
    assert [m["model"] for m in overview["models"]] == ["churn"]
    assert page["summary"]["stable"] == "churn-v1" and page["writes"] is False
    assert (status, missing) == (404, {"error": f"no model nothing in namespace {NS}"})


def test_read_only_pages_offer_no_action_and_the_api_refuses_every_one():
    recorder = Recorder()

    async def fn(client):
        page = await (await client.get(f"/api/models/{NS}/churn")).json()
        return page["actions"], await post(client, promote_body())
    actions, (status, body) = call(recorder, False, fn)
    assert actions == []
    assert status == 403 and "start the console with `kadence console --enable-writes`" in body["error"]
    assert recorder.reviews == recorder.patches == recorder.events == []


def test_with_writes_an_allowed_promotion_patches_the_annotation_and_records_who_did_it():
    recorder = Recorder()

    async def fn(client):
        page = await (await client.get(f"/api/models/{NS}/churn")).json()
        return page["actions"], await post(client, promote_body())
    actions, (status, body) = call(recorder, True, fn)
    assert [a["action"] for a in actions] == ["promote", "abort", "retrain"]
    assert status == 200, body
    assert recorder.reviews == [(NS, "InferenceService", "churn")]
    assert recorder.patches == [(NS, "InferenceService", "churn",
                                 {"metadata": {"annotations": {keys.PROMOTE_ANNOTATION: "true"}}})]
    [event] = recorder.events
    assert event["reason"] == "ConsolePromote" and event["message"].startswith("alice (kadence console) promoted")
    assert body["event"] == event["metadata"]["name"]


def test_an_action_the_users_rbac_refuses_is_not_made():
    recorder = Recorder(allowed=False)
    status, body = call(recorder, True, lambda client: post(client, promote_body()))
    assert status == 403
    assert body["error"] == f"alice may not patch inferenceservices/churn in {NS}: RBAC: no rule allows patch"
    assert recorder.patches == [] and recorder.events == []


def test_with_writes_a_retrain_request_patches_the_policys_manual_trigger_naming_who_and_why():
    recorder = Recorder()
    body = {**promote_body(), "action": "retrain", "name": "churn-quality", "reason": "labels of May are in"}
    status, answer = call(recorder, True, lambda client: post(client, body))
    assert status == 200, answer
    assert recorder.reviews == [(NS, "MonitorPolicy", "churn-quality")]
    [(namespace, kind, name, patch)] = recorder.patches
    assert (namespace, kind, name) == (NS, "MonitorPolicy", "churn-quality")
    request = patch["spec"]["triggers"]["manual"]
    assert request["requestedBy"] == "alice (kadence console)" and request["reason"] == "labels of May are in"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", request["requestedAt"])
    [event] = recorder.events
    assert event["reason"] == "ConsoleRetrain" and event["involvedObject"]["kind"] == "MonitorPolicy"
    assert event["message"].startswith("alice (kadence console) asked MonitorPolicy churn-quality to retrain")


def test_a_retrain_the_users_rbac_refuses_is_not_requested():
    recorder = Recorder(allowed=False)
    body = {**promote_body(), "action": "retrain", "name": "churn-quality"}
    status, answer = call(recorder, True, lambda client: post(client, body))
    assert status == 403
    assert answer["error"] == f"alice may not patch monitorpolicies/churn-quality in {NS}: RBAC: no rule allows patch"
    assert recorder.patches == [] and recorder.events == []


def test_a_reason_that_is_not_a_string_is_refused():
    recorder = Recorder()
    body = {**promote_body(), "action": "retrain", "name": "churn-quality", "reason": {"why": 1}}
    status, answer = call(recorder, True, lambda client: post(client, body))
    assert status == 400 and "an optional reason, a string" in answer["error"]
    assert recorder.patches == []


def test_an_action_that_does_not_apply_now_is_refused_with_the_reason():
    recorder = Recorder()
    body = {**promote_body(), "action": "approve", "name": "churn-v2"}
    status, answer = call(recorder, True, lambda client: post(client, body))
    assert status == 409 and "churn-v2 is not a Candidate waiting for a person's approval" in answer["error"]
    assert recorder.reviews == []


@pytest.mark.parametrize("headers, data, expected", [
    ({"Content-Type": "application/x-www-form-urlencoded"}, "action=promote", 403),
    ({"Content-Type": "application/json", "Origin": "http://evil.example"}, json.dumps(promote_body()), 403),
    ({"Content-Type": "application/json"}, json.dumps({"action": "promote"}), 400),
])
def test_actions_come_only_as_json_from_the_consoles_own_pages(headers, data, expected):
    recorder = Recorder()

    async def fn(client):
        response = await client.post("/api/actions", data=data, headers=headers)
        return response.status
    assert call(recorder, True, fn) == expected
    assert recorder.patches == []


def test_a_stored_report_is_served_with_a_policy_that_runs_no_script():
    key = "monitoring/team-a/churn-quality/r2/report.html"
    recorder = Recorder(objects={key: b"<html>report</html>"})

    async def fn(client):
        response = await client.get(f"/files/{NS}/{key}")
        return response.status, await response.text(), response.headers
    status, text, headers = call(recorder, False, fn)
    assert (status, text) == (200, "<html>report</html>")
    assert "sandbox" in headers["Content-Security-Policy"] and "script-src" not in headers["Content-Security-Policy"]


@pytest.mark.parametrize("path, expected, message", [
    (f"/files/{NS}/monitoring/other-ns/p/report.html", 403, "only HTML reports under namespace team-a"),
    (f"/files/{NS}/runs/{NS}/r/trials.json", 403, "only HTML reports"),
    (f"/files/{NS}/runs/{NS}/r/../../../monitoring/x/report.html", 403, "only HTML reports"),
    ("/files/other-ns/monitoring/other-ns/p/report.html", 404, "namespace other-ns is not watched"),
    (f"/files/{NS}/monitoring/{NS}/p/missing.html", 404, "no stored object"),
])
def test_only_html_of_the_namespaces_own_prefixes_is_served(path, expected, message):
    async def fn(client):
        response = await client.get(path)
        return response.status, (await response.json())["error"]
    status, error = call(Recorder(), False, fn)
    assert status == expected and message in error


def test_a_namespace_without_readable_storage_says_why():
    recorder = Recorder(storage_error=f"the Secret {NS}/kadence-tenant-storage cannot be read with your credentials")

    async def fn(client):
        response = await client.get(f"/api/runs/{NS}/churn-initial/trials")
        return response.status, (await response.json())["error"]
    assert call(recorder, False, fn) == (502, f"the Secret {NS}/kadence-tenant-storage cannot be read with your "
                                              "credentials")


def test_the_trials_of_a_run_come_back_as_a_score_chart():
    trials = {"metric": "f1", "direction": "maximize", "stoppedBy": "maxTrials",
              "trials": [{"number": 0, "score": 0.7, "family": "rf"}, {"number": 1, "score": 0.75, "family": "lr"}]}
    recorder = Recorder(objects={f"runs/{NS}/churn-initial/trials.json": json.dumps(trials).encode()})

    async def fn(client):
        return await (await client.get(f"/api/runs/{NS}/churn-initial/trials")).json()
    answer = call(recorder, False, fn)
    assert answer["trials"] == 2 and answer["stoppedBy"] == "maxTrials"
    assert [p["best"] for p in answer["chart"]["data"]["values"]] == [0.7, 0.75]


def test_the_event_stream_sends_each_change_the_watches_announce():
    watched = Watched(snapshot())

    async def fn(client):
        response = await client.get("/api/events")
        assert response.headers["Content-Type"] == "text/event-stream"
        while not watched.queues:
            await asyncio.sleep(0.01)
        for queue in watched.queues:
            queue.put_nowait({"kind": "InferenceService", "type": "MODIFIED", "namespace": NS, "name": "churn"})
        text = b""
        while b"event: change" not in text or not text.endswith(b"\n\n"):
            text += await response.content.readany()
        response.close()
        return text.decode()
    text = call(Recorder(), False, fn, watched)
    assert 'event: change\ndata: {"kind": "InferenceService", "type": "MODIFIED", "namespace": "team-a", ' \
           '"name": "churn"}\n\n' in text
