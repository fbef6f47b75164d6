"""The console's HTTP side (aiohttp): the page shell and its assets, the pages' JSON, the change
stream (server-sent events), stored reports and model cards, and the guarded actions.

Reports and model cards are read from S3 by the console with the namespace's own storage
identity, so the browser never holds S3 credentials; only keys under that namespace's prefixes
(`storage.key_in_namespace`) and only HTML are served, with a Content-Security-Policy that lets
them run no script.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import datetime, timezone
from pathlib import Path

from aiohttp import web

from ..storage import StorageError, key_in_namespace
from . import views

log = logging.getLogger("kadence.console")
STATIC = Path(__file__).parent / "static"
KEEPALIVE_SECONDS = 15.0
REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox"
WRITES_DISABLED = "writes are disabled: start the console with `kadence console --enable-writes`"

WATCHER = web.AppKey("watcher", object)
CLUSTER = web.AppKey("cluster", object)
WRITES = web.AppKey("writes", bool)
USER = web.AppKey("user", str)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _in_scope(request: web.Request, namespace: str) -> bool:
    return request.app[WATCHER].watches(namespace)


async def page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


async def session(request: web.Request) -> web.Response:
    watcher = request.app[WATCHER]
    return web.json_response({"writes": request.app[WRITES], "user": request.app[USER],
                              "scope": ", ".join(watcher.namespaces) if watcher.namespaces is not None
                              else "all namespaces"})


async def overview(request: web.Request) -> web.Response:
    watcher = request.app[WATCHER]
    return web.json_response({"models": views.overview(watcher.snapshot), "errors": watcher.errors})


async def model(request: web.Request) -> web.Response:
    namespace, name = request.match_info["namespace"], request.match_info["model"]
    found = views.model_page(request.app[WATCHER].snapshot, namespace, name)
    if found is None:
        return _error(404, f"no model {name} in namespace {namespace}")
    if not request.app[WRITES]:
        found["actions"] = []
    return web.json_response({**found, "writes": request.app[WRITES]})


async def _read(request: web.Request, namespace: str, key: str) -> bytes:
    cluster = request.app[CLUSTER]
    store = await asyncio.to_thread(cluster.store, namespace)
    return await asyncio.to_thread(store.get_bytes, key)


async def trials(request: web.Request) -> web.Response:
    from ..workloads.train_task import run_prefix

    namespace, run = request.match_info["namespace"], request.match_info["run"]
    if not _in_scope(request, namespace):
        return _error(404, f"namespace {namespace} is not watched by this console")
    try:
        document = json.loads(await _read(request, namespace, run_prefix(namespace, run) + "trials.json"))
    except FileNotFoundError:
        return _error(404, f"TrainingRun {namespace}/{run} has stored no trials yet")
    except StorageError as error:
        return _error(502, str(error))
    return web.json_response({"chart": views.score_chart(document), "stoppedBy": document.get("stoppedBy"),
                              "trials": len(document.get("trials") or [])})


async def stored_file(request: web.Request) -> web.Response:
    namespace, key = request.match_info["namespace"], request.match_info["key"]
    if not _in_scope(request, namespace):
        return _error(404, f"namespace {namespace} is not watched by this console")
    if not key_in_namespace(key, namespace) or not key.endswith(".html"):
        return _error(403, f"only HTML reports under namespace {namespace}'s own prefixes are served, not {key!r}")
    try:
        data = await _read(request, namespace, key)
    except FileNotFoundError:
        return _error(404, f"no stored object {key}")
    except StorageError as error:
        return _error(502, str(error))
    return web.Response(body=data, content_type="text/html", charset="utf-8",
                        headers={"Content-Security-Policy": REPORT_CSP, "X-Content-Type-Options": "nosniff"})


async def events(request: web.Request) -> web.StreamResponse:
    """Every change the watches see, as server-sent events; the page refetches what it shows."""
    watcher = request.app[WATCHER]
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    queue = watcher.subscribe()
    try:
        await response.write(b"retry: 1000\n\n")
        while True:
            try:
                change = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            await response.write(f"event: change\ndata: {json.dumps(change)}\n\n".encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        watcher.unsubscribe(queue)
    return response


def _same_origin(request: web.Request) -> bool:
    """A page of another site may POST to a local port; only this console's own pages may act."""
    origin = request.headers.get("Origin")
    return origin is None or origin in (f"http://{request.host}", f"https://{request.host}")


async def action(request: web.Request) -> web.Response:
    """Make one guarded change: refused (403) unless writes are enabled and the user's RBAC allows
    the patch, (409) when it does not apply to the object as it is; recorded in an Event."""
    if not request.app[WRITES]:
        return _error(403, WRITES_DISABLED)
    if request.content_type != "application/json" or not _same_origin(request):
        return _error(403, "actions are accepted only as JSON from the console's own pages")
    try:
        body = await request.json()
        namespace, model_name, verb, name = (str(body[k]) for k in ("namespace", "model", "action", "name"))
        reason = body.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise TypeError("reason")
    except (ValueError, KeyError, TypeError, AttributeError):
        return _error(400, "the body must be JSON with namespace, model, action and name (and an optional "
                           "reason, a string)")
    if not _in_scope(request, namespace):
        return _error(404, f"namespace {namespace} is not watched by this console")
    user = request.app[USER]
    loop = views.loop_of(request.app[WATCHER].snapshot, namespace, model_name)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        plan = views.plan_action(loop, verb, name, f"{user} (kadence console)", now=now, reason=reason)
    except views.ActionRefused as refused:
        return _error(409, str(refused))
    cluster = request.app[CLUSTER]
    try:
        review = await asyncio.to_thread(cluster.review, namespace, plan.kind, plan.name)
        if not review.allowed:
            why = f": {review.reason}" if review.reason else ""
            return _error(403, f"{user} may not patch {views.PLURALS[plan.kind]}/{plan.name} in {namespace}{why}")
        await asyncio.to_thread(cluster.patch, namespace, plan.kind, plan.name, plan.patch)
    except Exception as error:  # noqa: BLE001 - the API server's refusal, passed on
        status = getattr(error, "status", None) or 502
        return _error(status if 400 <= status < 600 else 502, f"{verb} {name}: {getattr(error, 'reason', error)}")
    event = views.event_manifest(namespace, plan, now, uuid.uuid4().hex[:10])
    try:
        await asyncio.to_thread(cluster.record_event, namespace, event)
    except Exception as error:  # noqa: BLE001 - the change is made; say that its record is missing
        log.warning("could not record the Event of %s %s: %s", verb, name, error)
        return web.json_response({"done": plan.message, "event": None, "warning": f"no Event recorded: {error}"})
    return web.json_response({"done": plan.message, "event": event["metadata"]["name"]})


def make_app(watcher, cluster, writes: bool, user: str) -> web.Application:
    app = web.Application()
    app[WATCHER], app[CLUSTER], app[WRITES], app[USER] = watcher, cluster, writes, user
    app.router.add_get("/", page)
    app.router.add_get("/models/{namespace}/{model}", page)
    app.router.add_get("/api/session", session)
    app.router.add_get("/api/overview", overview)
    app.router.add_get("/api/models/{namespace}/{model}", model)
    app.router.add_get("/api/runs/{namespace}/{run}/trials", trials)
    app.router.add_get("/api/events", events)
    app.router.add_post("/api/actions", action)
    app.router.add_get("/files/{namespace}/{key:.+}", stored_file)
    app.router.add_static("/static/", STATIC)
    return app
