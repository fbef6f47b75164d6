"""Hostile requests against a model server in the sandbox, on its own port: 8 MiB bodies,
1,000,000 rows, 50 concurrent oversized requests, CR/LF in request ids, slow bodies. Each gets
the server's clear answer (413/429/503/400/408), its health probes answer 200 throughout, its
resident memory stays under the pod's limit, and it serves normally afterwards."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import httpx
import orjson
import pytest

from .conftest import COLUMNS, MEMORY_LIMIT_BYTES, MODEL, predict_body

pytestmark = pytest.mark.sandbox

MIB = 1024 * 1024
CONCURRENT = 50


def raw_request(url: str, method: str, path: str, headers: dict[str, str], body_chunks=(), pause: float = 0.0,
                timeout: float = 60) -> tuple[int | None, bytes]:
    """Send a request over a plain socket, chunk by chunk (optionally pausing between chunks),
    and read whatever the server answers, even when it answers before the body is complete
    (a client library would stop at the first refused write). Returns (status or None, response)."""
    parsed = urlparse(url)
    with socket.create_connection((parsed.hostname, parsed.port), timeout=timeout) as sock:
        head = f"{method} {path} HTTP/1.1\r\nHost: {parsed.hostname}:{parsed.port}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "Connection: close\r\n\r\n"
        try:
            sock.sendall(head.encode("latin-1"))
            for chunk in body_chunks:
                if pause:
                    time.sleep(pause)
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early and closed: read its answer below
        answer = b""
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        except (ConnectionResetError, socket.timeout):
            pass
    if not answer.startswith(b"HTTP/1."):
        return None, answer
    return int(answer.split(b" ", 2)[1]), answer


def chunks_of(total: int, size: int = 256 * 1024):
    piece = b"0" * size
    sent = 0
    while sent < total:
        yield piece[: min(size, total - sent)]
        sent += size


class Watch:
    """Polls the health probes and samples the server's memory until stopped."""

    def __init__(self, served):
        self.served, self.url = served, served.url()
        self.health: list[tuple[str, int | str]] = []
        self.peak_rss = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        process = self.served.server_process()
        with httpx.Client(timeout=5) as client:
            while not self.stop.is_set():
                for probe in ("/v2/health/live", "/v2/health/ready"):
                    try:
                        self.health.append((probe, client.get(self.url + probe).status_code))
                    except httpx.HTTPError as error:
                        self.health.append((probe, type(error).__name__))
                try:
                    rss = process.memory_info().rss + sum(c.memory_info().rss for c in process.children(True))
                    self.peak_rss = max(self.peak_rss, rss)
                except Exception:  # noqa: BLE001 - a child ending between the two calls
                    pass
                time.sleep(0.1)

    def __enter__(self) -> "Watch":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


@pytest.fixture(scope="module")
def watched(served_model):
    with Watch(served_model) as watch:
        yield served_model, watch
    failures = [h for h in watch.health if h[1] != 200]
    assert watch.health and not failures, f"health probes failed under hostile load: {failures[:10]}"
    assert 0 < watch.peak_rss < MEMORY_LIMIT_BYTES, f"peak RSS {watch.peak_rss / MIB:.0f} MiB over the pod's limit"
    with httpx.Client(timeout=10) as client:
        after = client.post(f"{served_model.url()}/v1/models/{MODEL}:predict", json=predict_body(2))
    assert after.status_code == 200, after.text


def test_an_8_mib_body_is_refused_with_413_before_it_is_read(watched):
    served, _ = watched
    status, answer = raw_request(served.url(), "POST", f"/v1/models/{MODEL}:predict",
                                 {"Content-Type": "application/json", "Content-Length": str(8 * MIB)},
                                 chunks_of(8 * MIB))
    assert status == 413, answer[:300]
    assert b"limit" in answer


