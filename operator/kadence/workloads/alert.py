"""`kadence alert`: deliver one MonitorPolicy alert to its receivers (runs in a short Job).

The operator decides which alert to send (domain.monitoring.alerts: one per breach episode, and
one when resolved) and creates one Job per alert, named after the episode and its state. This
command POSTs the alert to each receiver of the task: the webhook (Kadence's JSON alert, with
the bearer token the Job gets from the webhook's Secret as KADENCE_ALERT_TOKEN, a secretKeyRef:
the operator never reads it) and Alertmanager's v2 API (a list of postable alerts). Each gets a
short timeout per attempt and retries with exponential backoff on connection errors, 5xx and
429; a receiver that took the alert is not sent it again by the other's retries.

Exit codes: 0 delivered to every receiver (2xx); 3 refused by a receiver (another 4xx: retrying
cannot help, the Job's pod failure policy fails it at once); 1 not delivered after every attempt
(the Job's backoffLimit tries again; the receivers dedupe a repeat by its episode and state, and
Alertmanager by the alert's labels); 2 the task could not be read.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable, Literal

from pydantic import Field

from ..api.common import KadenceModel
from ..domain.monitoring.alerts import webhook_headers
from ..settings import Settings
from .task_file import load_task

EXIT_DELIVERED, EXIT_FAILED, EXIT_BAD_TASK, EXIT_REFUSED = 0, 1, 2, 3
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class Receiver(KadenceModel):
    kind: Literal["webhook", "alertmanager"]
    url: str = Field(pattern=r"^https?://.+")
    payload: dict[str, Any] | list[dict[str, Any]]
    bearer: bool = Field(False, description="Send KADENCE_ALERT_TOKEN as Authorization: Bearer.")


class AlertTask(KadenceModel):
    receivers: list[Receiver] = Field(min_length=1)
    timeout_seconds: float = Field(5.0, gt=0, le=60)
    attempts: int = Field(4, ge=1, le=10)
    backoff_seconds: float = Field(1.0, ge=0, le=60, description="Wait before the 2nd attempt; doubled after each.")


@dataclass(frozen=True)
class Delivery:
    delivered: bool
    attempts: int
    status: int | None
    message: str
    retryable: bool = True


def post_once(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """The HTTP status of one POST (an HTTPError's status counts as an answer)."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def deliver(task: AlertTask, receiver: Receiver, token: str | None,
            post: Callable[[str, bytes, dict[str, str], float], int] = post_once,
            sleep: Callable[[float], None] = time.sleep) -> Delivery:
    """POST the receiver's payload until it answers 2xx, refuses it (4xx other than 429) or every
    attempt is spent."""
    body = json.dumps(receiver.payload, sort_keys=True).encode()
    headers = webhook_headers(token if receiver.bearer else None)
    wait, last = task.backoff_seconds, "not attempted"
    for attempt in range(1, task.attempts + 1):
        try:
            status = post(receiver.url, body, headers, task.timeout_seconds)
        except (OSError, urllib.error.URLError) as error:  # refused, reset, timed out, DNS
            status, last = None, f"{type(error).__name__}: {getattr(error, 'reason', error)}"
        else:
            if 200 <= status < 300:
                return Delivery(True, attempt, status, f"delivered: HTTP {status}")
            last = f"HTTP {status}"
            if status not in RETRYABLE_STATUS:
                return Delivery(False, attempt, status, f"refused by the receiver: {last}", retryable=False)
        if attempt < task.attempts:
            sleep(wait)
            wait *= 2
    return Delivery(False, task.attempts, status, f"not delivered after {task.attempts} attempts: {last}")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", metavar="FILE", help="The alert task as a JSON file (default: $KADENCE_TASK).")


def run(args: argparse.Namespace, env: dict[str, str] | None = None) -> int:
    settings = Settings.from_env(env)
    try:
        task = load_task(args.task, settings, AlertTask)
    except (OSError, ValueError) as error:
        print(json.dumps({"delivered": False, "message": f"bad task: {error}"}))
        return EXIT_BAD_TASK
    outcomes = {receiver.kind: deliver(task, receiver, settings.alert_token) for receiver in task.receivers}
    print(json.dumps({"delivered": all(o.delivered for o in outcomes.values()),
                      "receivers": {kind: {"delivered": o.delivered, "attempts": o.attempts, "status": o.status,
                                           "message": o.message} for kind, o in outcomes.items()}}, sort_keys=True))
    sys.stdout.flush()
    if all(o.delivered for o in outcomes.values()):
        return EXIT_DELIVERED
    return EXIT_FAILED if any(not o.delivered and o.retryable for o in outcomes.values()) else EXIT_REFUSED
