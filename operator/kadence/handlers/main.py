"""Run the Kadence operator: kopf watches feeding one reconcile engine, one module per kind."""

from __future__ import annotations

import asyncio
import importlib
import logging

import kopf

from ..api.common import API_VERSION, GROUP, VERSION
from ..api.kinds import KINDS
from ..builders.serving import ISVC_LABEL
from ..k8s.cache import CACHE
from ..metrics import serve_from_env
from .runtime import ENGINE

OWNER_KIND_LABEL = "kadence.dev/owner-kind"
# What the operator watches besides its own kinds, and the label every object it needs carries:
# (group, version, plural, apiVersion, kind, label).
CHILD_WATCHES = (
    ("batch", "v1", "jobs", "batch/v1", "Job", OWNER_KIND_LABEL),
    ("apps", "v1", "deployments", "apps/v1", "Deployment", OWNER_KIND_LABEL),
    ("", "v1", "services", "v1", "Service", OWNER_KIND_LABEL),
    ("", "v1", "configmaps", "v1", "ConfigMap", OWNER_KIND_LABEL),
    ("", "v1", "pods", "v1", "Pod", ISVC_LABEL),  # model servers, for the canary analysis
)
# Fields the cache indexes, for reads that are not by name or label: {kind: {index: extractor}}.
FIELD_INDEXES = {"ModelVersion": {"model": lambda body: body["spec"]["model"]}}

HANDLER_MODULES = (
    "dataset",
    "featureset",
    "trainingrun",
    "modelversion",
    "inferenceservice",
    "monitorpolicy",
)


def load_handlers() -> None:
    for name in HANDLER_MODULES:
        importlib.import_module(f"kadence.handlers.{name}")
    register_watches()


_PREVIOUS: dict[tuple[str, str, str, str], dict | None] = {}


def _key(body) -> tuple[str, str, str, str]:
    meta = body.get("metadata") or {}
    return (body.get("apiVersion", ""), body.get("kind", ""), meta.get("namespace") or "", meta.get("name", ""))


async def _cache_object(body, **_) -> None:
    """kopf index handler: the cache follows every listed, added or changed object. kopf runs no
    other handler until every watched kind was listed, so reconciles start on a full cache."""
    _PREVIOUS[_key(body)] = CACHE.upsert(dict(body))
    return None


async def _object_event(event, body, **_) -> None:
    """kopf event handler: a deletion leaves the cache; the engine queues whoever cares."""
    key = _key(body)
    if event.get("type") == "DELETED":
        previous = CACHE.remove(*key)
        _PREVIOUS.pop(key, None)
    else:
        previous = _PREVIOUS.pop(key, None)
    ENGINE.observed(event.get("type"), dict(body), previous)


_REGISTERED = False


def register_watches() -> None:
    global _REGISTERED
    if _REGISTERED:
        return
    _REGISTERED = True
    for kind in KINDS:
        CACHE.serve(API_VERSION, kind.kind, FIELD_INDEXES.get(kind.kind))
        kopf.index(GROUP, VERSION, kind.plural, id=f"cache-{kind.plural}")(_cache_object)
        kopf.on.event(GROUP, VERSION, kind.plural, id=f"watch-{kind.plural}")(_object_event)
    for group, version, plural, api_version, kind, label in CHILD_WATCHES:
        CACHE.serve(api_version, kind, label=label)
        kopf.index(group, version, plural, labels={label: kopf.PRESENT}, id=f"cache-{plural}")(_cache_object)
        kopf.on.event(group, version, plural, labels={label: kopf.PRESENT}, id=f"watch-{plural}")(_object_event)


@kopf.on.cleanup()
async def stop_engine(**_) -> None:
    await ENGINE.stop()


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_) -> None:
    settings.posting.level = logging.INFO
    settings.persistence.finalizer = "kadence.dev/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="kadence.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="kadence.dev", key="last-handled-configuration"
    )
    # A watch reconnects (one list-free request) every 10 minutes at rest.
    settings.watching.server_timeout = 600


def run_operator(namespaces: list[str], peering: str | None, liveness: str | None) -> int:
    load_handlers()
    serve_from_env()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Every resync tick would otherwise log "Timer 'resync' succeeded"; failures still show.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    asyncio.run(
        kopf.operator(
            clusterwide=not namespaces,
            namespaces=namespaces,
            standalone=peering is None,
            peering_name=peering,
            liveness_endpoint=liveness,
        )
    )
    return 0
