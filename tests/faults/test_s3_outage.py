"""Object storage unreachable (SeaweedFS SIGSTOPped, so connections hang rather than fail) for
two minutes under steady prediction traffic: predictions keep answering with a p99 within
twice the one before, feedback answers a fast 503, the server's memory stays bounded, and the
operator still reconciles what needs no storage; after SIGCONT every buffered prediction
record reaches S3 exactly once and none was dropped.

`KADENCE_FAULT_S3_OUTAGE_S` shortens the outage for a quick local run; the default is the
issue's 120 s. (The model server's own storage timeouts, 2 s connect / 5 s read and a 10 s
breaker, are not scaled with it: keep the outage well above them.)
"""

from __future__ import annotations

import collections
import os
import re
import signal
import threading
import time
import uuid

import httpx
import pytest

from .conftest import (ThreadGroup, MEMORY_LIMIT_BYTES, MODEL, namespace, operator_reconciles, percentile, predict_body,
                       wait_for)

pytestmark = pytest.mark.sandbox

OUTAGE_S = float(os.environ.get("KADENCE_FAULT_S3_OUTAGE_S", "120"))
BEFORE_S = 15.0
CLIENTS = 4
PACE_S = 0.1  # each client's pause between requests: about 40 requests/s in all
# Below this a p99 difference is scheduling noise on a shared machine (with the suite on two
# workers, the other worker's Jobs alone make p99s of tens of ms), not the server waiting: a
# request that waited on the unreachable S3 would take seconds (the client's timeouts).
P99_FLOOR_S = 0.050


class SteadyTraffic(ThreadGroup):
    """Paced one-row predictions on the server's own port, each with its own request id;
    (phase, latency, status) per request."""

    join_timeout = 60.0

    def __init__(self, url: str):
        self.url = url
        self.phase = "before"
        self.results: list[tuple[str, float, int | str, str]] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(CLIENTS)]

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                request_id = uuid.uuid4().hex
                phase = self.phase
                started = time.perf_counter()
                try:
                    status = client.post(f"{self.url}/v1/models/{MODEL}:predict", json=predict_body(),
                                         headers={"X-Request-Id": request_id}).status_code
                except httpx.HTTPError as error:
                    status = type(error).__name__
                with self.lock:
                    self.results.append((phase, time.perf_counter() - started, status, request_id))
                time.sleep(PACE_S)

    def latencies(self, phase: str) -> list[float]:
        with self.lock:
            return [latency for p, latency, status, _ in self.results if p == phase and status == 200]


def feedback(served, request_id: str) -> tuple[int | str, float, httpx.Headers | None]:
    started = time.perf_counter()
    try:
        with httpx.Client(timeout=30) as client:
            response = client.post(f"{served.url()}/v1/models/{MODEL}/feedback",
                                   json={"requestId": request_id, "label": 1},
                                   headers={"Authorization": f"Bearer {served.feedback_token}"})
        return response.status_code, time.perf_counter() - started, response.headers
    except httpx.HTTPError as error:
        return type(error).__name__, time.perf_counter() - started, None


def dropped_records(served) -> float:
    text = httpx.get(served.metrics_url(), timeout=10).text
    return sum(float(v) for v in re.findall(
        r'^kadence_serving_prediction_log_records_total\{[^}]*outcome="dropped"[^}]*\} ([0-9.e+]+)$', text, re.M))


@pytest.mark.timeout(int(OUTAGE_S) + 480)
def test_predictions_survive_a_storage_outage_and_every_buffered_record_is_written_once(fault_sandbox, served_model):
    sandbox, served = fault_sandbox, served_model
    wait_for(served.settled, timeout=240, message="the model servers to be settled (no rollout under way)")
    probe_namespace = namespace(sandbox, "outage")
    weed = sandbox.record("s3").process()
    assert weed is not None, "SeaweedFS is not running"
    server = served.server_process()
    feedback_answers = []
    rss = []

    with SteadyTraffic(served.url()) as traffic:
        time.sleep(BEFORE_S)
        answered_before = [r for r in traffic.results if r[2] == 200]
        assert answered_before, "no prediction answered before the outage"
        rss_at_start = server.memory_info().rss
        os.killpg(weed.pid, signal.SIGSTOP)
        try:
            traffic.phase = "outage"
            stopped_at = time.monotonic()
            reconciled = operator_reconciles(sandbox, probe_namespace, timeout=OUTAGE_S * 0.75)
            while time.monotonic() - stopped_at < OUTAGE_S:
                feedback_answers.append(feedback(served, answered_before[len(feedback_answers) % len(
                    answered_before)][3]))
                rss.append(server.memory_info().rss)
                time.sleep(2)
        finally:
            os.killpg(weed.pid, signal.SIGCONT)
        traffic.phase = "after"
        time.sleep(BEFORE_S)

    results = traffic.results
    failures = collections.Counter(str(status) for _, _, status, _ in results if status != 200)
    assert not failures, f"predictions failed during the outage: {dict(failures)}"
    # "Before" is the machine's own noise level at the time: on a shared machine it drifts, so the
    # outage is judged against the worse of the windows before it and after storage came back.
    before, during = traffic.latencies("before"), traffic.latencies("outage")
    p99_before = max(percentile(before, 0.99), percentile(traffic.latencies("after"), 0.99))
    p99_during = percentile(during, 0.99)
    for phase in ("before", "outage", "after"):
        values = traffic.latencies(phase)
        print(f"\n{phase}: n={len(values)} " + " ".join(
            f"p{int(q * 100)}={percentile(values, q) * 1000:.1f}ms" for q in (0.5, 0.9, 0.99)) +
            f" max={max(values) * 1000:.1f}ms  load {os.getloadavg()}")
    assert p99_during <= 2 * max(p99_before, P99_FLOOR_S), \
        f"p99 {p99_during * 1000:.1f} ms during the outage against {p99_before * 1000:.1f} ms around it"

    assert reconciled["status"] == "False"
    statuses = [status for status, _, _ in feedback_answers]
    assert set(statuses) == {503}, f"feedback during the outage answered {collections.Counter(statuses)}"
    assert all(headers is not None and "retry-after" in headers for _, _, headers in feedback_answers)
    fast = [latency for _, latency, _ in feedback_answers if latency < 1.0]
    assert len(fast) >= 0.7 * len(feedback_answers), \
        f"feedback did not answer at once: {sorted(round(latency, 2) for _, latency, _ in feedback_answers)}"

    assert max(rss) < MEMORY_LIMIT_BYTES
    print(f"\np99 before {p99_before * 1000:.1f} ms, during {p99_during * 1000:.1f} ms over {len(during)} "
          f"predictions; feedback 503s {len(statuses)} (median "
          f"{sorted(latency for _, latency, _ in feedback_answers)[len(feedback_answers) // 2] * 1000:.0f} ms); "
          f"server RSS {rss_at_start / 2**20:.0f} -> {max(rss) / 2**20:.0f} MiB")

    answered = {request_id for _, _, status, request_id in results if status == 200}

    def all_written():
        logged = collections.Counter(i for i in served.logged_request_ids() if i in answered)
        return set(logged) == answered and logged
    logged = wait_for(all_written, timeout=240, interval=2,
                      message="every answered prediction to reach S3 after the outage")
    assert max(logged.values()) == 1, [i for i, n in logged.items() if n > 1][:5]
    assert dropped_records(served) == 0
    status, _, _ = wait_for(lambda: (answer := feedback(served, answered_before[0][3]))[0] == 200 and answer,
                            timeout=120, interval=2, message="feedback to be accepted again")
