"""Run the Kadence operator: kopf with one handler module per kind."""

from __future__ import annotations

import asyncio
import importlib
import logging

import kopf

from ..metrics import serve_from_env

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


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_) -> None:
    settings.posting.level = logging.INFO
    settings.persistence.finalizer = "kadence.dev/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="kadence.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="kadence.dev", key="last-handled-configuration"
    )
    settings.watching.server_timeout = 300


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
