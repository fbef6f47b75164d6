"""Prometheus metrics of the model server, labelled by model and version.

Per-feature input summaries (count, sum, sum of squares, missing; category counts)
let monitoring compute means and spreads per window from plain counters. With several
worker processes the metrics go through prometheus_client's multiprocess mode
(PROMETHEUS_MULTIPROC_DIR), so one scrape sees all workers.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Callable

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
MAX_CATEGORIES_PER_FEATURE = 50
OTHER_CATEGORY = "__other__"
PUSH_INTERVAL_SECONDS = 1.0
log = logging.getLogger(__name__)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class ServerMetrics:
    def __init__(self, model: str, version: str, columns, classes=None):
        self.registry = CollectorRegistry()
        self.model, self.version = model, version
        labels = ("model", "version")
        r = self.registry
        self.requests = Counter("kadence_serving_requests", "Requests answered, by protocol, endpoint and HTTP status.",
                                (*labels, "protocol", "endpoint", "code"), registry=r)
        self.errors = Counter("kadence_serving_errors", "Requests refused or failed, by reason.",
                              (*labels, "protocol", "reason"), registry=r)
        self.latency = Histogram("kadence_serving_request_duration_seconds", "Time from request to response.",
                                 (*labels, "protocol"), buckets=LATENCY_BUCKETS, registry=r)
        self.batch_rows = Histogram("kadence_serving_batch_rows", "Rows per predict call (after micro-batching).",
                                    labels, buckets=BATCH_BUCKETS, registry=r)
        self.in_flight = Gauge("kadence_serving_in_flight", "Prediction requests being handled.", labels,
                               registry=r, multiprocess_mode="livesum")
        self.rows = Counter("kadence_serving_rows", "Rows predicted.", labels, registry=r)
        self.classes_total = Counter("kadence_serving_predicted_class", "Predictions per class.",
                                     (*labels, "class"), registry=r)
        self.values = Histogram("kadence_serving_prediction_value", "Predicted values (regressors).", labels,
                                buckets=(-1e6, -1e4, -1e2, -10, -1, 0, 1, 10, 1e2, 1e4, 1e6), registry=r)
        feature = (*labels, "feature")
        self.feature_count = Counter("kadence_serving_feature_values", "Non-missing input values per feature.", feature, registry=r)
        # A gauge: sums of negative values go down, which a counter may not.
        self.feature_sum = Gauge("kadence_serving_feature_sum", "Sum of numeric input values per feature.", feature,
                                 registry=r, multiprocess_mode="sum")
        self.feature_squares = Counter("kadence_serving_feature_squares", "Sum of squared numeric input values per feature.", feature, registry=r)
        self.feature_missing = Counter("kadence_serving_feature_missing", "Missing input values per feature.", feature, registry=r)
        self.feature_category = Counter("kadence_serving_feature_category", "Input values per category (top 50, then __other__).",
                                        (*feature, "value"), registry=r)
        self.log_records = Counter("kadence_serving_prediction_log_records", "Prediction log records, by outcome.",
                                   (*labels, "outcome"), registry=r)
        self.log_buffered_bytes = Gauge("kadence_serving_prediction_log_buffered_bytes",
                                        "Bytes of prediction log records waiting to be written.", labels,
                                        registry=r, multiprocess_mode="livesum")
        self.mirrored = Counter("kadence_serving_mirrored_requests", "Copies sent to the shadow, by outcome.",
                                (*labels, "outcome"), registry=r)
        self.info = Gauge("kadence_serving_model_info", "The model this server serves (value 1).",
                          (*labels, "engine", "role"), registry=r, multiprocess_mode="max")
        self._numeric = [c.name for c in columns if c.type in ("float", "int", "bool")]
        self._categorical = [c.name for c in columns if c.type in ("string", "category")]
        self._seen_categories: dict[str, set] = {name: set() for name in self._categorical}
        self._in_flight = self.in_flight.labels(model, version)
        self._batch_rows = self.batch_rows.labels(model, version)
        self._rows = self.rows.labels(model, version)
        self._latency: dict[str, object] = {}
        self._requests: dict[tuple, object] = {}
        self._feature_children = {
            name: (self.feature_count.labels(model, version, name), self.feature_sum.labels(model, version, name),
                   self.feature_squares.labels(model, version, name), self.feature_missing.labels(model, version, name))
            for name in self._numeric + self._categorical
        }
        self._value_child = self.values.labels(model, version)
        self._pending_lock = threading.Lock()
        self._push_lock = threading.Lock()  # the scrape thread and the request path both push
        self._pending_classes: dict = {}
        self._pending_values: list[float] = []
        self._pending_categories: dict[str, dict] = {name: {} for name in self._categorical}
        self._reset_numeric()
        self._last_push = time.monotonic()
        self._class_children = {}
        if classes is not None:
            for value in classes:
                self._class_children[str(value)] = self.classes_total.labels(model, version, str(value))

    def request(self, protocol: str, endpoint: str, code: int, seconds: float | None) -> None:
        key = (protocol, endpoint, code)
        child = self._requests.get(key)
        if child is None:
            child = self._requests[key] = self.requests.labels(self.model, self.version, protocol, endpoint, str(code))
        child.inc()
        if seconds is not None:
            latency = self._latency.get(protocol)
            if latency is None:
                latency = self._latency[protocol] = self.latency.labels(self.model, self.version, protocol)
            latency.observe(seconds)

    def error(self, protocol: str, reason: str) -> None:
        self.errors.labels(self.model, self.version, protocol, reason).inc()

    def enter(self) -> None:
        self._in_flight.inc()

    def leave(self) -> None:
        self._in_flight.dec()

    def observe_batch(self, rows: int, columns: dict, prediction) -> None:
        """Per predict call. Feature and class tallies are summed in NumPy here and handed to
        the Prometheus counters at most once a second (and before every scrape): a counter
        update takes a lock, and per-feature updates per request would cost more than the
        prediction itself."""
        self._batch_rows.observe(rows)
        self._rows.inc(rows)
        with self._pending_lock:
            values = prediction.values
            if self._class_children:
                for label in np.asarray(values).tolist():
                    self._pending_classes[label] = self._pending_classes.get(label, 0) + 1
            else:
                self._pending_values.extend(np.asarray(values, dtype=np.float64).ravel()[:4096].tolist())
            if self._numeric:
                matrix = getattr(columns, "matrix", None)
                if matrix is None or matrix.shape[1] != len(self._numeric):
                    matrix = np.column_stack([self._as_float(columns[name]) for name in self._numeric])
                present = ~np.isnan(matrix)
                clean = np.where(present, matrix, 0.0)
                self._pending_count += present.sum(axis=0)
                self._pending_sum += clean.sum(axis=0)
                self._pending_squares += (clean * clean).sum(axis=0)
                self._pending_missing += matrix.shape[0] - present.sum(axis=0)
            for name in self._categorical:
                tally = self._pending_categories[name]
                for value in columns[name].tolist():
                    tally[value] = tally.get(value, 0) + 1
        if time.monotonic() - self._last_push >= PUSH_INTERVAL_SECONDS:
            self.push()

    @staticmethod
    def _as_float(array: np.ndarray) -> np.ndarray:
        if array.dtype == object:
            return np.array([np.nan if v is None else float(v) for v in array], dtype=np.float64)
        return array.astype(np.float64, copy=False)

    def push(self) -> None:
        """Move the tallies into the Prometheus metrics."""
        with self._push_lock:
            self._push()

    def _push(self) -> None:
        with self._pending_lock:
            self._last_push = time.monotonic()
            classes, self._pending_classes = self._pending_classes, {}
            values, self._pending_values = self._pending_values, []
            numeric = (self._pending_count, self._pending_sum, self._pending_squares, self._pending_missing)
            self._reset_numeric()
            categories = self._pending_categories
            self._pending_categories = {name: {} for name in self._categorical}
        for label, count in classes.items():
            child = self._class_children.get(str(label))
            if child is not None:
                child.inc(count)
        for value in values:
            self._value_child.observe(value)
        for j, name in enumerate(self._numeric):
            count, total, squares, missing = self._feature_children[name]
            if numeric[0][j]:
                count.inc(float(numeric[0][j]))
                total.inc(float(numeric[1][j]))
                squares.inc(float(numeric[2][j]))
            if numeric[3][j]:
                missing.inc(float(numeric[3][j]))
        for name, tally in categories.items():
            count, _, _, missing = self._feature_children[name]
            seen = self._seen_categories[name]
            for value, n in tally.items():
                if value is None:
                    missing.inc(n)
                    continue
                count.inc(n)
                if value not in seen and len(seen) >= MAX_CATEGORIES_PER_FEATURE:
                    value = OTHER_CATEGORY
                else:
                    seen.add(value)
                self.feature_category.labels(self.model, self.version, name, str(value)).inc(n)

    def _reset_numeric(self) -> None:
        k = len(self._numeric)
        self._pending_count = np.zeros(k)
        self._pending_sum = np.zeros(k)
        self._pending_squares = np.zeros(k)
        self._pending_missing = np.zeros(k)

    def exposition(self) -> tuple[bytes, str]:
        self.push()
        directory = multiprocess_dir()
        if directory:
            return multiprocess_exposition(directory)
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def multiprocess_exposition(directory: str) -> tuple[bytes, str]:
    """All worker processes' metrics (prometheus_client's multiprocess mode)."""
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)
    return generate_latest(registry), CONTENT_TYPE_LATEST


class MetricsServer:
    """`GET /metrics` on its own port, answered from a thread of its own.

    Not on the serving port: a gateway that publishes the model must not publish input
    statistics, and scrapes keep answering while the event loop is saturated by requests.
    Anything but GET /metrics is 404 (405 for other methods on /metrics)."""

    def __init__(self, host: str, port: int, exposition: Callable[[], tuple[bytes, str]]):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self, status: int, body: bytes, content_type: str, extra: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in (extra or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path.split("?", 1)[0] != "/metrics":
                    self._answer(404, b'{"error": "only /metrics is served on this port"}', "application/json")
                    return
                try:
                    body, content_type = exposition()
                except Exception:  # noqa: BLE001 - a scrape must not take the thread down
                    log.exception("rendering /metrics failed")
                    self._answer(500, b'{"error": "rendering the metrics failed; see the server log"}',
                                 "application/json")
                    return
                self._answer(200, body, content_type)

            do_HEAD = do_GET

            def _refuse(self) -> None:
                self._answer(405, b'{"error": "only GET is allowed on this port"}', "application/json",
                             {"Allow": "GET"})

            do_POST = do_PUT = do_DELETE = do_PATCH = _refuse

            def log_message(self, format, *args) -> None:  # noqa: A002 - quiet: one line per scrape is noise
                pass

        family = socket.AF_INET6 if ":" in host else socket.AF_INET

        class Server(ThreadingHTTPServer):
            address_family = family
            daemon_threads = True

        self._server = Server((host, port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-server", daemon=True)

    def start(self) -> "MetricsServer":
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
