"""Object storage through the minio client: any S3 endpoint (MinIO, SeaweedFS, AWS).

Keys are content-addressed or versioned by the caller; `put_once` makes a key
write-once so an artifact can never be silently replaced.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import urlparse

from minio import Minio
from minio.error import S3Error


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

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "StorageConfig":
        env = os.environ if env is None else env
        missing = [k for k in ("KADENCE_S3_ENDPOINT", "KADENCE_S3_ACCESS_KEY", "KADENCE_S3_SECRET_KEY") if not env.get(k)]
        if missing:
            raise StorageError(f"object storage is not configured: set {', '.join(missing)}")
        endpoint = env["KADENCE_S3_ENDPOINT"]
        secure = env.get("KADENCE_S3_SECURE", "false").lower() in ("1", "true", "yes")
        if "://" in endpoint:
            parsed = urlparse(endpoint)
            endpoint, secure = parsed.netloc, parsed.scheme == "https"
        return cls(
            endpoint=endpoint,
            access_key=env["KADENCE_S3_ACCESS_KEY"],
            secret_key=env["KADENCE_S3_SECRET_KEY"],
            bucket=env.get("KADENCE_S3_BUCKET") or "kadence",
            secure=secure,
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

    def __init__(self, config: StorageConfig, client: Minio | None = None):
        self.config = config
        self.bucket = config.bucket
        self.client = client or Minio(
            config.endpoint, access_key=config.access_key, secret_key=config.secret_key, secure=config.secure
        )

    @classmethod
    def from_env(cls) -> "ObjectStore":
        return cls(StorageConfig.from_env())

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
        self.client.put_object(self.bucket, key, io.BytesIO(data), len(data), content_type=content_type)
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
        self.client.fput_object(self.bucket, key, path, content_type=content_type)
        return self.uri(key)

    def get_bytes(self, key: str) -> bytes:
        try:
            response = self.client.get_object(self.bucket, key)
        except S3Error as error:
            if error.code in ("NoSuchKey", "NoSuchBucket"):
                raise FileNotFoundError(self.uri(key)) from error
            raise
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

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
