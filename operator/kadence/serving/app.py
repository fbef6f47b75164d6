"""The model server as a plain ASGI application: KServe v1 and Open Inference Protocol v2.

Routes (the model name is the task's served name; v2 versions are the ModelVersion number):

    GET  /v1/models                              {"models": [name]}
    GET  /v1/models/<m>                          {"name": m, "ready": true}
    POST /v1/models/<m>:predict                  {"instances": [...]} -> {"predictions": [...]}
    POST /v1/models/<m>/feedback                 {"requestId": ..., "label": ...} | {"feedback": [...]}
    GET  /v2                                     server metadata
    GET  /v2/health/live, /v2/health/ready
    GET  /v2/models/<m>[/versions/<v>]           model metadata
    GET  /v2/models/<m>[/versions/<v>]/ready
    POST /v2/models/<m>[/versions/<v>]/infer
    POST /v2/models/<m>[/versions/<v>]/feedback
    GET  /metrics                                Prometheus

Every response carries `X-Request-Id` (the caller's, or v2's body `id`, or a new one).
A request of several rows logs one record per row with the id `<request id>-<row index>`;
a single-row request logs under the request id itself. Errors are `{"error": "..."}` with
400 (bad input), 404, 405, 413 (body too large) or 503 (not ready); never a crash.

A plain ASGI callable rather than Starlette: on this machine a trivial JSON POST route
answered about 20,000 req/s raw against 5,000-10,000 through Starlette's routing and
Request/Response objects (uvicorn + httptools + uvloop, wrk at 32 connections), and the
model server's whole budget per request is a few hundred microseconds.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import math
import random
import time
import uuid
from typing import Any

import numpy as np
import orjson

from .. import __version__
from ..domain.monitoring.logformat import format_time
from .batching import MicroBatcher
from .decoding import (
    DATATYPE_OF_COLUMN,
    InputError,
    attach_binary_inputs,
    column_values,
    concat_columns,
    decode_v1,
    decode_v2,
    split_binary_request,
)
from .metrics import ServerMetrics
from .mirror import Mirror
from .predictlog import PredictionLogger, utc_now, write_feedback
from .task import ServeTask

log = logging.getLogger(__name__)

JSON_HEADERS = [(b"content-type", b"application/json")]
MAX_FEEDBACK_ITEMS = 10_000
MAX_REQUEST_ID_LENGTH = 256


class HTTPError(Exception):
    def __init__(self, status: int, message: str, reason: str, headers: list | None = None):
        super().__init__(message)
        self.status, self.message, self.reason = status, message, reason
        self.headers = headers or []


def parse_json(body: bytes) -> Any:
    if not body.strip():
        raise HTTPError(400, "the request body is empty; send a JSON object", "malformed_json")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        # Python's json accepts NaN/Infinity literals (json.dumps writes them), which orjson
        # does not; let those through so the decoder can say which value is not allowed.
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            raise HTTPError(400, f"malformed JSON: {error}", "malformed_json") from None


def label_datatype(classes) -> str:
    if classes is None:
        return "FP64"
    kind = np.asarray(classes).dtype.kind
    return {"i": "INT64", "u": "INT64", "f": "FP64", "b": "BOOL"}.get(kind, "BYTES")


def _json_list(array: np.ndarray) -> list:
    if array.dtype.kind == "f":
        return [None if v != v else v for v in array.tolist()]
    return array.tolist()


class ServingApp:
    """One model, served; `predictor` is loaded at startup when not given."""

    def __init__(self, task: ServeTask, predictor=None, sink=None, store=None):
        self.task = task
        self.name = task.served_name
        self.version = str(task.version)
        self.predictor = predictor
        self.sink = sink  # where prediction logs and feedback go (ObjectStore or DirectorySink)
        self.store = store  # where the artifact comes from (s3:// URIs)
        self.ready = False
        self.batcher: MicroBatcher | None = None
        self.logger: PredictionLogger | None = None
        self.metrics: ServerMetrics | None = None
        self.mirror: Mirror | None = None
        self._in_flight = 0
        self._model_metadata: bytes = b""

    # ------------------------------------------------------------ lifecycle

    async def startup(self) -> None:
        if self.predictor is None:
            from .predictor import load_predictor

            self.predictor = await asyncio.to_thread(load_predictor, self.task, self.store)
        predictor = self.predictor
        skipped = await asyncio.to_thread(predictor.warm_up)
        if skipped:
            log.info("no warm-up prediction (%s); the first requests may be slower", skipped)
        self.metrics = ServerMetrics(self.name, self.version, predictor.columns, predictor.classes)
        self.metrics.info.labels(self.name, self.version, predictor.engine, self.task.role).set(1)
        settings = self.task.logging
        if settings.enabled and self.sink is None:
            log.warning("prediction logging is on but no storage is configured (KADENCE_S3_* or a log "
                        "directory): predictions are not logged and feedback is refused")
        if settings.enabled and self.sink is not None:
            self.logger = PredictionLogger(
                self.sink, self.task.namespace, self.task.inference_service, self.version,
                flush_records=settings.flush_records, flush_seconds=settings.flush_seconds,
                buffer_records=settings.buffer_records,
                on_written=self.metrics.log_records.labels(self.name, self.version, "written").inc,
                on_dropped=self.metrics.log_records.labels(self.name, self.version, "dropped").inc,
            )
        self.batcher = MicroBatcher(
            predictor.predict,
            lambda parts: concat_columns(parts, predictor.columns),
            max_rows=self.task.max_batch_size,
            max_wait=self.task.max_batch_wait_ms / 1000,
            in_flight=lambda: self._in_flight,
            observe_batch=self.metrics.observe_batch,
        )
        self.batcher.start()
        if self.task.mirror_to:
            metrics = self.metrics
            self.mirror = Mirror(self.task.mirror_to,
                                 lambda outcome: metrics.mirrored.labels(self.name, self.version, outcome).inc())
            await self.mirror.start()
        self._model_metadata = orjson.dumps(self._metadata())
        # Everything loaded so far (libraries, the model) lives as long as the process: keep it
        # out of the garbage collector's full passes, which otherwise stall requests for
        # tens of milliseconds when they come.
        gc.collect()
        gc.freeze()
        self.ready = True
        log.info("serving %s version %s with %s", self.name, self.version, predictor.engine)

    async def shutdown(self) -> None:
        self.ready = False
        if self.mirror is not None:
            await self.mirror.close()
        if self.batcher is not None:
            await self.batcher.stop()
        if self.logger is not None:
            await asyncio.to_thread(self.logger.close)
            log.info("prediction log: %d records written, %d dropped", self.logger.written_records,
                     self.logger.dropped_records)

    def _metadata(self) -> dict:
        predictor = self.predictor
        outputs = [{"name": "predict", "datatype": label_datatype(predictor.classes), "shape": [-1]}]
        if predictor.has_proba:
            outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(predictor.classes)]})
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": "onnxruntime_onnx" if predictor.engine == "onnxruntime" else "sklearn",
            "inputs": [{"name": c.name, "datatype": DATATYPE_OF_COLUMN[c.type], "shape": [-1]}
                       for c in predictor.columns],
            "outputs": outputs,
        }

    # ------------------------------------------------------------ ASGI

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as error:  # noqa: BLE001 - reported to the server, which exits
                    log.exception("model server failed to start")
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self.shutdown()
                finally:
                    await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope, receive, send) -> None:
        started = time.perf_counter()
        request_id = None
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                request_id = value.decode("latin-1").strip()[:MAX_REQUEST_ID_LENGTH] or None
                break
        state = {"id": request_id, "protocol": "other", "endpoint": "other"}
        try:
            status, body, extra = await self._route(scope, receive, state)
        except HTTPError as error:
            status, body, extra = error.status, orjson.dumps({"error": error.message}), error.headers
            if self.metrics is not None:
                self.metrics.error(state["protocol"], error.reason)
        except Exception as error:  # noqa: BLE001 - a bug must answer 500, not drop the connection
            log.exception("unexpected error handling %s %s", scope.get("method"), scope.get("path"))
            status, body, extra = 500, orjson.dumps({"error": f"internal error: {type(error).__name__}: {error}"}), []
            if self.metrics is not None:
                self.metrics.error(state["protocol"], "internal")
        request_id = state["id"] or uuid.uuid4().hex
        headers = [*JSON_HEADERS, (b"content-length", str(len(body)).encode()),
                   (b"x-request-id", request_id.encode("latin-1", "replace")), *extra]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        if self.metrics is not None and state["protocol"] != "other":
            measured = time.perf_counter() - started if state["endpoint"] in ("predict", "infer") and status < 400 else None
            self.metrics.request(state["protocol"], state["endpoint"], status, measured)

    async def _read_body(self, scope, receive) -> bytes:
        limit = self.task.max_body_bytes
        for key, value in scope["headers"]:
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    raise HTTPError(400, "the Content-Length header is not a number", "bad_header") from None
                if declared > limit:
                    raise HTTPError(413, f"the request body has {declared} bytes; the limit is {limit}", "too_large")
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise HTTPError(400, "the client went away before sending the whole body", "disconnected")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise HTTPError(413, f"the request body is larger than the limit of {limit} bytes", "too_large")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    # ------------------------------------------------------------ routing

    async def _route(self, scope, receive, state) -> tuple[int, bytes, list]:
        method, path = scope["method"], scope["path"]
        if path.startswith("/v1/"):
            state["protocol"] = "v1"
            return await self._route_v1(method, path[len("/v1/"):], scope, receive, state)
        if path == "/v2" or path.startswith("/v2/"):
            state["protocol"] = "v2"
            return await self._route_v2(method, path[len("/v2"):], scope, receive, state)
        if path == "/metrics":
            _allow(method, "GET")
            body, content_type = self.metrics.exposition() if self.metrics else (b"", "text/plain")
            return 200, body, [(b"content-type", content_type.encode())]
        raise HTTPError(404, f"no such endpoint: {path}", "not_found")

    def _check_model(self, name: str, version: str | None = None) -> None:
        if name != self.name:
            raise HTTPError(404, f"model {name!r} is not served here; this server serves {self.name!r}", "not_found")
        if version is not None and version != self.version:
            raise HTTPError(404, f"model {name!r} version {version!r} is not served here; this server serves "
                                 f"version {self.version}", "not_found")

    def _check_ready(self) -> None:
        if not self.ready:
            raise HTTPError(503, f"model {self.name!r} is not loaded yet", "not_ready")

    async def _route_v1(self, method, rest, scope, receive, state):
        if rest == "models":
            _allow(method, "GET")
            state["endpoint"] = "list"
            return 200, orjson.dumps({"models": [self.name]}), []
        if not rest.startswith("models/"):
            raise HTTPError(404, f"no such endpoint: /v1/{rest}", "not_found")
        target = rest[len("models/"):]
        if target.endswith(":predict"):
            _allow(method, "POST")
            state["endpoint"] = "predict"
            self._check_model(target[: -len(":predict")])
            return await self._v1_predict(scope, receive, state)
        if target.endswith("/feedback"):
            _allow(method, "POST")
            state["endpoint"] = "feedback"
            self._check_model(target[: -len("/feedback")])
            return await self._feedback(scope, receive, state)
        if ":" in target or "/" in target:
            raise HTTPError(404, f"no such endpoint: /v1/{rest} (verbs: :predict, /feedback)", "not_found")
        _allow(method, "GET")
        state["endpoint"] = "model"
        self._check_model(target)
        return 200, orjson.dumps({"name": self.name, "ready": self.ready}), []

    async def _route_v2(self, method, rest, scope, receive, state):
        if rest in ("", "/"):
            _allow(method, "GET")
            state["endpoint"] = "server"
            return 200, orjson.dumps({"name": "kadence", "version": __version__, "extensions": []}), []
        if rest == "/health/live":
            _allow(method, "GET")
            state["endpoint"] = "live"
            return 200, b'{"live":true}', []
        if rest == "/health/ready":
            _allow(method, "GET")
            state["endpoint"] = "ready"
            if not self.ready:
                return 503, b'{"ready":false}', []
            return 200, b'{"ready":true}', []
        if not rest.startswith("/models/"):
            raise HTTPError(404, f"no such endpoint: /v2{rest}", "not_found")
        parts = rest[len("/models/"):].split("/")
        name, version, action = parts[0], None, None
        remainder = parts[1:]
        if len(remainder) >= 2 and remainder[0] == "versions":
            version, remainder = remainder[1], remainder[2:]
        if len(remainder) == 1:
            action = remainder[0]
        elif remainder:
            raise HTTPError(404, f"no such endpoint: /v2{rest}", "not_found")
        if not name:
            raise HTTPError(404, "no model name in the path", "not_found")
        if action is None:
            _allow(method, "GET")
            state["endpoint"] = "metadata"
            self._check_model(name, version)
            self._check_ready()
            return 200, self._model_metadata, []
        if action == "ready":
            _allow(method, "GET")
            state["endpoint"] = "model_ready"
            self._check_model(name, version)
            if not self.ready:
                return 503, orjson.dumps({"name": self.name, "ready": False}), []
            return 200, orjson.dumps({"name": self.name, "ready": True}), []
        if action == "infer":
            _allow(method, "POST")
            state["endpoint"] = "infer"
            self._check_model(name, version)
            return await self._v2_infer(scope, receive, state)
        if action == "feedback":
            _allow(method, "POST")
            state["endpoint"] = "feedback"
            self._check_model(name, version)
            return await self._feedback(scope, receive, state)
        raise HTTPError(404, f"no such endpoint: /v2{rest} (actions: ready, infer, feedback)", "not_found")

    # ------------------------------------------------------------ predictions

    async def _predict(self, columns, rows: int, request_id: str, want_probabilities: bool):
        logged = (self.logger is not None and self.task.logging.sample_rate > 0
                  and (self.task.logging.sample_rate >= 1 or random.random() < self.task.logging.sample_rate))
        try:
            prediction, start, end = await self.batcher.predict(columns, rows, want_probabilities or logged)
        except (ValueError, TypeError, KeyError) as error:
            # The pipeline refused values the signature allowed (e.g. an unseen category).
            raise HTTPError(400, f"the model could not use this input: {error}", "model_refused") from None
        values = prediction.values[start:end]
        probabilities = prediction.probabilities[start:end] if prediction.probabilities is not None else None
        if logged:
            self.logger.add(self._log_lines(request_id, columns, rows, values, probabilities), rows)
        return values, probabilities

    def _log_lines(self, request_id, columns, rows, values, probabilities) -> bytes:
        """The request's prediction records (one per row, the monitoring log format) as JSON lines."""
        stamp = format_time(utc_now())
        names = self.predictor.column_names
        matrix = getattr(columns, "matrix", None)
        if matrix is not None:
            inputs = [dict(zip(names, row)) for row in matrix.tolist()]
        else:
            by_column = {name: column_values(columns[name]) for name in names}
            inputs = [{n: by_column[n][i] for n in names} for i in range(rows)]
        predicted = column_values(np.asarray(values))
        probs = probabilities.tolist() if probabilities is not None else None
        ids = [request_id] if rows == 1 else [f"{request_id}-{i}" for i in range(rows)]
        version, dumps = self.version, orjson.dumps
        lines = []
        for i in range(rows):
            outputs = {"prediction": predicted[i]}
            if probs is not None:
                outputs["probabilities"] = probs[i]
            lines.append(dumps({"requestId": ids[i], "time": stamp, "modelVersion": version, "inputs": inputs[i],
                                "outputs": outputs}, default=str))
        lines.append(b"")
        return b"\n".join(lines)

    async def _v1_predict(self, scope, receive, state):
        self._check_ready()
        self._in_flight += 1
        self.metrics.enter()
        try:
            body = await self._read_body(scope, receive)
            data = parse_json(body)
            try:
                columns, rows = decode_v1(data, self.predictor.columns)
            except InputError as error:
                raise HTTPError(400, str(error), "bad_input") from None
            request_id = state["id"] = state["id"] or uuid.uuid4().hex
            values, _ = await self._predict(columns, rows, request_id, want_probabilities=False)
            if self.mirror is not None:
                self.mirror.offer(f"/v1/models/{self.name}:predict", body, request_id)
            return 200, orjson.dumps({"predictions": _json_list(values)}), []
        finally:
            self._in_flight -= 1
            self.metrics.leave()

    async def _v2_infer(self, scope, receive, state):
        self._check_ready()
        self._in_flight += 1
        self.metrics.enter()
        try:
            body = await self._read_body(scope, receive)
            predictor = self.predictor
            try:
                header_length = _binary_header_length(scope)
                if header_length is None:
                    data = parse_json(body)
                else:
                    head, binary = split_binary_request(body, header_length)
                    data = attach_binary_inputs(parse_json(head), binary)
                request = decode_v2(data, predictor.columns, predictor.output_names)
            except InputError as error:
                raise HTTPError(400, str(error), "bad_input") from None
            request_id = state["id"] = request.id or state["id"] or uuid.uuid4().hex
            wanted = request.outputs or predictor.output_names
            values, probabilities = await self._predict(request.columns, request.rows, request_id,
                                                        want_probabilities="predict_proba" in wanted)
            outputs = []
            for name in wanted:
                if name == "predict":
                    outputs.append({"name": "predict", "datatype": label_datatype(predictor.classes),
                                    "shape": [request.rows], "data": _json_list(np.asarray(values))})
                else:
                    outputs.append({"name": "predict_proba", "datatype": "FP64",
                                    "shape": [request.rows, probabilities.shape[1]],
                                    "data": probabilities.ravel().tolist()})
            if self.mirror is not None:
                binary = {} if header_length is None else {"inference-header-content-length": str(header_length)}
                self.mirror.offer(f"/v2/models/{self.name}/infer", body, request_id, binary)
            response = {"model_name": self.name, "model_version": self.version, "id": request_id, "outputs": outputs}
            return 200, orjson.dumps(response), []
        finally:
            self._in_flight -= 1
            self.metrics.leave()

    # ------------------------------------------------------------ feedback

    def _check_label(self, label: Any, place: str) -> Any:
        classes = self.predictor.classes
        if label is None:
            raise HTTPError(400, f"{place}: \"label\" is missing or null", "bad_input")
        if classes is None:
            if type(label) not in (int, float) or not math.isfinite(label):
                raise HTTPError(400, f"{place}: the label of a regression model must be a finite number, got {label!r}", "bad_input")
            return label
        known = np.asarray(classes).tolist()
        if label in known and type(label) is type(known[0]):
            return label
        shown = ", ".join(json.dumps(k) for k in known[:20])
        raise HTTPError(400, f"{place}: label {json.dumps(label)} is not one of the model's classes ({shown})", "bad_input")

    async def _feedback(self, scope, receive, state):
        body = await self._read_body(scope, receive)
        data = parse_json(body)
        if not isinstance(data, dict):
            raise HTTPError(400, "the feedback body must be a JSON object: {\"requestId\": ..., \"label\": ...} "
                                 "or {\"feedback\": [...]}", "bad_input")
        if "feedback" in data:
            items = data["feedback"]
            if not isinstance(items, list) or not items:
                raise HTTPError(400, "\"feedback\" must be a non-empty list of {requestId, label}", "bad_input")
            if len(items) > MAX_FEEDBACK_ITEMS:
                raise HTTPError(400, f"\"feedback\" has {len(items)} items; at most {MAX_FEEDBACK_ITEMS} per request", "bad_input")
            places = [f"feedback[{i}]" for i in range(len(items))]
        else:
            items, places = [data], ["feedback"]
        labels = []
        for item, place in zip(items, places):
            if not isinstance(item, dict):
                raise HTTPError(400, f"{place} must be an object with requestId and label", "bad_input")
            request_id = item.get("requestId")
            if not isinstance(request_id, str) or not request_id or len(request_id) > MAX_REQUEST_ID_LENGTH:
                raise HTTPError(400, f"{place}: \"requestId\" must be a non-empty string of at most "
                                     f"{MAX_REQUEST_ID_LENGTH} characters", "bad_input")
            labels.append((request_id, self._check_label(item.get("label"), place)))
        if self.sink is None:
            raise HTTPError(503, "feedback storage is not configured on this server", "no_storage")
        try:
            key = await asyncio.to_thread(write_feedback, self.sink, self.task.namespace,
                                          self.task.inference_service, labels)
        except Exception as error:  # noqa: BLE001 - storage failures are the server's, not the caller's
            log.warning("storing feedback failed: %s", error)
            raise HTTPError(503, f"feedback could not be stored right now: {error}", "storage") from None
        return 200, orjson.dumps({"stored": len(labels), "key": key}), []


def _binary_header_length(scope) -> int | None:
    for key, value in scope["headers"]:
        if key == b"inference-header-content-length":
            try:
                return int(value)
            except ValueError:
                raise HTTPError(400, "the Inference-Header-Content-Length header is not a number", "bad_header") from None
    return None


def _allow(method: str, allowed: str) -> None:
    if method != allowed:
        raise HTTPError(405, f"method {method} is not allowed here; use {allowed}", "method",
                        [(b"allow", allowed.encode())])


def app_from_environment() -> ServingApp:
    """The app for uvicorn worker processes (`factory=True`): the task comes in KADENCE_SERVE_TASK."""
    import os

    from ..workloads.serve import build_app

    return build_app(ServeTask.model_validate_json(os.environ["KADENCE_SERVE_TASK"]))
