"""The operator's side of tenant isolation (thin glue; the rules live in kadence.tenancy,
kadence.storage and kadence.api.references).

- `ensure_namespace_storage(ns)`: the namespace's store identity and its Secret
  `kadence-tenant-storage`, before any Job or model server that reads it is applied.
- `owned_results(keys, body)`: results whose stored owner (S3 user metadata written by the
  workload from $KADENCE_OWNER_*) is `body` itself; any other is ignored with a Warning Event
  `ForeignResult` (a result from another incarnation of the object, or a forged one).
- `reference_problems(kind, spec, meta)`: URIs the object may not use (InvalidSpec).
- `granted_prefixes(ns)`: what other namespaces' Datasets share with `ns` (spec.sharedWith);
  the namespace's identity may read them, and its Datasets may name them. Read from the API
  (all namespaces, or each watched one) at most every GRANTS_SECONDS per namespace: a new or
  withdrawn grant takes effect within that and the referring object's next reconcile.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time

import kopf
from kubernetes.client.exceptions import ApiException

from ..api import references
from ..api.common import API_VERSION
from ..k8s.apply import apply, create, list_objects
from ..k8s.client import api_client
from ..settings import Settings
from ..storage import StoredObject, key_in_namespace
from ..tenancy import Tenancy, tenancy_from_env

FOREIGN_RESULT = "ForeignResult"
logger = logging.getLogger(__name__)
_reported: set[tuple[str, str, str]] = set()  # (owner uid, key, reason): one Event each, not one per resync


GRANTS_SECONDS = 30.0
# The namespaces this operator watches (set by handlers.main.run_operator); empty: all of them.
WATCHED_NAMESPACES: list[str] = []
_grants: dict[str, tuple[float, tuple[str, ...]]] = {}
_grants_lock = threading.Lock()
_grants_forbidden: list[bool] = []


def create_once(body: dict) -> None:
    """Create a Secret the operator never changes afterwards (409: it exists and is kept)."""
    try:
        create(body)
    except ApiException as error:
        if error.status != 409:
            raise


@functools.lru_cache(maxsize=1)
def tenancy() -> Tenancy:
    return tenancy_from_env(apply_secret=apply, create_secret=create_once)


def _datasets_everywhere() -> list[dict]:
    if WATCHED_NAMESPACES:
        return [d for namespace in WATCHED_NAMESPACES for d in list_objects(API_VERSION, "Dataset", namespace)]
    # all namespaces at once: straight from the API (the watch cache answers per namespace)
    try:
        return list_objects(API_VERSION, "Dataset", None, api=api_client())
    except ApiException as error:
        if error.status != 403:
            raise
        # an operator with Roles per namespace may not list across them: no grants, said once
        if not _grants_forbidden:
            _grants_forbidden.append(True)
            logger.warning("cannot list Datasets in all namespaces (403): Datasets' sharedWith grants are ignored")
        return []


def granted_prefixes(namespace: str) -> tuple[str, ...]:
    now = time.monotonic()
    with _grants_lock:
        cached = _grants.get(namespace)
        if cached is not None and now - cached[0] < GRANTS_SECONDS:
            return cached[1]
    prefixes = references.shared_prefixes(namespace, _datasets_everywhere())
    with _grants_lock:
        _grants[namespace] = (now, prefixes)
    return prefixes


def ensure_namespace_storage(namespace: str) -> None:
    tenancy().ensure(namespace, granted_prefixes(namespace))


def foreign_reason(stored: StoredObject, body: dict) -> str | None:
    """Why `stored` is not a result of `body`, or None when it is."""
    meta = body["metadata"]
    if not key_in_namespace(stored.key, meta["namespace"]):
        return f"{stored.key} lies outside namespace {meta['namespace']}'s storage"
    uid = stored.owner_uid
    if not uid:
        return f"{stored.key} carries no owner (written by something other than this object's workload)"
    if uid != meta.get("uid"):
        owner = stored.owner()
        who = "/".join(filter(None, (owner.get("kind"), owner.get("namespace"), owner.get("name"))))
        return f"{stored.key} was written for {who or 'another object'} (uid {uid}), not this object (uid {meta.get('uid')})"
    return None


def owned_results(store, keys: dict[str, str], body: dict) -> dict[str, dict]:
    """{name: S3 key} -> {name: parsed JSON} for the keys that exist and belong to `body`."""
    found = {}
    for name, key in keys.items():
        try:
            stored = store.get_object(key)
        except FileNotFoundError:
            continue
        reason = foreign_reason(stored, body)
        if reason is None:
            try:
                found[name] = json.loads(stored.data)
                continue
            except ValueError:
                reason = f"{key} is not JSON"
        report = (str(body["metadata"].get("uid")), key, reason)
        if report not in _reported:
            _reported.add(report)
            logger.warning("ignoring a result: %s", reason)
            kopf.event(body, type="Warning", reason=FOREIGN_RESULT, message=f"ignored a result: {reason}")
    return found


def reference_problems(kind: str, spec, meta: dict) -> list[tuple[str, str]]:
    settings = Settings.from_env()
    granted = granted_prefixes(meta["namespace"]) if kind == "Dataset" else ()
    return references.problems(kind, spec, dict(meta), bucket=settings.s3_bucket, sandbox=settings.sandbox,
                               granted=granted)
