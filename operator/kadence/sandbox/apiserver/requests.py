"""A request counter for the sandbox API server, like upstream's apiserver_request_total.

Served (with the token, as every other path) at /metrics in the Prometheus text format:

    apiserver_request_total{verb="LIST",resource="jobs",code="200",client="kopf"} 12

`verb` is the Kubernetes verb (GET, LIST, WATCH, CREATE, UPDATE, PATCH, DELETE), `client` the
first word of the User-Agent (kopf, OpenAPI-Generator for the kubernetes client, kubectl,
python-httpx…), so that one client's traffic can be told from the others' (benchmarks measure
the operator's requests at rest with it)."""

from __future__ import annotations

import collections
import re
from typing import Callable

from aiohttp import web

_METHODS = {"POST": "CREATE", "PUT": "UPDATE", "PATCH": "PATCH", "DELETE": "DELETE"}
_RESOURCE = re.compile(r"^/apis?/(?:[^/]+/)?v[^/]+/(?:namespaces/[^/]+/)?([^/]+)(/[^/]+)?")


def describe(method: str, path: str, watch: bool) -> tuple[str, str]:
    """(verb, resource) of one request; resource "" for discovery and other paths."""
    match = _RESOURCE.match(path)
    resource = match.group(1) if match else ""
    if path.startswith("/api/v1/namespaces/") and match and match.group(2) is None and path.count("/") == 4:
        resource = "namespaces"
    if method == "GET":
        named = bool(match and match.group(2))
        verb = "WATCH" if watch else ("GET" if named or not match else "LIST")
    else:
        verb = _METHODS.get(method, method)
    return verb, resource


class RequestCounter:
    def __init__(self) -> None:
        self.counts: collections.Counter[tuple[str, str, str, str]] = collections.Counter()

    def middleware(self) -> Callable:
        @web.middleware
        async def count(request: web.Request, handler):
            verb, resource = describe(request.method, request.path,
                                      request.query.get("watch", "").lower() in ("1", "true"))
            client = (request.headers.get("User-Agent") or "unknown").split("/")[0].split(" ")[0] or "unknown"
            code = "500"
            try:
                response = await handler(request)
                code = str(response.status)
                return response
            except web.HTTPException as error:
                code = str(error.status)
                raise
            finally:
                if request.path != "/metrics":
                    self.counts[(verb, resource, code, client)] += 1
        return count

    def text(self) -> str:
        lines = ["# HELP apiserver_request_total Requests served, by verb, resource, code and client.",
                 "# TYPE apiserver_request_total counter"]
        for (verb, resource, code, client), value in sorted(self.counts.items()):
            lines.append(f'apiserver_request_total{{verb="{verb}",resource="{resource}",code="{code}",'
                         f'client="{client}"}} {value}')
        return "\n".join(lines) + "\n"

    async def handle(self, _request: web.Request) -> web.Response:
        return web.Response(text=self.text(), content_type="text/plain")
