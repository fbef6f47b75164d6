"""Fixtures for the model server tests: small real models and real servers (the SeaweedFS S3
server, `s3_settings` and `store`, is the session-wide one of tests/conftest.py).

Servers are `kadence serve` processes on free ports, started once per session where the
tests only read from them.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from kadence.sandbox import supervisor

BIN = Path(sys.executable).parent

CHURN_COLUMNS = [
    {"name": "tenure", "type": "int"},
    {"name": "charges", "type": "float"},
    {"name": "plan", "type": "category"},
    {"name": "paperless", "type": "bool"},
    {"name": "age", "type": "float", "nullable": True},
]


def churn_frame(rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "tenure": rng.integers(0, 72, rows),
        "charges": rng.normal(60, 20, rows).round(2),
        "plan": rng.choice(["basic", "pro", "max"], rows),
        "paperless": rng.random(rows) < 0.5,
        "age": np.where(rng.random(rows) < 0.1, np.nan, rng.normal(45, 12, rows).round(1)),
    })
    signal_ = (frame.tenure < 24) * 1.0 + (frame.plan == "basic") * 0.8 + frame.paperless * 0.3 + rng.normal(0, 0.3, rows)
    return frame, (signal_ > 1.0).astype(int).to_numpy()


def churn_pipeline(frame, labels):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    features = ColumnTransformer([
        ("plan", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
        ("numbers", StandardScaler(), ["tenure", "charges"]),
        ("flags", "passthrough", ["paperless"]),
        ("age", SimpleImputer(strategy="median"), ["age"]),
    ])
    pipeline = Pipeline([("features", features), ("model", RandomForestClassifier(n_estimators=25, max_depth=6, random_state=0))])
    return pipeline.fit(frame, labels)


@dataclass
class ModelFiles:
    pipeline: object
    skops_path: Path
    sha256: str
    onnx_path: Path | None
    onnx_sha256: str | None
    holdout: pd.DataFrame


def _save(pipeline, holdout, directory: Path, name: str, compile_it: bool) -> ModelFiles:
    import skops.io as sio

    from kadence.serving.compiled import verify_compiled

    data = sio.dumps(pipeline)
    skops_path = directory / f"{name}.skops"
    skops_path.write_bytes(data)
    onnx_path = onnx_sha = None
    if compile_it:
        ok, diff, onnx_bytes = verify_compiled(pipeline, holdout, 1e-6)
        assert ok, f"the test model should compile within tolerance, got {diff}"
        onnx_path = directory / f"{name}.onnx"
        onnx_path.write_bytes(onnx_bytes)
        onnx_sha = hashlib.sha256(onnx_bytes).hexdigest()
    return ModelFiles(pipeline, skops_path, hashlib.sha256(data).hexdigest(), onnx_path, onnx_sha, holdout)


@pytest.fixture(scope="session")
def churn_model(tmp_path_factory) -> ModelFiles:
    frame, labels = churn_frame(600, seed=1)
    holdout, _ = churn_frame(200, seed=2)
    return _save(churn_pipeline(frame, labels), holdout, tmp_path_factory.mktemp("models"), "churn", compile_it=True)


FEEDBACK_TOKEN = "test-feedback-token-0123456789"


class Server:
    """A `kadence serve` process: the protocol on `url`, Prometheus on `metrics_url`; feedback
    needs `FEEDBACK_TOKEN` (`auth`) unless `env` says otherwise."""

    def __init__(self, task: dict, directory: Path, env: dict | None = None, args: list[str] = ()):
        self.port = supervisor.free_port()
        self.metrics_port = supervisor.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        self.task_path = directory / f"task-{self.port}.json"
        self.task_path.write_text(json.dumps(task))
        self.log_path = directory / f"server-{self.port}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [str(BIN / "kadence"), "serve", "--task", str(self.task_path), "--host", "127.0.0.1", "--port", str(self.port),
             "--metrics-port", str(self.metrics_port), *args],
            stdout=self._log, stderr=subprocess.STDOUT,
            env={**os.environ, "KADENCE_FEEDBACK_TOKEN": FEEDBACK_TOKEN, **(env or {})},
        )

    def metrics(self) -> str:
        return httpx.get(self.metrics_url, timeout=10).text

    def wait_ready(self, timeout: float = 180) -> "Server":  # generous: a loaded shared machine
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"the server did not get ready:\n{self.log()}")

    def wait_exit(self, timeout: float = 60) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.wait_exit(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.wait_exit(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def upload(store, path: Path, key: str) -> str:
    store.ensure_bucket()
    return store.put_bytes(key, path.read_bytes())


def churn_task(model: ModelFiles, store, *, compiled: bool, isvc: str, **logging) -> dict:
    artifact_uri = upload(store, model.skops_path, f"models/{isvc}/model.skops")
    task = {
        "namespace": "tests", "inferenceService": isvc, "model": "churn", "version": 3,
        "task": "classification",
        "artifact": {"uri": artifact_uri, "sha256": model.sha256},
        "inputs": CHURN_COLUMNS,
        "maxBodyBytes": 65536,
        "logging": {"flushSeconds": 0.5, **logging},
    }
    if compiled:
        task["compiled"] = {"uri": upload(store, model.onnx_path, f"models/{isvc}/model.onnx"),
                            "sha256": model.onnx_sha256, "verified": True, "tolerance": 1e-6}
    return task


AUTH = {"Authorization": f"Bearer {FEEDBACK_TOKEN}"}


def s3_env(settings) -> dict:
    return settings.env()


@pytest.fixture(scope="session", params=["onnxruntime", "scikit-learn"])
def churn_server(request, churn_model, store, s3_settings, tmp_path_factory):
    """One server per engine, sharing the protocol tests."""
    compiled = request.param == "onnxruntime"
    isvc = f"churn-{'onnx' if compiled else 'sklearn'}"
    task = churn_task(churn_model, store, compiled=compiled, isvc=isvc)
    server = Server(task, tmp_path_factory.mktemp(isvc), env=s3_env(s3_settings)).wait_ready()
    server.engine = request.param
    server.isvc = isvc
    yield server
    server.stop()
