"""Several worker processes: one port, metrics summed over the workers, every log record kept at stop."""

from __future__ import annotations

import gzip
import json
from concurrent.futures import ThreadPoolExecutor

import httpx

from .conftest import CHURN_COLUMNS, Server

ROW = {"tenure": 3, "charges": 40.5, "plan": "basic", "paperless": True, "age": 30.0}


def test_two_workers_share_the_port_the_metrics_and_flush_their_logs(churn_model, tmp_path):
    log_dir = tmp_path / "logs"
    task = {"namespace": "tests", "inferenceService": "churn-workers", "model": "churn", "version": 3,
            "artifact": {"uri": str(churn_model.skops_path), "sha256": churn_model.sha256},
            "inputs": CHURN_COLUMNS, "workers": 2,
            "logging": {"directory": str(log_dir), "flushSeconds": 3600, "flushRecords": 100000}}
    server = Server(task, tmp_path).wait_ready()
    try:
        def send(i):
            with httpx.Client(base_url=server.url, timeout=30) as http:
                return http.post("/v1/models/churn:predict", json={"instances": [ROW]},
                                 headers={"X-Request-Id": f"w-{i}"}).status_code

        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(send, range(60))) == [200] * 60
        metrics = server.metrics()
        line = next(l for l in metrics.splitlines()
                    if l.startswith('kadence_serving_requests_total{code="200",endpoint="predict"'))
        assert float(line.rsplit(" ", 1)[1]) == 60.0
    finally:
        assert server.stop() == 0, server.log()
    ids = []
    for path in log_dir.rglob("*.jsonl.gz"):
        ids += [json.loads(line)["requestId"] for line in gzip.decompress(path.read_bytes()).splitlines()]
    assert sorted(ids) == sorted(f"w-{i}" for i in range(60))
