"""Run the Kadence operator: kopf watches feeding one reconcile engine, one module per kind."""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import socket

import kopf
from prometheus_client import Gauge

from ..api.common import API_VERSION, GROUP, VERSION
from ..api.kinds import KINDS
from ..builders.serving import ISVC_LABEL
from ..k8s.cache import CACHE
from ..metrics import serve_from_env
from ..settings import settings
from .runtime import ENGINE
from ..api import keys

OWNER_KIND_LABEL = keys.OWNER_KIND_LABEL
# What the operator watches besides its own kinds, and the label every object it needs carries:
# (group, version, plural, apiVersion, kind, label).
CHILD_WATCHES = (
    ("batch", "v1", "jobs", "batch/v1", "Job", OWNER_KIND_LABEL),
    ("apps", "v1", "deployments", "apps/v1", "Deployment", ISVC_LABEL),  # model servers, read by selector
    ("", "v1", "services", "v1", "Service", OWNER_KIND_LABEL),
    ("", "v1", "configmaps", "v1", "ConfigMap", OWNER_KIND_LABEL),
    ("", "v1", "pods", "v1", "Pod", ISVC_LABEL),  # model servers, for the canary analysis
)
# Fields the cache indexes, for reads that are not by name or label: {kind: {index: extractor}}.
FIELD_INDEXES = {"ModelVersion": {"model": lambda body: body["spec"]["model"]},
                 "MonitorPolicy": {"inferenceService": lambda body: body["spec"]["inferenceServiceRef"]["name"]}}

HANDLER_MODULES = (
    "dataset",
    "featureset",
    "trainingrun",
    "modelversion",
    "inferenceservice",
    "monitorpolicy",
    "batchprediction",
    "erasurerequest",
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
    settings.persistence.finalizer = keys.FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="kadence.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="kadence.dev", key="last-handled-configuration"
    )
    # A watch reconnects (one list-free request) every 10 minutes at rest.
    settings.watching.server_timeout = 600


def run_operator(namespaces: list[str], liveness: str | None, lease: str | None = None,
                 lease_namespace: str | None = None) -> int:
    """Run kopf; with `lease`, only while this replica holds that coordination.k8s.io Lease.

    Without a lease the process runs standalone (one replica). With one, it campaigns for the
    Lease and serves its own liveness endpoint meanwhile (a standby is healthy); once leader it
    runs kopf, renews the Lease, and exits with status 1 when it loses it (the pod restarts and
    campaigns again), so two replicas never reconcile at once."""
    load_handlers()
    from .tenancy import WATCHED_NAMESPACES  # where Datasets that share with other namespaces live

    WATCHED_NAMESPACES[:] = namespaces or []
    serve_from_env()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # kopf logs every handler's success at INFO (the watch handlers run on every event); failures still show.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    if lease is None:
        asyncio.run(kopf.operator(clusterwide=not namespaces, namespaces=namespaces, standalone=True,
                                  liveness_endpoint=liveness))
        return 0
    return asyncio.run(_lead_then_operate(namespaces, liveness, lease, lease_namespace or _own_namespace()))


LEADER = Gauge("kadence_operator_leader", "1 while this operator replica holds the leader Lease, else 0")


def _own_namespace() -> str:
    """The namespace of the operator's own pod (KADENCE_NAMESPACE, set by the chart), else the
    service account's, else "default"."""
    if settings().namespace:
        return settings().namespace
    try:
        with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as f:
            return f.read().strip()
    except OSError:
        return "default"


def identity() -> str:
    """This replica's name in the Lease: its pod name (POD_NAME/POD_ID, set by the chart) or host, and pid."""
    base = os.environ.get("POD_NAME") or os.environ.get("POD_ID") or socket.gethostname()
    return f"{base}-{os.getpid()}"


async def _lead_then_operate(namespaces: list[str], liveness: str | None, lease: str, namespace: str) -> int:
    from ..k8s.lease import Elector, LeaseLock, LeaseTiming

    timing = LeaseTiming(lease_duration=settings().lease_duration_seconds,
                         renew_deadline=settings().lease_renew_deadline_seconds,
                         renew_period=settings().lease_renew_period_seconds,
                         retry_period=settings().lease_retry_period_seconds)
    elector = Elector(LeaseLock(lease, namespace), identity(), timing)
    health = await _serve_health(liveness, elector) if liveness else None
    LEADER.set(0)
    logging.getLogger(__name__).info("campaigning for lease %s/%s as %s", namespace, lease, elector.identity)
    try:
        await elector.acquire()
        LEADER.set(1)
        stop = asyncio.Event()
        operator = asyncio.create_task(kopf.operator(clusterwide=not namespaces, namespaces=namespaces,
                                                     standalone=True, stop_flag=stop))
        keeper = asyncio.create_task(elector.keep())
        done, _ = await asyncio.wait({operator, keeper}, return_when=asyncio.FIRST_COMPLETED)
        if keeper in done:  # lost the lease: stop reconciling before another replica starts
            LEADER.set(0)
            stop.set()
            try:
                await asyncio.wait_for(operator, timing.lease_duration - timing.renew_deadline)
            except (asyncio.TimeoutError, Exception):
                pass
            return 1
        keeper.cancel()
        operator.result()
        return 0
    finally:
        if health is not None:
            await health.cleanup()


async def _serve_health(url: str, elector) -> "aiohttp.web.AppRunner":
    """The liveness endpoint in leader-election mode: healthy while the Lease was read or
    written within its duration (a standby that cannot reach the API is restarted too)."""
    from urllib.parse import urlparse

    from aiohttp import web

    async def probe(_request):
        seen = elector.seen_at
        fresh = seen is not None and elector.clock() - seen < elector.timing.lease_duration
        role = "leader" if elector.leading else "standby"
        return web.json_response({"role": role, "identity": elector.identity}, status=200 if fresh else 503)

    parsed = urlparse(url)
    app = web.Application()
    app.router.add_get(parsed.path or "/", probe)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, parsed.hostname or "0.0.0.0", parsed.port or 80).start()
    return runner
