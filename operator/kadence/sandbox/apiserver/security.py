"""What the sandbox API server lets in: loopback Hosts, the sandbox's bearer token, and bodies in
the media types a Kubernetes client sends.

The API server runs pods as processes of the user who started it, so a request it accepts is as
good as code execution. Three checks, in this order, answer before any handler runs:

1. The Host header must name the loopback interface (127.0.0.1, localhost or [::1], with the
   server's own port or none): a web page that rebinds its DNS name to 127.0.0.1 still sends its
   own name, and gets 421 Misdirected Request.
2. `Authorization: Bearer <token>` with the token of the sandbox's state directory (the one in its
   kubeconfig); otherwise 401 with the Status body upstream sends. Only the probes (/healthz,
   /livez, /readyz) answer without it, as upstream's anonymous health checks do.
3. A request with a body must be JSON, YAML, protobuf or one of the patch types; anything else
   (text/plain, forms, octet streams) gets 415, so no HTML form can carry one. A body without a
   Content-Type is read as JSON, as upstream does (the official Python client sends none).
"""

from __future__ import annotations

import hmac
from typing import Awaitable, Callable

import orjson
from aiohttp import web

from .errors import status_object

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# The one user the token authenticates, as SelfSubjectReview (`kubectl auth whoami`) names it; the
# groups are those a cluster-admin kubeconfig of kubeadm carries.
SANDBOX_USER = {"username": "kadence-sandbox-admin", "groups": ["system:masters", "system:authenticated"]}
ANONYMOUS_PATHS = ("/healthz", "/livez", "/readyz")
BODY_MEDIA_TYPES = frozenset({
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
})


def split_host(value: str) -> tuple[str, int | None] | None:
    """`host[:port]` or `[v6]:port` as (host, port); None when it is not a well-formed Host."""
    value = value.strip()
    if not value:
        return None
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        host, rest = value[1:end], value[end + 1:]
        if rest and not rest.startswith(":"):
            return None
        port_text = rest[1:] if rest else None
    elif value.count(":") == 1:
        host, port_text = value.split(":")
    elif ":" in value:
        return None  # a bare IPv6 address without brackets is not a valid Host
    else:
        host, port_text = value, None
    if port_text is None:
        return host.lower(), None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return None
    return host.lower(), int(port_text)


def is_loopback_host(value: str | None, port: int | None) -> bool:
    """True when a Host header names this server on the loopback interface."""
    if value is None:
        return False
    parts = split_host(value)
    if parts is None:
        return False
    host, given_port = parts
    return host in LOOPBACK_HOSTS and (given_port is None or port is None or given_port == port)


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def token_matches(header: str | None, token: str) -> bool:
    given = bearer_token(header)
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def body_type_allowed(content_type: str | None) -> bool:
    media = media_type(content_type)
    return media == "" or media in BODY_MEDIA_TYPES


def _refusal(code: int, reason: str, message: str) -> web.Response:
    body = status_object(code, message, reason)
    return web.Response(body=orjson.dumps(body), status=code, content_type="application/json")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def middleware(token: str) -> Callable:
    """The aiohttp middleware doing the three checks above."""
    if not token:
        raise ValueError("the sandbox API server needs a non-empty bearer token")

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        port = sockname[1] if isinstance(sockname, tuple) and len(sockname) >= 2 else None
        if not is_loopback_host(request.headers.get("Host"), port):
            return _refusal(421, "Misdirected", "the sandbox API server answers only requests addressed to "
                                                "127.0.0.1, localhost or [::1]")
        if not (request.path in ANONYMOUS_PATHS or request.path.startswith(tuple(p + "/" for p in ANONYMOUS_PATHS))):
            if not token_matches(request.headers.get("Authorization"), token):
                return _refusal(401, "Unauthorized", "Unauthorized")
        if request.body_exists and not body_type_allowed(request.headers.get("Content-Type")):
            return _refusal(415, "UnsupportedMediaType",
                            f"the body of the request was in an unknown format "
                            f"({media_type(request.headers.get('Content-Type')) or 'no Content-Type'}) - "
                            "accepted media types include: " + ", ".join(sorted(BODY_MEDIA_TYPES)))
        return await handler(request)

    return guard
