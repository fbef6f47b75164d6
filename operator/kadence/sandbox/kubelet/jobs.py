"""The Job controller: pods from the template, retries up to backoffLimit, deadlines, conditions."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from . import podspec
from .api import JOBS, ApiClient
from .informer import Informer, OwnerController, create_and_delete_pods, key_of, settled_children

log = logging.getLogger(__name__)

BACKOFF_LIMIT_MESSAGE = "Job has reached the specified backoff limit"
DEADLINE_MESSAGE = "Job was active longer than specified deadline"
COMPLETIONS_MESSAGE = "Reached expected number of succeeded pods"


@dataclass
class JobPlan:
    status: dict
    create: int = 0
    delete: list[str] = field(default_factory=list)
    requeue_after: float | None = None
    delete_job: bool = False


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _has_condition(status: dict, kind: str) -> dict | None:
    for condition in status.get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == "True":
            return condition
    return None


def _with_condition(conditions: list[dict], kind: str, reason: str, message: str, now: datetime) -> list[dict]:
    if any(c.get("type") == kind and c.get("status") == "True" for c in conditions):
        return conditions
    others = [c for c in conditions if c.get("type") != kind]
    return others + [{"type": kind, "status": "True", "reason": reason, "message": message,
                      "lastProbeTime": _iso(now), "lastTransitionTime": _iso(now)}]


def _pod_ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def _finished_at(pod: dict) -> datetime | None:
    times = []
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        terminated = (status.get("state") or {}).get("terminated") or {}
        moment = podspec.parse_time(terminated.get("finishedAt"))
        if moment:
            times.append(moment)
    return max(times) if times else None


def pod_failure_action(policy: dict | None, pod: dict) -> tuple[str, str]:
    """(action, message) of the first podFailurePolicy rule the failed pod matches; ("Count", "") if none."""
    meta = pod.get("metadata") or {}
    where = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
    for index, rule in enumerate((policy or {}).get("rules") or []):
        action = rule.get("action", "Count")
        exit_codes = rule.get("onExitCodes")
        if exit_codes:
            wanted = set(exit_codes.get("values") or [])
            for status in (pod.get("status") or {}).get("containerStatuses") or []:
                if exit_codes.get("containerName") and status.get("name") != exit_codes["containerName"]:
                    continue
                code = ((status.get("state") or {}).get("terminated") or {}).get("exitCode")
                if code is None or code == 0:
                    continue
                if (exit_codes.get("operator") == "In") == (code in wanted):
                    return action, (f"Container {status.get('name')} for pod {where} failed with exit code "
                                    f"{code} matching {action} rule at index {index}")
        for wanted in rule.get("onPodConditions") or []:
            for cond in (pod.get("status") or {}).get("conditions") or []:
                if cond.get("type") == wanted.get("type") and cond.get("status") == wanted.get("status", "True"):
                    return action, f"Pod {where} has condition {cond['type']} matching {action} rule at index {index}"
    return "Count", ""


def plan_job(job: dict, pods: list[dict], now: datetime, backoff: podspec.Backoff) -> JobPlan:
    """What the controller should do for `job` given its pods: new status, pods to create/delete."""
    spec = job.get("spec") or {}
    previous = copy.deepcopy(job.get("status") or {})
    conditions = list(previous.get("conditions") or [])
    parallelism = spec.get("parallelism")
    parallelism = 1 if parallelism is None else int(parallelism)
    completions = spec.get("completions")
    backoff_limit = 6 if spec.get("backoffLimit") is None else int(spec["backoffLimit"])
    restart_policy = ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy") or "Never"

    active, terminating, succeeded_pods, failed_pods = [], [], [], []
    for pod in pods:
        phase = (pod.get("status") or {}).get("phase") or "Pending"
        if phase == "Succeeded":
            succeeded_pods.append(pod)
        elif phase == "Failed":
            failed_pods.append(pod)
        elif pod["metadata"].get("deletionTimestamp"):
            terminating.append(pod)
        else:
            active.append(pod)
    fail_job_message = None
    counted_failures = []
    for failed_pod in failed_pods:
        action, message = pod_failure_action(spec.get("podFailurePolicy"), failed_pod)
        if action == "FailJob" and fail_job_message is None:
            fail_job_message = message
        if action != "Ignore":  # an ignored failure neither counts nor uses up the backoffLimit
            counted_failures.append(failed_pod)
    failed_pods = counted_failures
    succeeded = max(int(previous.get("succeeded") or 0), len(succeeded_pods))
    failed = max(int(previous.get("failed") or 0), len(failed_pods))

    status = {
        "active": len(active),
        "succeeded": succeeded,
        "failed": failed,
        "ready": sum(1 for p in active if _pod_ready(p)),
        "terminating": len(terminating),
        "uncountedTerminatedPods": {},
    }
    start_time = previous.get("startTime")
    plan = JobPlan(status=status)

    finished = _has_condition(previous, "Complete") or _has_condition(previous, "Failed")
    if finished:
        status.update({k: previous[k] for k in ("startTime", "completionTime") if k in previous})
        status["conditions"] = conditions
        status["active"] = 0
        plan.delete = [p["metadata"]["name"] for p in active]
        ttl = spec.get("ttlSecondsAfterFinished")
        if ttl is not None:
            done_at = podspec.parse_time(previous.get("completionTime") or finished.get("lastTransitionTime"))
            remaining = (done_at + timedelta(seconds=int(ttl)) - now).total_seconds() if done_at else 0
            if remaining <= 0:
                plan.delete_job = True
            else:
                plan.requeue_after = remaining
        return plan

    if spec.get("suspend"):
        status["conditions"] = conditions
        if start_time:
            status["startTime"] = start_time
        plan.delete = [p["metadata"]["name"] for p in active]
        return plan

    start = podspec.parse_time(start_time) or now
    status["startTime"] = _iso(start)

    failure = _has_condition(previous, "FailureTarget")
    if failure is None:
        restarts = sum(int(s.get("restartCount") or 0) for p in active
                       for s in (p.get("status") or {}).get("containerStatuses") or [])
        deadline = spec.get("activeDeadlineSeconds")
        if fail_job_message is not None:
            conditions = _with_condition(conditions, "FailureTarget", "PodFailurePolicy", fail_job_message, now)
        elif failed > backoff_limit or (restart_policy == "OnFailure" and backoff_limit and restarts >= backoff_limit)\
                or (restart_policy == "OnFailure" and backoff_limit == 0 and restarts > 0):
            conditions = _with_condition(conditions, "FailureTarget", "BackoffLimitExceeded",
                                         BACKOFF_LIMIT_MESSAGE, now)
        elif deadline is not None and (now - start).total_seconds() >= int(deadline):
            conditions = _with_condition(conditions, "FailureTarget", "DeadlineExceeded", DEADLINE_MESSAGE, now)
        elif deadline is not None:
            plan.requeue_after = int(deadline) - (now - start).total_seconds()
        failure = _has_condition({"conditions": conditions}, "FailureTarget")
    if failure is not None:
        # Terminate what still runs, then declare the Job Failed once nothing is left running.
        plan.delete = [p["metadata"]["name"] for p in active]
        if not active and not terminating:
            conditions = _with_condition(conditions, "Failed", failure["reason"], failure["message"], now)
        status["conditions"] = conditions
        status["active"] = 0
        return plan

    if completions is None:
        complete = succeeded >= 1 and not active
        wanted_active = 0 if succeeded >= 1 else parallelism
    else:
        complete = succeeded >= int(completions)
        wanted_active = min(parallelism, max(0, int(completions) - succeeded))
    if complete or _has_condition(previous, "SuccessCriteriaMet"):
        conditions = _with_condition(conditions, "SuccessCriteriaMet", "CompletionsReached",
                                     COMPLETIONS_MESSAGE, now)
        plan.delete = [p["metadata"]["name"] for p in active]
        if not active and not terminating:
            conditions = _with_condition(conditions, "Complete", "CompletionsReached", COMPLETIONS_MESSAGE, now)
            status["completionTime"] = _iso(now)
        status["conditions"] = conditions
        status["active"] = 0
        return plan

    missing = wanted_active - len(active)
    if missing > 0 and failed_pods and failed:
        last_failure = max((_finished_at(p) or now for p in failed_pods), default=now)
        wait = (last_failure + timedelta(seconds=backoff.delay(failed)) - now).total_seconds()
        if wait > 0:
            missing = 0
            plan.requeue_after = min(wait, plan.requeue_after or wait)
    plan.create = max(0, missing)
    status["conditions"] = conditions
    return plan


def job_pod(job: dict) -> dict:
    """A pod from the Job's template, owned by the Job and labelled as the Job controller labels it."""
    meta = job["metadata"]
    template = copy.deepcopy((job.get("spec") or {}).get("template") or {})
    pod_meta = template.get("metadata") or {}
    labels = dict(pod_meta.get("labels") or {})
    labels.update({
        "controller-uid": meta["uid"],
        "batch.kubernetes.io/controller-uid": meta["uid"],
        "job-name": meta["name"],
        "batch.kubernetes.io/job-name": meta["name"],
    })
    spec = template.get("spec") or {}
    spec.setdefault("restartPolicy", "Never")
    spec.setdefault("nodeName", podspec.NODE_NAME)
    return podspec.owned_pod(job, "Job", "batch/v1", labels, spec)


