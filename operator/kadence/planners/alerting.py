"""MonitorPolicy alerts: (policy, its evaluation, its alert Jobs) -> the alert Jobs to create,
status.alerting and Events. Pure; the MonitorPolicy planner calls `plan_alerts` once per
evaluation it applies, and `report_deliveries` on every pass.

Each alert goes to the receivers the policy names: the webhook (Kadence's JSON alert) and
Alertmanager's v2 API (the same episode as a postable alert whose labels, kept in
status.alerting.labels, are repeated by the resolved one so Alertmanager ends that alert).

Which alert to send is decided in `domain.monitoring.alerts.alerts_to_send` (one per breach
episode, one when resolved). Each alert is a ConfigMap (the `kadence alert` task: URL and JSON
payload) and a Job named `<policy>-alert-<key>`, the key derived from the episode and the state:
an operator restart or a repeated reconcile plans the same name, never a second alert. The Job
gets the webhook Secret's key as KADENCE_ALERT_TOKEN through a secretKeyRef, so the operator
never reads a Secret, and it POSTs with a short timeout and retries off the operator entirely.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ..api.monitorpolicy import MonitorPolicySpec
from .batch_monitoring import watched
from ..builders.jobs import WorkloadSettings, job_state, task_configmap, workload_job
from ..builders.meta import child_name
from ..api.common import parse_duration
from ..domain.monitoring.alerts import (ALERTMANAGER_PATH, FIRING, AlertNotice, alert_payload, alertmanager_alerts,
                                        alertmanager_labels, alerts_to_send)
from .plan import ChildRef, EventSpec, Plan
from ..api import keys

COMPONENT = "alert"
TOKEN_ENV = "KADENCE_ALERT_TOKEN"
STATE_ANNOTATION = keys.ALERT_STATE_ANNOTATION


@dataclass
class AlertPlan:
    children: list[dict] = field(default_factory=list)
    alerting: dict[str, Any] | None = None  # the new status.alerting; None: leave it as it is
    events: list[EventSpec] = field(default_factory=list)


def alert_job_name(policy: str, notice: AlertNotice) -> str:
    return child_name(policy, COMPONENT, notice.key)


def is_alert_job(job: Mapping[str, Any]) -> bool:
    return STATE_ANNOTATION in ((job.get("metadata") or {}).get("annotations") or {})


def alert_children(body: dict, spec: MonitorPolicySpec, notice: AlertNotice, settings: WorkloadSettings,
                   retrain_decision: Mapping[str, Any] | None = None,
                   labels: Mapping[str, str] | None = None) -> list[dict]:
    """The task ConfigMap and Job delivering `notice` to every receiver of the policy; `labels`
    are the episode's Alertmanager labels (needed when spec.actions.alert.alertmanager is set)."""
    meta = body["metadata"]
    webhook, alertmanager = spec.actions.alert.webhook, spec.actions.alert.alertmanager
    name = alert_job_name(meta["name"], notice)
    receivers: list[dict[str, Any]] = []
    if webhook is not None:
        decision = retrain_decision if notice.state == FIRING else None
        payload = alert_payload(namespace=meta["namespace"], policy=meta["name"],
                                inference_service=watched(spec).name, result=notice.result,
                                retrain_decision=decision, training_run=(decision or {}).get("trainingRun"),
                                state=notice.state, episode=notice.episode)
        receivers.append({"kind": "webhook", "url": webhook.url, "payload": payload,
                          "bearer": webhook.secret_ref is not None})
    if alertmanager is not None:
        receivers.append({"kind": "alertmanager", "url": alertmanager.url.rstrip("/") + ALERTMANAGER_PATH,
                          "payload": alertmanager_alerts(labels=labels or {}, result=notice.result,
                                                         state=notice.state, episode=notice.episode,
                                                         ends_after_seconds=parse_duration(alertmanager.ends_after),
                                                         inference_service=watched(spec).name)})
    task = {"receivers": receivers}
    token_env = ([{"name": TOKEN_ENV, "valueFrom": {"secretKeyRef": {"name": webhook.secret_ref.name,
                                                                    "key": webhook.secret_ref.key}}}]
                 if webhook is not None and webhook.secret_ref is not None else [])
    return [task_configmap(body, name, COMPONENT, task),
            workload_job(body, name, COMPONENT, ["kadence", "alert"], settings, extra_env=token_env,
                         annotations={STATE_ANNOTATION: notice.state})]


