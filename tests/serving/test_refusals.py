"""The server's refusals that need a model or a store to misbehave on cue: a prediction that
does not finish (504), a bug (500 without its text), feedback without a token configured
(403), storage failing (503 at once after the first failure), and a shutdown that flushes once.

The app runs in-process (httpx's ASGI transport) around a real Predictor whose pipeline is
scripted, so each case is deterministic."""

from __future__ import annotations

import asyncio
import logging
import threading

import httpx
import numpy as np

from kadence.serving.app import ServingApp
from kadence.serving.predictor import Predictor
from kadence.serving.task import ServeColumn, ServeTask

TOKEN = "in-process-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROW = {"instances": [{"x": 1.0}]}


class ScriptedPipeline:
    """A classifier whose predict() blocks on `gate` or raises `failure` when told to."""

    classes_ = np.array([0, 1])

    def __init__(self):
        self.gate: threading.Event | None = None
        self.failure: Exception | None = None

    def predict(self, frame):
        if self.failure is not None:
            raise self.failure
        if self.gate is not None:
            self.gate.wait(30)
        return np.zeros(len(frame), dtype=np.int64)


class CountingSink:
    """A store that fails while `failing` and counts every write attempt by key."""

    def __init__(self, failing: bool = False):
        self.failing = failing
        self.attempts: list[str] = []
        self.stored: dict[str, bytes] = {}

    def put_bytes(self, key: str, data: bytes, content_type: str = "") -> str:
        self.attempts.append(key)
        if self.failing:
            raise ConnectionError("storage is down: connect timeout to 10.0.0.9:8333")
        self.stored[key] = data
        return key


def task(**fields) -> ServeTask:
    return ServeTask.model_validate({"namespace": "t", "inferenceService": "isvc", "model": "m", "version": 1,
                                     "artifact": {"uri": "s3://b/k", "sha256": "a" * 64},
                                     "inputs": [{"name": "x", "type": "float"}], **fields})


def serve(app: ServingApp, scenario):
    """Start the app, run `scenario(client)`, stop the app; returns what the scenario returned."""
    async def main():
        await app.startup()
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://server", timeout=30) as client:
                return await scenario(client)
        finally:
            await app.shutdown()
    return asyncio.run(main())


def app_with(pipeline=None, sink=None, token: str | None = TOKEN, **fields) -> ServingApp:
    predictor = Predictor(pipeline or ScriptedPipeline(), [ServeColumn(name="x", type="float")])
    return ServingApp(task(**fields), predictor=predictor, sink=sink, feedback_token=token)


def test_a_prediction_that_does_not_finish_in_time_is_a_504_naming_the_limit():
    pipeline = ScriptedPipeline()
    app = app_with(pipeline, predictTimeoutSeconds=0.2)

    async def scenario(client):
        pipeline.gate = threading.Event()
        try:
            slow = await client.post("/v1/models/m:predict", json=ROW)
        finally:
            pipeline.gate.set()
        pipeline.gate = None
        return slow, await client.post("/v1/models/m:predict", json=ROW)

    slow, after = serve(app, scenario)
    assert slow.status_code == 504
    assert slow.json() == {"error": "no prediction within 0.2 s (predictTimeoutSeconds); the server is busy or "
                                    "the model is slow"}
    assert after.status_code == 200 and after.json() == {"predictions": [0]}


def test_a_bug_answers_500_with_an_error_id_and_never_the_exception_text(caplog):
    pipeline = ScriptedPipeline()
    app = app_with(pipeline)

    async def scenario(client):
        pipeline.failure = RuntimeError("KADENCE_S3_SECRET_KEY=hunter2 at /etc/kadence/creds")
        return await client.post("/v1/models/m:predict", json=ROW)

    with caplog.at_level(logging.ERROR, logger="kadence.serving.app"):
        response = serve(app, scenario)
    assert response.status_code == 500
    body = response.json()
    assert set(body) == {"error", "errorId"}
    assert "hunter2" not in response.text and "RuntimeError" not in response.text and "/etc" not in response.text
    assert body["error"] == f"internal error; the server log has the details under error id {body['errorId']}"
    logged = [r for r in caplog.records if body["errorId"] in r.getMessage()]
    assert logged and "hunter2" in str(logged[0].exc_info[1])


def test_a_server_without_a_feedback_token_refuses_feedback_with_403():
    app = app_with(sink=CountingSink(), token=None)

    async def scenario(client):
        return await client.post("/v1/models/m/feedback", json={"requestId": "r1", "label": 1}, headers=AUTH)

    response = serve(app, scenario)
    assert response.status_code == 403
    assert response.json() == {"error": "feedback is disabled on this server: it has no feedback token "
                                        "(KADENCE_FEEDBACK_TOKEN)"}


def test_feedback_answers_503_at_once_while_storage_is_failing_and_stores_again_after_it_recovers():
    sink = CountingSink(failing=True)
    app = app_with(sink=sink, logging={"enabled": False})

    async def scenario(client):
        first = await client.post("/v1/models/m/feedback", json={"requestId": "r1", "label": 1}, headers=AUTH)
        second = await client.post("/v1/models/m/feedback", json={"requestId": "r2", "label": 1}, headers=AUTH)
        attempts_while_open = len(sink.attempts)
        sink.failing = False
        app.breaker.cooldown = 0  # the cooldown is over
        third = await client.post("/v1/models/m/feedback", json={"requestId": "r3", "label": 0}, headers=AUTH)
        return first, second, attempts_while_open, third

    first, second, attempts_while_open, third = serve(app, scenario)
    assert first.status_code == 503 and "10.0.0.9" not in first.text
    assert first.json() == {"error": "feedback could not be stored right now; retry later"}
    assert second.status_code == 503 and second.headers["retry-after"].isdigit()
    assert second.json()["error"].startswith("feedback storage is unavailable right now; retry after")
    assert attempts_while_open == 1, "the second request must not wait on the store"
    assert third.status_code == 200 and third.json()["stored"] == 1


def test_shutdown_flushes_the_prediction_log_once_even_when_called_twice(tmp_path):
    sink = CountingSink()
    app = app_with(sink=sink, logging={"flushSeconds": 3600, "flushRecords": 1000})

    async def scenario(client):
        for i in range(5):
            assert (await client.post("/v1/models/m:predict", json=ROW, headers={"X-Request-Id": f"r{i}"})).status_code == 200
        assert sink.attempts == []  # still buffered
        await app.shutdown()

    serve(app, scenario)  # serve() calls shutdown a second time
    assert len(sink.attempts) == 1 and len(sink.stored) == 1
    assert app.logger.written_records == 5 and app.logger.dropped_records == 0


def test_a_request_id_with_control_characters_is_refused():
    app = app_with()

    async def scenario(client):
        v2 = {"id": "a\u0007b", "inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [1.0]}]}
        return (await client.post("/v2/models/m/infer", json=v2),
                await client.post("/v1/models/m:predict", json=ROW, headers={"X-Request-Id": "bad\tid"}))

    v2, v1 = serve(app, scenario)
    assert v2.status_code == 400 and v2.json() == {"error": '"id" must be 1 to 256 printable ASCII characters'}
    assert v1.status_code == 400 and v1.json() == {"error": "the X-Request-Id header must be 1 to 256 printable "
                                                            "ASCII characters"}
