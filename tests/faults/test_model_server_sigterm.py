"""A model-server pod SIGTERMed under load, the way Kubernetes terminates one (a delete: the
endpoints drop it, its preStop hook runs, then the kubelet sends SIGTERM): every request sent
through the Service gets an answer, and every prediction the servers logged reaches S3 exactly
once, the terminated server's buffer included (it is written by its shutdown flush)."""

from __future__ import annotations

import collections
import threading
import time
import uuid

import httpx
import pytest

from .conftest import ThreadGroup, MODEL, REPLICAS, ServedModel, predict_body, wait_for

pytestmark = pytest.mark.sandbox

CLIENTS = 6


class Load(ThreadGroup):
    """Clients sending one-row predictions through the Service proxy, a fresh connection each
    (the proxy balances connections), each with its own X-Request-Id."""

    join_timeout = 90.0

    def __init__(self, url: str):
        self.url = url
        self.outcomes: dict[str, int | str] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._send, daemon=True) for _ in range(CLIENTS)]

    def _send(self) -> None:
        while not self.stop.is_set():
            request_id = uuid.uuid4().hex
            try:
                with httpx.Client(timeout=60) as client:
                    outcome = client.post(f"{self.url}/v1/models/{MODEL}:predict", json=predict_body(),
                                          headers={"X-Request-Id": request_id}).status_code
            except httpx.HTTPError as error:
                outcome = type(error).__name__
            with self.lock:
                self.outcomes[request_id] = outcome

    def answered(self) -> int:
        with self.lock:
            return sum(1 for o in self.outcomes.values() if o == 200)


def service_url(served: ServedModel) -> str:
    with served.sandbox.client() as client:
        service = client.get(f"/api/v1/namespaces/{served.namespace}/services/{served.name}").json()
    return f"http://127.0.0.1:{service['metadata']['annotations']['sandbox.kadence.dev/proxy-port']}"


def test_a_terminated_server_answers_what_it_accepted_and_flushes_every_logged_prediction(served_model):
    served = served_model
    assert len(served.ready_pods()) == REPLICAS >= 2, "another pod answers while one terminates"
    victim = served.pod()["metadata"]["name"]

    with Load(service_url(served)) as load:
        wait_for(lambda: load.answered() >= 100, timeout=120, message="traffic through the Service")
        with served.sandbox.client() as client:
            client.delete(f"/api/v1/namespaces/{served.namespace}/pods/{victim}").raise_for_status()
            wait_for(lambda: client.get(f"/api/v1/namespaces/{served.namespace}/pods/{victim}").status_code == 404,
                     timeout=120, message=f"pod {victim} to terminate")
        answered_at_exit = load.answered()
        wait_for(lambda: load.answered() >= answered_at_exit + 100, timeout=120,
                 message="traffic to go on after the termination")

    failures = collections.Counter(o for o in load.outcomes.values() if o != 200)
    assert not failures, f"requests without an answer or refused: {dict(failures)} of {len(load.outcomes)}"

    answered = set(load.outcomes)

    def all_logged():
        logged = collections.Counter(i for i in served.logged_request_ids() if i in answered)
        return answered <= set(logged) and logged
    logged = wait_for(all_logged, timeout=120, message="every answered prediction in the S3 prediction log")
    duplicated = {request_id: n for request_id, n in logged.items() if n > 1}
    assert not duplicated, f"predictions logged more than once: {list(duplicated.items())[:5]}"
    print(f"\n{len(answered)} requests, all answered and logged once; the terminated pod was {victim}")
    wait_for(lambda: len(served.ready_pods()) == REPLICAS, timeout=180, message="the replacement pod")