def test_a_million_rows_are_refused_with_413_even_streamed_without_a_length(watched):
    served, _ = watched
    rows = b"[" + b",".join([b"[0,0,0]"] * 1_000_000) + b"]"
    body = b'{"instances": ' + rows + b"}"

    def chunked():
        for start in range(0, len(body), 64 * 1024):
            piece = body[start:start + 64 * 1024]
            yield b"%x\r\n%s\r\n" % (len(piece), piece)
        yield b"0\r\n\r\n"

    status, answer = raw_request(served.url(), "POST", f"/v1/models/{MODEL}:predict",
                                 {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}, chunked())
    assert status == 413, answer[:300]
    with httpx.Client(timeout=30) as client:  # under the byte limit but over the row limit
        rows_only = client.post(f"{served.url()}/v1/models/{MODEL}:predict",
                                content=orjson.dumps({"instances": [[0, 0, 0]] * 20_000}),
                                headers={"Content-Type": "application/json"})
    assert rows_only.status_code == 413 and "rows" in rows_only.json()["error"], rows_only.text


def test_fifty_concurrent_oversized_requests_are_each_answered_with_a_refusal(watched):
    served, _ = watched
    url = served.url()

    def oversized(_):
        return raw_request(url, "POST", f"/v1/models/{MODEL}:predict",
                           {"Content-Type": "application/json", "Content-Length": str(6 * MIB)},
                           chunks_of(6 * MIB))[0]

    with ThreadPoolExecutor(CONCURRENT) as pool:
        statuses = list(pool.map(oversized, range(CONCURRENT)))
    assert set(statuses) <= {413, 429, 503}, statuses
    assert statuses.count(413) >= 1


def test_cr_lf_in_request_ids_is_refused_with_400_and_never_reaches_a_header(watched):
    served, _ = watched
    injected = "abc\r\nSet-Cookie: stolen=1"
    with httpx.Client(timeout=10) as client:
        body = {"id": injected, "inputs": [{"name": c, "datatype": "FP64", "shape": [1], "data": [0.5]}
                                           for c in COLUMNS]}
        infer = client.post(f"{served.url()}/v2/models/{MODEL}/infer", json=body)
        assert infer.status_code == 400, infer.text
        assert "set-cookie" not in infer.headers and "\r" not in infer.headers.get("x-request-id", "")
        feedback = client.post(f"{served.url()}/v1/models/{MODEL}/feedback",
                               json={"requestId": injected, "label": 1},
                               headers={"Authorization": f"Bearer {served.feedback_token}"})
        assert feedback.status_code == 400, feedback.text
    status, answer = raw_request(served.url(), "POST", f"/v1/models/{MODEL}:predict",
                                 {"Content-Type": "application/json", "X-Request-Id": "bad\x01id",
                                  "Content-Length": str(len(orjson.dumps(predict_body())))},
                                 [orjson.dumps(predict_body())])
    assert status == 400, answer[:300]


def test_a_slow_body_is_cut_off_with_408_while_others_are_served(watched):
    served, _ = watched
    body = orjson.dumps(predict_body())
    results = {}

    def slow():
        results["slow"] = raw_request(served.url(), "POST", f"/v1/models/{MODEL}:predict",
                                      {"Content-Type": "application/json", "Content-Length": str(len(body))},
                                      [bytes([b]) for b in body], pause=0.5, timeout=120)

    sender = threading.Thread(target=slow)
    sender.start()
    with httpx.Client(timeout=10) as client:
        while sender.is_alive():
            answered = client.post(f"{served.url()}/v1/models/{MODEL}:predict", json=predict_body())
            assert answered.status_code == 200, answered.text
            time.sleep(0.2)
    sender.join()
    status, answer = results["slow"]
    assert status == 408, answer[:300]


def test_feedback_without_the_inferenceservices_token_is_401_and_with_it_is_stored(served_model):
    served = served_model
    label = {"requestId": "hostile-feedback-1", "label": 1}
    url = f"{served.url()}/v1/models/{MODEL}/feedback"
    with httpx.Client(timeout=10) as client:
        missing = client.post(url, json=label)
        forged = client.post(url, json=label, headers={"Authorization": "Bearer " + "x" * len(served.feedback_token)})
        stored = client.post(url, json=label, headers={"Authorization": f"Bearer {served.feedback_token}"})
    assert missing.status_code == 401 and forged.status_code == 401, (missing.text, forged.text)
    assert missing.headers["www-authenticate"] == 'Bearer realm="kadence"'
    assert stored.status_code == 200 and stored.json()["stored"] == 1, stored.text
