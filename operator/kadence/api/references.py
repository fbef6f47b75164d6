"""What a spec may point at: the checks that run after a spec parses, before anything is done.

- `file://` (a Dataset's source, a ModelVersion's artifacts) reads the
  node's own files: accepted only when the operator runs in sandbox mode (KADENCE_SANDBOX=1,
  set by `kadence sandbox up`), where the "node" is the user's own machine.
- An `s3://` URI in Kadence's own bucket must lie under the object's namespace prefixes
  (`storage.tenant_prefixes`): another namespace's data is not reachable by naming it. The
  store refuses it as well (the namespace's credentials reach only its prefixes); refusing it
  here says why, at once, as InvalidSpec. The one exception is an explicit grant: a Dataset in
  namespace B whose `spec.sharedWith` names namespace A lets A's Datasets read its snapshots
  (`datasets/B/<name>/`), as Gateway API's ReferenceGrant lets a route reach across: the grant
  lives with what it shares (`shared_prefixes`).
- An `s3://` URI in another bucket is a source outside Kadence: a Dataset may read one with its
  own `credentialsSecret`; model artifacts must live in Kadence's bucket (model servers hold no
  other credentials).

Pure: the caller passes the operator's bucket and sandbox mode.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from ..storage import key_in_namespace

SANDBOX_ENV = "KADENCE_SANDBOX"
FILE_REFUSED = ("file:// URIs are only accepted when the operator runs in sandbox mode "
                f"({SANDBOX_ENV}=1); use s3:// or https://")


def sandbox_mode(env: dict[str, str] | None = None) -> bool:
    from ..settings import Settings

    return Settings.from_env(env).sandbox


def _uris(kind: str, spec: Any, meta: dict) -> list[tuple[str, str, bool]]:
    """(field, uri, may leave Kadence's bucket) for every URI the object names."""
    found: list[tuple[str, str, bool]] = []
    if kind == "Dataset":
        source = spec.source
        if source.uri:
            found.append(("spec.source.uri", source.uri, bool(source.credentials_secret)))
    elif kind == "ModelVersion":
        if spec.artifact is not None:
            found.append(("spec.artifact.uri", spec.artifact.uri, False))
        compiled = getattr(spec, "compiled", None)
        if compiled is not None:
            found.append(("spec.compiled.uri", compiled.uri, False))
    elif kind == "BatchPrediction":  # its Jobs hold only the namespace's credentials
        if spec.input.uri:
            found.append(("spec.input.uri", spec.input.uri, False))
        found.append(("spec.output.uri", spec.output.uri, False))
    return found


def shared_prefixes(namespace: str, datasets: list[dict]) -> tuple[str, ...]:
    """The prefixes other namespaces' Datasets share with `namespace` (their spec.sharedWith),
    sorted: `datasets/<their namespace>/<their name>/`."""
    found = set()
    for body in datasets:
        meta = body.get("metadata") or {}
        shared = ((body.get("spec") or {}).get("sharedWith")) or []
        if meta.get("namespace") != namespace and any(entry.get("namespace") == namespace for entry in shared):
            found.add(f"datasets/{meta['namespace']}/{meta['name']}/")
    return tuple(sorted(found))


def check_uri(uri: str, namespace: str, bucket: str, sandbox: bool, may_leave_bucket: bool,
              granted: tuple[str, ...] = ()) -> str | None:
    """Why `uri` may not be used by an object in `namespace`, or None. `granted`: prefixes of
    other namespaces shared with it (read-only, Dataset sources only)."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return None if sandbox else FILE_REFUSED
    if parsed.scheme == "s3":
        key = parsed.path.lstrip("/")
        if parsed.netloc != bucket:
            if may_leave_bucket:
                return None
            return (f"s3://{parsed.netloc}/ is not Kadence's bucket ({bucket}); a Dataset may read another bucket "
                    "with spec.source.credentialsSecret, model artifacts must live in Kadence's bucket")
        # `s3://kadence/datasets/<ns>` (a whole own root, no trailing slash) is the namespace's too
        if any(part in (".", "..") for part in key.split("/")):
            return f"s3://{bucket}/{key} climbs out of its prefix"
        if any((key + "/").startswith(prefix) for prefix in granted):
            return None
        if not key_in_namespace(key, namespace) and not key_in_namespace(key + "/", namespace):
            return (f"s3://{bucket}/{key} lies outside namespace {namespace}'s storage "
                    f"(datasets/{namespace}/, features/{namespace}/, runs/{namespace}/, …): objects of one "
                    "namespace cannot reach another's data unless a Dataset there shares it "
                    f"(spec.sharedWith: [{{namespace: {namespace}}}])")
    return None


def problems(kind: str, spec: Any, meta: dict, bucket: str, sandbox: bool,
             granted: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """[(field, message)] for every URI of the object it may not use; `granted` (shared_prefixes)
    opens other namespaces' shared snapshots to Dataset sources only."""
    namespace = meta.get("namespace") or ""
    found = []
    for field_path, uri, may_leave in _uris(kind, spec, meta):
        message = check_uri(uri, namespace, bucket, sandbox, may_leave, granted if kind == "Dataset" else ())
        if message:
            found.append((field_path, message))
    return found
