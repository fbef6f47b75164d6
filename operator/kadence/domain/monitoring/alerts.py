"""The body of the alert webhook (spec.actions.alert.webhook), built purely; the operator
POSTs it with `webhook_headers`. One alert per breached evaluation, and one when a retrain
starts or is held, so a receiver can tell what Kadence did about the breach."""

from __future__ import annotations

from typing import Any

ALERT_KIND = "kadence.dev/alert"


def alert_payload(*, namespace: str, policy: str, inference_service: str, result: dict[str, Any],
                  retrain_decision: dict[str, Any] | None = None, training_run: str | None = None) -> dict[str, Any]:
    """`result` is the monitor result (result.json, camelCase); `retrain_decision` the
    status.lastRetrainDecision written in the same reconcile, if any."""
    payload: dict[str, Any] = {
        "kind": ALERT_KIND,
        "version": 1,
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
