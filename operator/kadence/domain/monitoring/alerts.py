"""The alerts (spec.actions.alert: a webhook, Alertmanager's v2 API), decided and built purely.

One alert per breach episode: the first breached evaluation fires it (`state: firing`), later
breached evaluations of the same episode send nothing, and the first evaluation judged healthy
again sends `state: resolved` and closes the episode. An evaluation that could not judge
(too few predictions or labels) changes nothing. The episode is kept in the MonitorPolicy's
`status.alerting`, so an operator restart neither repeats nor loses an alert. Each alert is
delivered by a short Job (`kadence alert`, workloads/alert.py) named after the episode and its
state: created once, it POSTs with retries and the Secret's bearer token, and the operator
never reads the Secret nor blocks on the receiver.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Mapping

from .policy import NOT_JUDGED_REASONS

ALERT_KIND = "kadence.dev/alert"
ALERTNAME = "KadenceMonitorPolicyBreached"
ALERTMANAGER_PATH = "/api/v2/alerts"
FIRING, RESOLVED = "firing", "resolved"
AlertState = Literal["firing", "resolved"]


@dataclass(frozen=True)
class AlertNotice:
    """One alert to deliver: the episode (time of its first breached evaluation), whether it
    fires or resolves, and the evaluation (monitor result, camelCase) that decided it."""

    state: AlertState
    episode: str
    result: Mapping[str, Any]

    @property
    def key(self) -> str:
        """Stable id of this alert: the same episode and state give the same key (the Job's name)."""
        return hashlib.sha256(f"{self.episode}/{self.state}".encode()).hexdigest()[:10]


def alerts_to_send(previous: Mapping[str, Any] | None, result: Mapping[str, Any]
                   ) -> tuple[list[AlertNotice], dict[str, Any] | None]:
    """(alerts to deliver, the new status.alerting) after the evaluation `result`.

    `previous` is status.alerting ({episode, state, time}) or None before any alert."""
    open_episode = previous is not None and previous.get("state") == FIRING
    time = result.get("time")
    if result.get("breached"):
        if open_episode:
            return [], dict(previous)
        notice = AlertNotice(FIRING, str(time), result)
        return [notice], {"episode": notice.episode, "state": FIRING, "time": time}
    if result.get("reason") in NOT_JUDGED_REASONS or not open_episode:
        return [], dict(previous) if previous is not None else None
    notice = AlertNotice(RESOLVED, str(previous.get("episode")), result)
    return [notice], {"episode": notice.episode, "state": RESOLVED, "time": time}


def alert_payload(*, namespace: str, policy: str, inference_service: str, result: Mapping[str, Any],
                  retrain_decision: Mapping[str, Any] | None = None, training_run: str | None = None,
                  state: AlertState = FIRING, episode: str | None = None) -> dict[str, Any]:
    """`result` is the monitor result (result.json, camelCase); `retrain_decision` the
    status.lastRetrainDecision written in the same reconcile, if any."""
    payload: dict[str, Any] = {
        "kind": ALERT_KIND,
        "version": 1,
        "state": state,
        "episode": episode or result.get("time"),
        "policy": {"namespace": namespace, "name": policy},
        "inferenceService": inference_service,
        "time": result.get("time"),
        "breached": bool(result.get("breached")),
        "reason": result.get("reason"),
        "message": result.get("message"),
        "samples": result.get("samples", 0),
        "labelledSamples": result.get("labelledSamples", 0),
        "metrics": result.get("metrics") or {},
        "driftedFeatures": result.get("driftedFeatures") or [],
        "reportUri": result.get("reportUri"),
    }
    if retrain_decision is not None:
        payload["retrain"] = {"decision": retrain_decision.get("reason"), "message": retrain_decision.get("message"),
                              "trigger": retrain_decision.get("trigger"), "trainingRun": training_run}
    return payload


def webhook_headers(token: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "User-Agent": "kadence-operator"}
    if token:
        headers["Authorization"] = f"Bearer {token.strip()}"
    return headers


def alertmanager_labels(*, namespace: str, policy: str, severity: str, model: str | None,
                        version: str | None) -> dict[str, str]:
    """The labels that identify an episode's alert in Alertmanager (its fingerprint): the firing and
    the resolved alert must carry the same ones. An unknown model or version is left out, not blank."""
    labels = {"alertname": ALERTNAME, "severity": severity, "namespace": namespace, "policy": policy,
              "model": model, "version": version}
    return {k: v for k, v in labels.items() if v}


def alertmanager_alerts(*, labels: Mapping[str, str], result: Mapping[str, Any], state: AlertState, episode: str,
                        ends_after_seconds: float, inference_service: str) -> list[dict[str, Any]]:
    """The body of POST /api/v2/alerts (Alertmanager's postableAlerts) for one notice: the firing
    alert starts at the episode and ends `ends_after_seconds` later unless resolved first; the
    resolved one is the same alert (same labels, startsAt) with endsAt at the healthy evaluation."""
    metrics = result.get("metrics") or {}
    annotations = {
        "summary": f"{labels.get('policy')}: {result.get('reason')}" if state == FIRING
        else f"{labels.get('policy')}: healthy again",
        "description": str(result.get("message") or ""),
        "reason": str(result.get("reason") or ""),
        "inferenceService": inference_service,
        "metrics": ", ".join(f"{name}={value:.4g}" for name, value in sorted(metrics.items())),
        "samples": str(result.get("samples", 0)),
        "labelledSamples": str(result.get("labelledSamples", 0)),
        "driftedFeatures": ", ".join(result.get("driftedFeatures") or []),
    }
    if result.get("reportUri"):
        annotations["report"] = str(result["reportUri"])
    ends = (result.get("time") if state == RESOLVED
            else _iso(_parse(episode) + timedelta(seconds=ends_after_seconds)))
    alert: dict[str, Any] = {"labels": dict(labels), "annotations": {k: v for k, v in annotations.items() if v},
                             "startsAt": episode, "endsAt": ends}
    if str(result.get("reportUri") or "").startswith(("http://", "https://")):
        alert["generatorURL"] = result["reportUri"]
    return [alert]


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
