"""Object storage through the minio client: any S3 endpoint (MinIO, SeaweedFS, AWS).

Keys are content-addressed or versioned by the caller; `put_once` makes a key
write-once so an artifact can never be silently replaced.

Tenancy: every object of namespace N lives under `<root>/<N>/` for a root of TENANT_ROOTS.
Workloads and model servers hold credentials that reach only their namespace's prefixes
(see kadence.tenancy); the operator alone holds the store's admin credential. Whatever a
workload writes is stamped with its owner (KADENCE_OWNER_* in its environment, set by the
Job/Deployment builder) as S3 user metadata, and the operator accepts a result only when
that owner is the object it reconciles (`StoredObject.owner_uid`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Iterator, Mapping
from urllib.parse import urlparse

from minio import Minio
from minio.error import S3Error


# Every key a namespace's workloads read or write starts with one of these roots, then the
# namespace: datasets/<ns>/…, features/<ns>/…, runs/<ns>/…, monitoring/<ns>/…, predictions/<ns>/…,
# feedback/<ns>/…, and what a team uploads itself: raw/<ns>/… (source files) and models/<ns>/…
# (imported model artifacts). A new root must be added here, or tenant credentials are refused there (403).
TENANT_ROOTS = ("datasets", "features", "runs", "monitoring", "predictions", "feedback", "raw", "models")
# The per-namespace Secret the operator writes (keys: STORAGE_ENV's values in builders.jobs).
TENANT_SECRET = "kadence-tenant-storage"
DEFAULT_REGION = "us-east-1"
# The workload's owner, from its environment; stamped on every object it writes.
OWNER_ENV = {
    "KADENCE_OWNER_UID": "kadence-owner-uid",
    "KADENCE_OWNER_KIND": "kadence-owner-kind",
    "KADENCE_OWNER_NAME": "kadence-owner-name",
    "KADENCE_OWNER_NAMESPACE": "kadence-owner-namespace",
}
OWNER_UID_META = OWNER_ENV["KADENCE_OWNER_UID"]


def tenant_prefixes(namespace: str) -> list[str]:
    """The key prefixes that belong to `namespace` (each ends with "/")."""
    if not namespace or "/" in namespace or namespace in (".", ".."):
        raise ValueError(f"not a namespace name: {namespace!r}")
    return [f"{root}/{namespace}/" for root in TENANT_ROOTS]


def key_in_namespace(key: str, namespace: str) -> bool:
    """True when `key` lies under one of the namespace's prefixes (no `..` tricks)."""
    if any(part in ("..", ".") for part in key.split("/")):
        return False
    return any(key.startswith(prefix) for prefix in tenant_prefixes(namespace))


