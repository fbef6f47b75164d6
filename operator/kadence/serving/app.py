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

Prometheus metrics are not served here: `kadence.serving.metrics.MetricsServer` answers
`GET /metrics` on a port of its own (the Deployment's `metrics` port), which the gateway
does not publish.

Feedback needs `Authorization: Bearer <token>` (the InferenceService's feedback-token
Secret, given to the server as KADENCE_FEEDBACK_TOKEN): 401 without it or with another
token; a server without a token refuses feedback (403). Feedback labels become training
rows and decide canaries, so nobody who merely reaches the server may write them.

Every response carries `X-Request-Id` (the caller's, or v2's body `id`, or a new one; ids are
1-256 printable ASCII characters). A request of several rows logs one record per row with the
id `<request id>-<row index>`; a single-row request logs under the request id itself.

Limits, each with a clear answer (`{"error": "..."}` naming the limit):
- 413: a body over `maxBodyBytes` (Content-Length is checked before reading), more rows than `maxRows`;
- 429 with Retry-After: `maxConcurrentRequests` predict/infer/feedback requests are being handled
  (health, readiness and metadata are never behind this gate);
- 408: the body did not arrive within `bodyTimeoutSeconds`; 504: no prediction within
  `predictTimeoutSeconds`; 503 with Retry-After: not ready, or feedback while storage is failing.
Other errors are 400 (bad input), 401/403 (feedback credential), 404, 405; a bug answers 500
with an error id that the server log carries next to the exception, never the exception text.

A plain ASGI callable rather than Starlette: on this machine a trivial JSON POST route
answered about 20,000 req/s raw against 5,000-10,000 through Starlette's routing and
Request/Response objects (uvicorn + httptools + uvloop, wrk at 32 connections), and the
model server's whole budget per request is a few hundred microseconds.
"""
from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import json
import logging
import math
import random
import re
import time
import uuid
from typing import Any

import numpy as np
import orjson

from .. import __version__
from ..domain.monitoring.logformat import format_time
from ..domain.data.pii import pseudonymize_record
from ..settings import Settings
from .batching import MicroBatcher
from .decoding import (
    DATATYPE_OF_COLUMN,
    InputError,
    attach_binary_inputs,
    column_values,
    concat_columns,
    decode_v1,
    decode_v2,
    declared_rows,
    split_binary_request,
)
from .metrics import ServerMetrics
from .mirror import Mirror
from .predictlog import PredictionLogger, StorageBreaker, utc_now, write_feedback
from .task import ServeTask

log = logging.getLogger(__name__)

JSON_HEADERS = [(b"content-type", b"application/json")]
MAX_FEEDBACK_ITEMS = 10_000
MAX_REQUEST_ID_LENGTH = 256
REQUEST_ID = re.compile(r"[\x20-\x7e]{1,%d}" % MAX_REQUEST_ID_LENGTH)
REQUEST_ID_RULE = f"1 to {MAX_REQUEST_ID_LENGTH} printable ASCII characters"
FEEDBACK_TOKEN_ENV = "KADENCE_FEEDBACK_TOKEN"
# Bodies above this are parsed and decoded on a worker thread, at most LARGE_BODY_LANES at a time:
# the event loop keeps answering health checks, and the Python objects a large JSON body expands
# into (tens of times its bytes for many tiny values) exist for a few requests at once, not for all.
LARGE_BODY_BYTES = 256 * 1024
LARGE_BODY_LANES = 2
RETRY_AFTER_OVERLOADED = b"1"
METRICS_PUSH_SECONDS = 1.0


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


def valid_request_id(value) -> bool:
    return isinstance(value, str) and REQUEST_ID.fullmatch(value) is not None


class ServingApp:
    """One model, served; `predictor` is loaded at startup when not given. `feedback_token`:
    the bearer token feedback must carry (None: feedback is refused)."""

    def __init__(self, task: ServeTask, predictor=None, sink=None, store=None, feedback_token: str | None = None,
                 pii_key: str | None = None):
        self.task = task
        # personal inputs are logged as keyed hashes (domain.data.pii), or not at all without a key
        self.personal = [c.name for c in task.inputs or [] if c.pii]
        self.pii_key = pii_key.encode() if pii_key else None
        self.name = task.served_name
        self.version = str(task.version)
        self.predictor = predictor
        self.sink = sink  # where prediction logs and feedback go (ObjectStore or DirectorySink)
        self.store = store  # where the artifact comes from (s3:// URIs)
        self.feedback_token = feedback_token.encode() if feedback_token else None
        self.breaker = StorageBreaker()
        self.ready = False
        self.batcher: MicroBatcher | None = None
        self.logger: PredictionLogger | None = None
        self.metrics: ServerMetrics | None = None
        self.mirror: Mirror | None = None
        self._in_flight = 0  # predict/infer requests (the batcher waits for company among them)
        self._admitted = 0  # requests past the concurrency gate (predict, infer, feedback)
        self._large_lanes: asyncio.Semaphore | None = None
        self._pusher: asyncio.Task | None = None
        self._shut_down = False
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
                buffer_records=settings.buffer_records, buffer_bytes=settings.buffer_bytes,
                on_written=self.metrics.log_records.labels(self.name, self.version, "written").inc,
                on_dropped=self.metrics.log_records.labels(self.name, self.version, "dropped").inc,
                on_buffered=self.metrics.log_buffered_bytes.labels(self.name, self.version).set,
                breaker=self.breaker,
            )
        if self.feedback_token is None:
            log.warning("no feedback token (%s): feedback requests are refused", FEEDBACK_TOKEN_ENV)
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
                                 lambda outcome: metrics.mirrored.labels(self.name, self.version, outcome).inc(),
                                 buffer_bytes=self.task.mirror_buffer_bytes)
            await self.mirror.start()
        self._large_lanes = asyncio.Semaphore(LARGE_BODY_LANES)
        self._pusher = asyncio.get_running_loop().create_task(self._push_metrics_forever())
        self._model_metadata = orjson.dumps(self._metadata())
        # Everything loaded so far (libraries, the model) lives as long as the process: keep it
        # out of the garbage collector's full passes, which otherwise stall requests for
        # tens of milliseconds when they come.
        gc.collect()
        gc.freeze()
        self.ready = True
        log.info("serving %s version %s with %s", self.name, self.version, predictor.engine)

    async def _push_metrics_forever(self) -> None:
        """Hand the per-request tallies to Prometheus every second even without traffic (with
        several workers the scrape reads the shared directory, not this process)."""
        while True:
            await asyncio.sleep(METRICS_PUSH_SECONDS)
            self.metrics.push()

    async def shutdown(self) -> None:
        """Runs once (a second call does nothing): the in-flight requests were answered by
        the server's graceful stop; send the queued shadow copies, then write the log."""
        if self._shut_down:
            return
        self._shut_down = True
        self.ready = False
        budget = self.task.shutdown
        if self._pusher is not None:
            self._pusher.cancel()
        if self.mirror is not None:
            await self.mirror.close(budget.mirror_seconds)
        if self.batcher is not None:
            await self.batcher.stop()
        if self.logger is not None:
            await asyncio.to_thread(self.logger.close, budget.flush_seconds)
            log.info("prediction log: %d records written, %d dropped", self.logger.written_records,
                     self.logger.dropped_records)
        if self.metrics is not None:
            self.metrics.push()

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
        state = {"id": None, "protocol": "other", "endpoint": "other"}
        try:
            for key, value in scope["headers"]:
                if key == b"x-request-id":
                    request_id = value.decode("latin-1").strip()
                    if not valid_request_id(request_id):
                        raise HTTPError(400, f"the X-Request-Id header must be {REQUEST_ID_RULE}", "bad_header")
                    state["id"] = request_id
                    break
            status, body, extra = await self._route(scope, receive, state)
        except HTTPError as error:
            status, body, extra = error.status, orjson.dumps({"error": error.message}), error.headers
            if self.metrics is not None:
                self.metrics.error(state["protocol"], error.reason)
        except Exception:  # noqa: BLE001 - a bug must answer 500, not drop the connection
            # The exception's text may hold inputs, paths or credentials: it goes to the log, and
            # the caller gets an id to quote.
            error_id = uuid.uuid4().hex[:16]
            log.exception("unexpected error %s handling %s %s", error_id, scope.get("method"), scope.get("path"))
            body = orjson.dumps({"error": f"internal error; the server log has the details under error id {error_id}",
                                 "errorId": error_id})
            status, extra = 500, []
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

    def _check_declared_length(self, scope) -> None:
        """413 from the Content-Length header alone, before the body is read or a slot taken."""
        limit = self.task.max_body_bytes
        for key, value in scope["headers"]:
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    raise HTTPError(400, "the Content-Length header is not a number", "bad_header") from None
                if declared > limit:
                    raise HTTPError(413, f"the request body has {declared} bytes; the limit is {limit} bytes "
                                         "(maxBodyBytes)", "too_large")

    @contextlib.contextmanager
    def _admission(self):
        """The concurrency gate of predict, infer and feedback: 429 when it is full."""
        limit = self.task.max_concurrent_requests
        if self._admitted >= limit:
            raise HTTPError(429, f"the server is handling {limit} requests, its limit (maxConcurrentRequests); "
                                 f"retry after {RETRY_AFTER_OVERLOADED.decode()} s", "overloaded",
                            [(b"retry-after", RETRY_AFTER_OVERLOADED)])
        self._admitted += 1
        try:
            yield
        finally:
            self._admitted -= 1

    async def _read_body(self, scope, receive) -> bytes:
        self._check_declared_length(scope)
        limit = self.task.max_body_bytes
        chunks, size = [], 0
        try:
            async with asyncio.timeout(self.task.body_timeout_seconds):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise HTTPError(400, "the client went away before sending the whole body", "disconnected")
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > limit:
                        raise HTTPError(413, f"the request body is larger than the limit of {limit} bytes "
                                             "(maxBodyBytes)", "too_large")
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            raise HTTPError(408, f"the request body did not arrive within {self.task.body_timeout_seconds:g} s "
                                 "(bodyTimeoutSeconds)", "body_timeout", [(b"connection", b"close")]) from None
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _decode(self, body: bytes, decode):
        """`decode(body)` inline for small bodies; on a worker thread, a few at a time, for large ones."""
        if len(body) <= LARGE_BODY_BYTES:
            return decode(body)
        async with self._large_lanes:
            return await asyncio.to_thread(decode, body)

    def _check_rows(self, rows: int) -> None:
        if rows > self.task.max_rows:
            raise HTTPError(413, f"the request has {rows} rows; the limit is {self.task.max_rows} rows per request "
                                 "(maxRows)", "too_many_rows")

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
            raise HTTPError(404, "metrics are served on the metrics port, not here", "not_found")
        raise HTTPError(404, f"no such endpoint: {path}", "not_found")

    def _check_model(self, name: str, version: str | None = None) -> None:
        if name != self.name:
            raise HTTPError(404, f"model {name!r} is not served here; this server serves {self.name!r}", "not_found")
        if version is not None and version != self.version:
            raise HTTPError(404, f"model {name!r} version {version!r} is not served here; this server serves "
                                 f"version {self.version}", "not_found")

    def _check_ready(self) -> None:
        if not self.ready:
            raise HTTPError(503, f"model {self.name!r} is not loaded yet, or the server is stopping", "not_ready",
                            [(b"retry-after", b"1")])

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
        timeout = self.task.predict_timeout_seconds
        try:
            prediction, start, end = await asyncio.wait_for(
                self.batcher.predict(columns, rows, want_probabilities or logged), timeout)
        except TimeoutError:
            raise HTTPError(504, f"no prediction within {timeout:g} s (predictTimeoutSeconds); the server is "
                                 "busy or the model is slow", "timeout") from None
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
        if self.personal:
            inputs = [pseudonymize_record(row, self.personal, self.pii_key) for row in inputs]
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

    def _decode_v1(self, body: bytes):
        data = parse_json(body)
        self._check_rows(declared_rows(data, "v1"))
        try:
            columns, rows = decode_v1(data, self.predictor.columns)
        except InputError as error:
            raise HTTPError(400, str(error), "bad_input") from None
        self._check_rows(rows)
        return columns, rows

    async def _v1_predict(self, scope, receive, state):
        self._check_ready()
        self._check_declared_length(scope)
        with self._admission():
            return await self._v1_predict_admitted(scope, receive, state)

    async def _v1_predict_admitted(self, scope, receive, state):
        self._in_flight += 1
        self.metrics.enter()
        try:
            body = await self._read_body(scope, receive)
            columns, rows = await self._decode(body, self._decode_v1)
            request_id = state["id"] = state["id"] or uuid.uuid4().hex
            values, _ = await self._predict(columns, rows, request_id, want_probabilities=False)
            if self.mirror is not None:
                self.mirror.offer(f"/v1/models/{self.name}:predict", body, request_id)
            return 200, orjson.dumps({"predictions": _json_list(values)}), []
        finally:
            self._in_flight -= 1
            self.metrics.leave()

    def _decode_v2(self, body: bytes, header_length: int | None):
        predictor = self.predictor
        try:
            if header_length is None:
                data = parse_json(body)
            else:
                head, binary = split_binary_request(body, header_length)
                data = parse_json(head)
                self._check_rows(declared_rows(data, "v2"))
                data = attach_binary_inputs(data, binary)
            self._check_rows(declared_rows(data, "v2"))
            request = decode_v2(data, predictor.columns, predictor.output_names)
        except InputError as error:
            raise HTTPError(400, str(error), "bad_input") from None
        self._check_rows(request.rows)
        if request.id is not None and not valid_request_id(request.id):
            raise HTTPError(400, f"\"id\" must be {REQUEST_ID_RULE}", "bad_input")
        return request

    async def _v2_infer(self, scope, receive, state):
        self._check_ready()
        self._check_declared_length(scope)
        with self._admission():
            return await self._v2_infer_admitted(scope, receive, state)

    async def _v2_infer_admitted(self, scope, receive, state):
        self._in_flight += 1
        self.metrics.enter()
        try:
            body = await self._read_body(scope, receive)
            predictor = self.predictor
            header_length = _binary_header_length(scope)
            request = await self._decode(body, lambda raw: self._decode_v2(raw, header_length))
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

    def _check_credential(self, scope) -> None:
        if self.feedback_token is None:
            raise HTTPError(403, f"feedback is disabled on this server: it has no feedback token "
                                 f"({FEEDBACK_TOKEN_ENV})", "feedback_disabled")
        given = b""
        for key, value in scope["headers"]:
            if key == b"authorization":
                given = value
                break
        scheme, _, token = given.partition(b" ")
        # compare_digest: the time taken does not tell how much of a guess was right.
        if scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), self.feedback_token):
            reason = "no bearer token" if not given else "the bearer token is not this server's"
            raise HTTPError(401, f"feedback needs the InferenceService's feedback token as "
                                 f"\"Authorization: Bearer <token>\": {reason}", "unauthorized",
                            [(b"www-authenticate", b'Bearer realm="kadence"')])

    async def _feedback(self, scope, receive, state):
        self._check_credential(scope)
        self._check_declared_length(scope)
        with self._admission():
            return await self._feedback_admitted(scope, receive, state)

    async def _feedback_admitted(self, scope, receive, state):
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
            if not valid_request_id(request_id):
                raise HTTPError(400, f"{place}: \"requestId\" must be {REQUEST_ID_RULE}", "bad_input")
            labels.append((request_id, self._check_label(item.get("label"), place)))
        if self.sink is None:
            raise HTTPError(503, "feedback storage is not configured on this server", "no_storage")
        if not self.breaker.try_acquire():
            # Storage failed moments ago: answer now rather than make every caller wait for a timeout.
            wait = max(1, math.ceil(self.breaker.retry_after() or 1))
            raise HTTPError(503, f"feedback storage is unavailable right now; retry after {wait} s",
                            "storage_unavailable", [(b"retry-after", str(wait).encode())])
        try:
            key = await asyncio.to_thread(write_feedback, self.sink, self.task.namespace,
                                          self.task.inference_service, labels)
        except Exception as error:  # noqa: BLE001 - storage failures are the server's, not the caller's
            self.breaker.failed()
            log.warning("storing feedback failed: %s", error)
            raise HTTPError(503, "feedback could not be stored right now; retry later", "storage_unavailable",
                            [(b"retry-after", str(math.ceil(self.breaker.cooldown)).encode())]) from None
        self.breaker.succeeded()
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


