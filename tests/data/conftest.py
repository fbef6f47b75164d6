"""Shared fixtures of the data tests: one SeaweedFS S3 server for the whole session."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kadence.storage import ObjectStore, StorageConfig

GRPC_OFFSET = 10000


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports(count: int) -> list[int]:
    chosen: list[int] = []
    while len(chosen) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port + GRPC_OFFSET < 65536 and port not in chosen and _port_free(port + GRPC_OFFSET):
            chosen.append(port)
    return chosen


def _weed() -> str:
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.exists() else shutil.which("weed")
    if not found:
        pytest.skip("SeaweedFS (weed) is not installed")
    return found


@pytest.fixture(scope="session")
def s3_config(tmp_path_factory) -> StorageConfig:
    """A real S3 endpoint (SeaweedFS) with credentials and a `kadence` bucket."""
    root = tmp_path_factory.mktemp("seaweedfs")
    s3_port, master_port, volume_port, filer_port = _free_ports(4)
    access_key, secret_key = "data-tests", secrets.token_hex(16)
    identities = root / "identities.json"
    identities.write_text(json.dumps({"identities": [{
        "name": "kadence", "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    (root / "data").mkdir()
    log = open(root / "weed.log", "wb")
    process = subprocess.Popen(
        [_weed(), "server", f"-dir={root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
         f"-master.port={master_port}", f"-volume.port={volume_port}", f"-filer.port={filer_port}",
         "-s3", f"-s3.port={s3_port}", f"-s3.config={identities}", "-s3.port.iceberg=0", "-s3.port.lance=0",
         "-master.telemetry=false", "-master.volumeSizeLimitMB=256",
         "-volume.max=0"],  # volumes as disk space allows: every bucket (collection) grows its own
        stdout=log, stderr=subprocess.STDOUT)
    config = StorageConfig(endpoint=f"127.0.0.1:{s3_port}", access_key=access_key, secret_key=secret_key,
                           bucket="kadence")
    store = ObjectStore(config)
    deadline = time.monotonic() + 90
    while True:
        try:
            store.ensure_bucket()
            store.put_bytes("probe", b"ok")
            break
        except Exception:  # noqa: BLE001 - not up yet
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"SeaweedFS did not start: {(root / 'weed.log').read_text()[-2000:]}")
            time.sleep(0.5)
    yield config
    # SIGTERM makes weed wait 20-30 s for heartbeats; its data is a throwaway temp dir
    process.kill()
    process.wait()
    log.close()


@pytest.fixture(scope="session")
def store(s3_config) -> ObjectStore:
    return ObjectStore(s3_config)


@pytest.fixture
def s3_env(s3_config, monkeypatch):
    for key, value in s3_config.as_env().items():
        monkeypatch.setenv(key, value)
    return {**os.environ, **s3_config.as_env()}