def owner_metadata(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The S3 user metadata naming the workload's owner, from KADENCE_OWNER_* (empty outside a Job)."""
    from .settings import Settings

    settings = Settings.from_env(env)
    return {meta: settings.value(name) for name, meta in OWNER_ENV.items() if settings.value(name)}


class StorageError(RuntimeError):
    pass


class ObjectExistsWithOtherContent(StorageError):
    pass


@dataclass(frozen=True)
class StorageConfig:
    endpoint: str
    access_key: str
    secret_key: str
    bucket: str = "kadence"
    secure: bool = False
    # A fixed region: the client never asks GetBucketLocation, which tenant credentials may not call.
    region: str = DEFAULT_REGION

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "StorageConfig":
        from .settings import Settings

        settings = Settings.from_env(env)
        fields = Settings.model_fields
        missing = [fields[name].alias for name in ("s3_endpoint", "s3_access_key", "s3_secret_key")
                   if not getattr(settings, name)]
        if missing:
            raise StorageError(f"object storage is not configured: set {', '.join(missing)}")
        endpoint, secure = settings.s3_endpoint, settings.s3_secure
        if "://" in endpoint:
            parsed = urlparse(endpoint)
            endpoint, secure = parsed.netloc, parsed.scheme == "https"
        return cls(
            endpoint=endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            bucket=settings.s3_bucket,
            secure=secure,
            region=settings.s3_region or DEFAULT_REGION,
        )

    def as_env(self) -> dict[str, str]:
        return {
            "KADENCE_S3_ENDPOINT": self.endpoint,
            "KADENCE_S3_ACCESS_KEY": self.access_key,
            "KADENCE_S3_SECRET_KEY": self.secret_key,
            "KADENCE_S3_BUCKET": self.bucket,
            "KADENCE_S3_SECURE": "true" if self.secure else "false",
        }


def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/key` -> ("bucket", "some/key")."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise StorageError(f"not an s3:// URI: {uri!r}")
    return parsed.netloc, parsed.path.lstrip("/")


class ObjectStore:
    """A bucket on an S3 endpoint."""

    def __init__(self, config: StorageConfig, client: Minio | None = None, http_client=None):
        """`http_client`: a urllib3.PoolManager for the minio client (e.g. with short timeouts;
        minio's default waits 5 minutes for a connection or a read)."""
        self.config = config
        self.bucket = config.bucket
        self.owner = owner_metadata()
        self.client = client or Minio(
            config.endpoint, access_key=config.access_key, secret_key=config.secret_key, secure=config.secure,
            region=config.region, http_client=http_client,
        )

    @classmethod
    def from_env(cls, http_client=None) -> "ObjectStore":
        return cls(StorageConfig.from_env(), http_client=http_client)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def key_of(self, uri: str) -> str:
        bucket, key = split_s3_uri(uri)
        if bucket != self.bucket:
            raise StorageError(f"{uri} is outside the bucket {self.bucket}")
        return key

    def ensure_bucket(self) -> None:
        if not self.client.bucket_exists(self.bucket):
            self.client.make_bucket(self.bucket)

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        self.client.put_object(self.bucket, key, io.BytesIO(data), len(data), content_type=content_type,
                               metadata=dict(self.owner) or None)
        return self.uri(key)

    def put_once(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        """Write a key that must never change: a second write of the same bytes is a no-op,
        of other bytes an error."""
        if self.exists(key):
            if self.get_bytes(key) != data:
                raise ObjectExistsWithOtherContent(f"{self.uri(key)} already exists with other content")
            return self.uri(key)
        return self.put_bytes(key, data, content_type)

    def put_file(self, key: str, path: str, content_type: str = "application/octet-stream") -> str:
        self.client.fput_object(self.bucket, key, path, content_type=content_type, metadata=dict(self.owner) or None)
        return self.uri(key)

    def get_bytes(self, key: str) -> bytes:
        return self.get_object(key).data

    def get_object(self, key: str) -> "StoredObject":
        """The bytes and the user metadata of `key` (one request); FileNotFoundError when absent."""
        try:
            response = self.client.get_object(self.bucket, key)
        except S3Error as error:
            if error.code in ("NoSuchKey", "NoSuchBucket"):
                raise FileNotFoundError(self.uri(key)) from error
            raise
        try:
            data = response.read()
            prefix = "x-amz-meta-"
            metadata = {k.lower()[len(prefix):]: v for k, v in response.headers.items() if k.lower().startswith(prefix)}
        finally:
            response.close()
            response.release_conn()
        return StoredObject(key=key, data=data, metadata=metadata)

    def get_file(self, key: str, path: str) -> None:
        self.client.fget_object(self.bucket, key, path)

    def exists(self, key: str) -> bool:
        try:
            self.client.stat_object(self.bucket, key)
            return True
        except S3Error as error:
            if error.code in ("NoSuchKey", "NoSuchBucket", "NoSuchObject"):
                return False
            raise

    def list_keys(self, prefix: str) -> Iterator[str]:
        for item in self.client.list_objects(self.bucket, prefix=prefix, recursive=True):
            if not item.is_dir:
                yield item.object_name

    def list_dirs(self, prefix: str) -> list[str]:
        """The immediate "directories" under `prefix` (which ends with "/"), each ending with "/":
        one LIST with a delimiter, however many objects lie below them."""
        return sorted(item.object_name for item in self.client.list_objects(self.bucket, prefix=prefix, recursive=False)
                      if item.is_dir)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under `prefix` (which must end with "/"); returns how many."""
        if not prefix.endswith("/"):
            raise StorageError(f"refusing to delete a prefix that does not end with '/': {prefix!r}")
        from minio.deleteobjects import DeleteObject

        keys = list(self.list_keys(prefix))
        errors = list(self.client.remove_objects(self.bucket, (DeleteObject(k) for k in keys)))
        if errors:
            raise StorageError(f"could not delete {len(errors)} objects under {self.uri(prefix)}: {errors[0]}")
        return len(keys)


@dataclass(frozen=True)
class StoredObject:
    key: str
    data: bytes
    metadata: dict[str, str] = field(default_factory=dict)  # user metadata, names lower-case without x-amz-meta-

    @property
    def owner_uid(self) -> str | None:
        return self.metadata.get(OWNER_UID_META)

    def owner(self) -> dict[str, str]:
        """kind, name, namespace, uid of the workload's owner, as far as the object says."""
        return {name[len("kadence-owner-"):]: self.metadata[name] for name in OWNER_ENV.values() if name in self.metadata}