class JobController(OwnerController):
    def __init__(self, client: ApiClient, jobs: Informer, pods: Informer, backoff: podspec.Backoff):
        super().__init__(client, "job")
        self.jobs = jobs
        self.pods = pods
        self.backoff = backoff
        jobs.add_handler(self._on_job)
        pods.add_handler(self._on_pod)

    def _on_job(self, kind: str, job: dict, old: dict | None) -> None:
        if kind == "DELETED":
            uid = job["metadata"].get("uid", "")
            self.forget(uid)
            return
        self.queue.add(key_of(job))

    def _on_pod(self, kind: str, pod: dict, old: dict | None) -> None:
        self.enqueue_controller_of(pod, "Job")

    async def reconcile(self, key) -> None:
        namespace, name = key
        job = self.jobs.get(namespace, name)
        if job is None or job["metadata"].get("deletionTimestamp"):
            return
        uid = job["metadata"]["uid"]
        pods = settled_children(self.pods, self.expectations, namespace, uid)
        if pods is None:
            self.queue.add_after(key, 0.5)
            return
        plan = plan_job(job, pods, datetime.now(timezone.utc), self.backoff)
        await create_and_delete_pods(self.client, self.expectations, namespace, uid,
                                     plan.create, lambda: job_pod(job), plan.delete)
        # Compare with what we wrote too: a server that normalizes the status differently
        # must not make every write trigger another.
        if plan.status != (job.get("status") or {}) and plan.status != self._written.get(uid):
            await self.client.patch_status(JOBS, namespace, name, plan.status)
            self._written[uid] = plan.status
        if plan.delete_job:
            await self.client.delete(JOBS, namespace, name, propagation="Background", uid=uid)
        elif plan.requeue_after is not None:
            self.queue.add_after(key, plan.requeue_after + 0.05)

