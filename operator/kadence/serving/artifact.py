"""Fetch a model artifact, check its sha256, and load it with skops under an explicit trust list.

A skops file names every type it needs; anything that neither skops trusts by default nor
the training side lists by exact name (`kadence.domain.training.artifact.trusted_types`:
a few scikit-learn internals and Kadence's FeatureSet transformer) is refused before a
single object is built. Training and serving share that one list, so whatever training
saves, serving loads, and nothing else.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import unquote, urlparse


class ArtifactRefused(Exception):
    """The artifact is not what the registry promised, or asks for untrusted types."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_artifact_bytes(uri: str, store=None) -> bytes:
    """The bytes at s3://bucket/key (through `store`, or ObjectStore.from_env()), file:///path or a path."""
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        if store is None:
            from ..storage import ObjectStore

            store = ObjectStore.from_env()
        return store.get_bytes(store.key_of(uri))
    if parsed.scheme == "file":
        return Path(unquote(parsed.path)).read_bytes()
    if parsed.scheme == "":
        return Path(uri).read_bytes()
    raise ArtifactRefused(f"unsupported artifact URI scheme {parsed.scheme!r} in {uri!r} (s3://, file:// or a path)")


def verify_sha256(data: bytes, expected: str, what: str) -> None:
    actual = sha256_hex(data)
    if actual != expected.lower():
        raise ArtifactRefused(f"{what}: sha256 is {actual}, expected {expected.lower()}; refusing to load it")


def is_trusted_type(name: str) -> bool:
    from ..domain.training.artifact import trusted_types

    return name in trusted_types()


def load_skops(data: bytes, what: str = "artifact"):
    """Rebuild the pipeline, refusing the file if it needs any type outside the trust list."""
    import skops.io as sio

    try:
        needed = sio.get_untrusted_types(data=data)
    except Exception as error:  # noqa: BLE001 - skops raises several types for a corrupt file
        raise ArtifactRefused(f"{what}: not a readable skops file: {error}") from error
    untrusted = sorted(name for name in needed if not is_trusted_type(name))
    if untrusted:
        raise ArtifactRefused(f"{what}: refusing untrusted types {', '.join(untrusted)}")
    try:
        return sio.loads(data, trusted=needed)
    except Exception as error:  # noqa: BLE001
        raise ArtifactRefused(f"{what}: could not be loaded: {error}") from error


def load_verified_pipeline(uri: str, sha256: str, store=None):
    data = read_artifact_bytes(uri, store)
    verify_sha256(data, sha256, uri)
    return load_skops(data, uri)


def load_verified_bytes(uri: str, sha256: str, store=None) -> bytes:
    data = read_artifact_bytes(uri, store)
    verify_sha256(data, sha256, uri)
    return data
