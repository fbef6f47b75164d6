"""A real HTTP server on 127.0.0.1 with Alertmanager's v2 alerts API shape, for alert tests.

POST /api/v2/alerts takes a list of postable alerts and validates them as Alertmanager 0.25 does
(api/v2/api.go and model.Alert.Validate): labels required, label and annotation names
[a-zA-Z_][a-zA-Z0-9_]*, RFC 3339 startsAt/endsAt with endsAt not before startsAt, generatorURL a
URI; 400 with the reason otherwise. Alerts are kept by fingerprint (their label set), a repeat
updating the same alert, as Alertmanager merges them. GET /api/v2/alerts lists the active ones
(endsAt after `now`) with status.state "active", leaving resolved ones out as Alertmanager does.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlparse

from .http_receiver import LocalServer

NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def _time(text, field: str) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{field} in body must be of type date-time: {text!r}") from None


def validate(alert) -> str | None:
    """Why Alertmanager would refuse this postable alert, or None."""
    if not isinstance(alert, dict):
        return "alert must be an object"
    labels = alert.get("labels")
    if not isinstance(labels, dict) or not labels:
        return "labels in body is required"
    for kind in ("labels", "annotations"):
        for name, value in (alert.get(kind) or {}).items():
            if not NAME.match(name) or not isinstance(value, str):
                return f"invalid {kind[:-1]} {name!r}: {value!r}"
    try:
        starts, ends = _time(alert.get("startsAt"), "startsAt"), _time(alert.get("endsAt"), "endsAt")
    except ValueError as error:
        return str(error)
    if starts and ends and ends < starts:
        return "start time must be before end time"
    url = alert.get("generatorURL")
    if url is not None and not urlparse(url).scheme:
        return f"generatorURL in body must be of type uri: {url!r}"
    return None


class AlertmanagerReceiver(LocalServer):
    def __init__(self, now: datetime | None = None):
        self.posts: list[list[dict]] = []  # every accepted POST body
        self.alerts: dict[tuple, dict] = {}  # fingerprint (sorted labels) -> the latest alert
        self.now = now or datetime.now(timezone.utc)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body=None):
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):  # noqa: N802
                if self.path != "/api/v2/alerts":
                    return self._answer(404, {"message": f"path {self.path} not found"})
                try:
                    body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                except ValueError as error:
                    return self._answer(400, {"message": f"parsing alerts body: {error}"})
                if not isinstance(body, list):
                    return self._answer(400, {"message": "alerts in body must be of type array"})
                problems = [p for p in map(validate, body) if p]
                if problems:
                    return self._answer(400, {"message": "; ".join(problems)})
                receiver.posts.append(body)
                for alert in body:
                    receiver.alerts[tuple(sorted(alert["labels"].items()))] = alert
                self._answer(200)

            def do_GET(self):  # noqa: N802
                if self.path.split("?")[0] != "/api/v2/alerts":
                    return self._answer(404, {"message": f"path {self.path} not found"})
                self._answer(200, [{**a, "status": {"state": "active"}} for a in receiver.alerts.values()
                                   if receiver.active(a)])

            def log_message(self, *args):
                pass

        super().__init__(Handler)

    def active(self, alert: dict) -> bool:
        ends = _time(alert.get("endsAt"), "endsAt")
        return ends is None or ends > self.now

    @property
    def url(self) -> str:
        return self.base_url