def plan_alerts(body: dict, spec: MonitorPolicySpec, status: Mapping[str, Any], result: Mapping[str, Any],
                settings: WorkloadSettings = WorkloadSettings(),
                retrain_decision: Mapping[str, Any] | None = None,
                model: str | None = None, version: str | None = None) -> AlertPlan:
    """The alerts an applied evaluation (`result`, camelCase) calls for; nothing without a receiver.
    `model` and `version` are the served ModelVersion's (Alertmanager's labels of a new episode)."""
    plan = AlertPlan()
    alert = spec.actions.alert
    if alert.webhook is None and alert.alertmanager is None:
        return plan
    previous = status.get("alerting")
    notices, plan.alerting = alerts_to_send(previous, result)
    for notice in notices:
        labels = None
        if alert.alertmanager is not None:
            labels = ((previous or {}).get("labels") if notice.state != FIRING else None) or alertmanager_labels(
                namespace=body["metadata"]["namespace"], policy=body["metadata"]["name"],
                severity=alert.alertmanager.severity, model=model, version=version)
        plan.children += alert_children(body, spec, notice, settings, retrain_decision, labels)
        name = alert_job_name(body["metadata"]["name"], notice)
        plan.alerting = {**plan.alerting, "job": name, **({"labels": labels} if labels else {})}
        receivers = " and ".join(r for r, on in (("the webhook", alert.webhook), ("Alertmanager", alert.alertmanager))
                                 if on is not None)
        plan.events.append(EventSpec("Normal", "AlertFiring" if notice.state == FIRING else "AlertResolved",
                                     f"alert ({notice.state}) of the breach episode that began {notice.episode}: "
                                     f"Job {name} posts it to {receivers}"))
    return plan


def report_deliveries(status: Mapping[str, Any], jobs: list[dict]) -> tuple[dict[str, Any] | None,
                                                                           list[EventSpec]]:
    """status.alerting with the delivery of its alert Job once that Job finished (a Warning
    Event when it was not delivered), or (None, []) when there is nothing new to say."""
    alerting = dict(status.get("alerting") or {})
    name = alerting.get("job")
    job = next((j for j in jobs if j["metadata"]["name"] == name and is_alert_job(j)), None)
    if job is None or job_state(job) == "Running":
        return None, []
    delivered = "Delivered" if job_state(job) == "Succeeded" else "Failed"
    if alerting.get("delivery") == delivered:
        return None, []
    alerting["delivery"] = delivered
    if delivered == "Failed":
        return alerting, [EventSpec("Warning", "AlertNotDelivered",
                                    f"alert Job {name} could not deliver the {alerting.get('state')} alert of the "
                                    f"episode that began {alerting.get('episode')}; see its logs")]
    return alerting, []


def apply_alerts(plan: Plan, body: dict, spec: MonitorPolicySpec, status: Mapping[str, Any],
                 result: Mapping[str, Any] | None, jobs: list[dict],
                 settings: WorkloadSettings = WorkloadSettings(),
                 model: str | None = None, version: str | None = None) -> None:
    """Into the MonitorPolicy's plan: the alert Jobs the evaluation applied in this pass (`result`,
    None when none was) calls for, status.alerting, Events, and the deletion of finished alert Jobs
    other than the last one (which stays as the record of its delivery)."""
    decision = _status_value(plan, "lastRetrainDecision")
    planned = (plan_alerts(body, spec, status, result, settings, decision, model, version) if result is not None
               else AlertPlan())
    if planned.alerting is None or planned.alerting == status.get("alerting"):
        planned.alerting, delivered_events = report_deliveries(status, jobs)
        planned.events += delivered_events
    plan.children += planned.children
    plan.events += planned.events
    if planned.alerting is not None:
        _set_status(plan, "alerting", planned.alerting)
    current = (planned.alerting or status.get("alerting") or {}).get("job")
    for job in jobs:
        name = job["metadata"]["name"]
        if is_alert_job(job) and name != current and job_state(job) != "Running":
            plan.delete += [ChildRef("batch/v1", "Job", name), ChildRef("v1", "ConfigMap", name)]


def _status_value(plan: Plan, wire_name: str) -> Any:
    status = plan.status
    if isinstance(status, dict):
        return status.get(wire_name)
    field = next((n for n, f in type(status).model_fields.items() if (f.alias or n) == wire_name), None)
    value = getattr(status, field) if field and field in status.model_fields_set else None
    return value.model_dump(by_alias=True, mode="json", exclude_none=True) if hasattr(value, "model_dump") else value


def _set_status(plan: Plan, wire_name: str, value: Any) -> None:
    status = plan.status
    if isinstance(status, dict):
        status[wire_name] = value
        return
    field = next(n for n, f in type(status).model_fields.items() if (f.alias or n) == wire_name)
    setattr(status, field, value)
