"""The sandbox's MLflow tracking server (`kadence sandbox up --mlflow`).

A real `mlflow server` as a supervised component: runs, params, metrics and the model registry in
SQLite under `<state_dir>/mlflow/`, artifacts proxied by the server (`--serve-artifacts`, MLflow's
default) into the sandbox's own S3 bucket under `mlflow/`, through the S3 endpoint variables
boto3 reads (MLFLOW_S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) set to SeaweedFS's
admin keys. Clients (the training and sync Jobs, the user's `MlflowClient`) need only the tracking
URI: they never get S3 keys for it. The operator gets the URI as KADENCE_MLFLOW_TRACKING_URI.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx

from .s3 import S3Settings

COMPONENT = "mlflow"
ARTIFACT_PREFIX = "mlflow"


def mlflow_dir(state_dir: Path) -> Path:
    return state_dir / "mlflow"


def tracking_uri(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def argv(state_dir: Path, port: int, settings: S3Settings) -> list[str]:
    mlflow_dir(state_dir).mkdir(parents=True, exist_ok=True)
    return [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1",
            "--backend-store-uri", f"sqlite:///{mlflow_dir(state_dir) / 'mlflow.db'}",
            "--artifacts-destination", f"s3://{settings.bucket}/{ARTIFACT_PREFIX}"]


def env(settings: S3Settings) -> dict[str, str]:
    environment = dict(os.environ)
    environment["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), environment.get("PATH", "")])
    environment.update({
        "PYTHONUNBUFFERED": "1",
        "MLFLOW_S3_ENDPOINT_URL": f"http://{settings.endpoint}",
        "AWS_ACCESS_KEY_ID": settings.access_key,
        "AWS_SECRET_ACCESS_KEY": settings.secret_key,
        "AWS_DEFAULT_REGION": "us-east-1",
    })
    return environment


def answers(port: int) -> bool:
    try:
        return httpx.get(f"{tracking_uri(port)}/health", timeout=2).text.strip() == "OK"
    except httpx.HTTPError:
        return False


def available() -> bool:
    import importlib.util

    return importlib.util.find_spec("mlflow.server") is not None and importlib.util.find_spec("boto3") is not None
