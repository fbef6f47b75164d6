"""Fixtures for the training tests: a real SeaweedFS S3 (one per session) and small data."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

GRPC_OFFSET = 10000


def _free_port_pair() -> int:
    """A port whose gRPC partner (port + 10000) is free as well."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + GRPC_OFFSET >= 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + GRPC_OFFSET))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair")


def _weed() -> str:
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else "weed"


@pytest.fixture(scope="session")
def s3_env(tmp_path_factory):
    """KADENCE_S3_* settings of a SeaweedFS started for this session."""
    from minio import Minio

    data_dir = tmp_path_factory.mktemp("seaweedfs")
    ports: list[int] = []
    while len(ports) < 4:
        port = _free_port_pair()
        if port not in ports and all(abs(port - p) != GRPC_OFFSET for p in ports):
            ports.append(port)
    s3, master, volume, filer = ports
    access, secret = "training-tests", uuid.uuid4().hex
    config = data_dir / "identities.json"
    config.write_text(json.dumps({"identities": [{"name": "t", "credentials": [{"accessKey": access, "secretKey": secret}],
                                                   "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    log = open(data_dir / "weed.log", "wb")
    proc = subprocess.Popen(
        [_weed(), "server", f"-dir={data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-master.port={master}",
         f"-volume.port={volume}", f"-filer.port={filer}", "-s3", f"-s3.port={s3}", f"-s3.config={config}",
         "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false", "-master.volumeSizeLimitMB=64",
         "-volume.max=0"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    env = {"KADENCE_S3_ENDPOINT": f"127.0.0.1:{s3}", "KADENCE_S3_ACCESS_KEY": access,
           "KADENCE_S3_SECRET_KEY": secret, "KADENCE_S3_BUCKET": "kadence", "KADENCE_S3_SECURE": "false"}
    client = Minio(env["KADENCE_S3_ENDPOINT"], access_key=access, secret_key=secret, secure=False)
    deadline = time.monotonic() + 60
    while True:
        try:
            if not client.bucket_exists("kadence"):
                client.make_bucket("kadence")
            client.put_object("kadence", "ready", io.BytesIO(b"1"), 1)
            break
        except Exception:  # noqa: BLE001 - not up yet
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("SeaweedFS did not start: " + (data_dir / "weed.log").read_text()[-2000:])
            time.sleep(0.3)
    yield env
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    log.close()


@pytest.fixture(scope="session")
def store(s3_env):
    from kadence.storage import ObjectStore, StorageConfig

    return ObjectStore(StorageConfig.from_env(s3_env))