# The server's S3 client: a prediction log that waits minutes for a dead endpoint (minio's
# default) is lost at SIGKILL; short timeouts and no client retries (the logger retries with
# backoff, feedback answers 503) keep every wait within the shutdown budget.
S3_CONNECT_TIMEOUT_SECONDS = 2.0
S3_READ_TIMEOUT_SECONDS = 5.0


def server_http_client():
    import urllib3

    return urllib3.PoolManager(timeout=urllib3.Timeout(connect=S3_CONNECT_TIMEOUT_SECONDS,
                                                       read=S3_READ_TIMEOUT_SECONDS),
                               retries=urllib3.Retry(total=0), maxsize=10)


def build_app(task: ServeTask, predictor=None, env=None) -> ServingApp:
    """The ASGI app for `task`, with its storage (S3 from KADENCE_S3_* when configured) and its
    feedback token (KADENCE_FEEDBACK_TOKEN)."""
    from .predictlog import DirectorySink

    settings = Settings.from_env(env)
    store = None
    if settings.s3_endpoint:
        from ..storage import ObjectStore

        store = ObjectStore.from_env(http_client=server_http_client())
    sink = DirectorySink(task.logging.directory) if task.logging.directory else store
    return ServingApp(task, predictor=predictor, sink=sink, store=store,
                      feedback_token=(settings.feedback_token or "").strip() or None,
                      pii_key=(settings.pii_key or "").strip() or None)


def app_from_environment() -> ServingApp:
    """The app for uvicorn worker processes (`factory=True`): the task comes in KADENCE_SERVE_TASK."""
    serve_task = Settings.from_env().serve_task
    if not serve_task:
        raise SystemExit("KADENCE_SERVE_TASK is not set: the model server's task comes in it")
    return build_app(ServeTask.model_validate_json(serve_task))
