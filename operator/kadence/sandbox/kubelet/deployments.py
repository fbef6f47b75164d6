"""Deployment and ReplicaSet controllers: template-hash ReplicaSets, rolling updates, status."""

from __future__ import annotations

import copy
import json
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from . import podspec
from .api import DEPLOYMENTS, PODS, REPLICASETS, ApiClient
from .informer import Informer, OwnerController, create_and_delete_pods, key_of, settled_children

log = logging.getLogger(__name__)

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def template_hash(template: dict, collision_count: int = 0) -> str:
    """FNV-1a of the template, spelled with Kubernetes' safe alphabet (no vowels, no look-alikes)."""
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    if collision_count:
        data += str(collision_count).encode()
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(_SAFE_ALPHABET[int(d)] for d in str(value))


def resolve_int_or_percent(value, total: int, round_up: bool) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%"):
        fraction = int(text[:-1]) * total / 100
        return math.ceil(fraction) if round_up else math.floor(fraction)
    return int(text)


def surge_and_unavailable(deployment: dict) -> tuple[int, int]:
    spec = deployment.get("spec") or {}
    desired = _replicas(deployment)
    rolling = ((spec.get("strategy") or {}).get("rollingUpdate") or {})
    surge = resolve_int_or_percent(rolling.get("maxSurge", "25%"), desired, round_up=True)
    unavailable = resolve_int_or_percent(rolling.get("maxUnavailable", "25%"), desired, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # as Kubernetes: both zero would never make progress
    return surge, unavailable


def _replicas(obj: dict) -> int:
    value = (obj.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def pod_available(pod: dict, min_ready_seconds: int, now: datetime) -> bool:
    if pod["metadata"].get("deletionTimestamp"):
        return False
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready" and condition.get("status") == "True":
            if min_ready_seconds <= 0:
                return True
            since = podspec.parse_time(condition.get("lastTransitionTime"))
            return since is not None and since + timedelta(seconds=min_ready_seconds) <= now
    return False


def pod_ready(pod: dict) -> bool:
    return pod_available(pod, 0, datetime.now(timezone.utc))


@dataclass
class SetView:
    """One ReplicaSet as the rollout sees it."""

    name: str
    replicas: int  # spec.replicas
    available: int
    created: str = ""


def plan_rolling(desired: int, surge: int, unavailable: int, new: SetView,
                 olds: list[SetView]) -> dict[str, int]:
    """New spec.replicas per ReplicaSet for one step of a rolling update (Kubernetes' algorithm)."""
    targets = {rs.name: rs.replicas for rs in [new, *olds]}
    active_olds = [rs for rs in olds if rs.replicas > 0]
    if not active_olds:
        targets[new.name] = desired
        return targets
    total = new.replicas + sum(rs.replicas for rs in olds)
    if new.replicas < desired:
        room = desired + surge - total
        targets[new.name] = min(desired, new.replicas + max(0, room))
    elif new.replicas > desired:
        targets[new.name] = desired
    # Scale old sets down, never below the minimum available, unhealthy pods first.
    min_available = desired - unavailable
    new_unavailable = max(0, new.replicas - new.available)
    budget = total - min_available - new_unavailable
    if budget <= 0:
        return targets
    ordered = sorted(active_olds, key=lambda rs: rs.created)
    for rs in ordered:
        unhealthy = max(0, rs.replicas - rs.available)
        cut = min(unhealthy, budget)
        if cut:
            targets[rs.name] = rs.replicas - cut
            budget -= cut
    available_total = new.available + sum(rs.available for rs in olds)
    healthy_budget = min(budget, available_total - min_available)
    for rs in ordered:
        if healthy_budget <= 0:
            break
        current = targets[rs.name]
        cut = min(current, healthy_budget)
        targets[rs.name] = current - cut
        healthy_budget -= cut
    return targets


def plan_recreate(desired: int, new: SetView, olds: list[SetView], old_pods_left: int) -> dict[str, int]:
    targets = {rs.name: 0 for rs in olds}
    targets[new.name] = desired if old_pods_left == 0 and all(rs.replicas == 0 for rs in olds) else 0
    return targets


def _condition(previous: list[dict], kind: str, status: str, reason: str, message: str, now: datetime,
               progressed: bool = False) -> dict:
    old = next((c for c in previous if c.get("type") == kind), None)
    same = old is not None and old.get("status") == status
    transition = old["lastTransitionTime"] if same and old.get("lastTransitionTime") else _iso(now)
    unchanged = same and old.get("reason") == reason and old.get("message") == message and not progressed
    update = old.get("lastUpdateTime", transition) if unchanged else _iso(now)
    return {"type": kind, "status": status, "lastUpdateTime": update, "lastTransitionTime": transition,
            "reason": reason, "message": message}


def deployment_status(deployment: dict, new_name: str, new_created: bool, pods_by_set: dict[str, list[dict]],
                      spec_replicas: dict[str, int], now: datetime) -> dict:
    """Deployment status from the pods of each of its ReplicaSets, with Available and Progressing."""
    spec = deployment.get("spec") or {}
    previous = deployment.get("status") or {}
    desired = _replicas(deployment)
    min_ready = int(spec.get("minReadySeconds") or 0)
    _, unavailable = surge_and_unavailable(deployment)

    def live(pods):
        return [p for p in pods if not p["metadata"].get("deletionTimestamp")
                and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]

    all_pods = [p for pods in pods_by_set.values() for p in live(pods)]
    new_pods = live(pods_by_set.get(new_name, []))
    replicas = len(all_pods)
    ready = sum(1 for p in all_pods if pod_ready(p))
    available = sum(1 for p in all_pods if pod_available(p, min_ready, now))
    updated = len(new_pods)
    status = {
        "observedGeneration": deployment["metadata"].get("generation", 1),
        "replicas": replicas,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": available,
        "unavailableReplicas": max(0, sum(spec_replicas.values()) - available),
    }
    conditions = list(previous.get("conditions") or [])
    counts_changed = any(previous.get(k, 0) != status[k] for k in
                         ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas"))
    if available >= desired - unavailable:
        available_condition = _condition(conditions, "Available", "True", "MinimumReplicasAvailable",
                                         "Deployment has minimum availability.", now)
    else:
        available_condition = _condition(conditions, "Available", "False", "MinimumReplicasUnavailable",
                                         "Deployment does not have minimum availability.", now)
    new_available = sum(1 for p in new_pods if pod_available(p, min_ready, now))
    complete = updated == desired and replicas == desired and new_available == desired
    old_progress = next((c for c in conditions if c.get("type") == "Progressing"), None)
    deadline = spec.get("progressDeadlineSeconds", 600)
    if complete:
        progressing = _condition(conditions, "Progressing", "True", "NewReplicaSetAvailable",
                                 f'ReplicaSet "{new_name}" has successfully progressed.', now)
    elif new_created:
        progressing = _condition(conditions, "Progressing", "True", "NewReplicaSetCreated",
                                 f'Created new replica set "{new_name}"', now, progressed=True)
    else:
        progressing = _condition(conditions, "Progressing", "True", "ReplicaSetUpdated",
                                 f'ReplicaSet "{new_name}" is progressing.', now, progressed=counts_changed)
        last = podspec.parse_time(progressing.get("lastUpdateTime"))
        if old_progress and old_progress.get("reason") == "ProgressDeadlineExceeded" and not counts_changed:
            progressing = old_progress
        elif deadline is not None and last and (now - last).total_seconds() > int(deadline):
            progressing = _condition(conditions, "Progressing", "False", "ProgressDeadlineExceeded",
                                     f'ReplicaSet "{new_name}" has timed out progressing.', now)
    status["conditions"] = [available_condition, progressing]
    return status


def replicaset_for(deployment: dict, pod_hash: str, revision: int, replicas: int) -> dict:
    meta = deployment["metadata"]
    spec = deployment.get("spec") or {}
    template = copy.deepcopy(spec.get("template") or {})
    template.setdefault("metadata", {})
    template["metadata"]["labels"] = {**(template["metadata"].get("labels") or {}), HASH_LABEL: pod_hash}
    selector = copy.deepcopy(spec.get("selector") or {})
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: pod_hash}
    surge, _ = surge_and_unavailable(deployment)
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{meta['name']}-{pod_hash}",
            "namespace": meta.get("namespace") or "default",
            "labels": {**(template["metadata"].get("labels") or {})},
            "annotations": {
                REVISION: str(revision),
                DESIRED_REPLICAS: str(_replicas(deployment)),
                MAX_REPLICAS: str(_replicas(deployment) + surge),
            },
            "ownerReferences": [podspec.owner_reference(deployment, "Deployment", "apps/v1")],
        },
        "spec": {
            "replicas": replicas,
            "minReadySeconds": int(spec.get("minReadySeconds") or 0),
            "selector": selector,
            "template": template,
        },
    }


def _template_without_hash(rs: dict) -> dict:
    template = copy.deepcopy((rs.get("spec") or {}).get("template") or {})
    labels = dict((template.get("metadata") or {}).get("labels") or {})
    labels.pop(HASH_LABEL, None)
    template.setdefault("metadata", {})["labels"] = labels
    return template


def _revision(rs: dict) -> int:
    try:
        return int((rs["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


@dataclass
class ReplicaSetPlan:
    create: int = 0
    delete: list[str] = field(default_factory=list)
    status: dict = field(default_factory=dict)


def _deletion_rank(pod: dict) -> tuple:
    """Pods to remove first: not yet running, then not ready, then the youngest (as Kubernetes ranks)."""
    status = pod.get("status") or {}
    phase_rank = {"Pending": 0, "Running": 1}.get(status.get("phase") or "Pending", 0)
    restarts = sum(int(s.get("restartCount") or 0) for s in status.get("containerStatuses") or [])
    created = pod["metadata"].get("creationTimestamp") or ""
    return (phase_rank, 1 if pod_ready(pod) else 0, -restarts, _negate(created))


def _negate(text: str) -> tuple:
    return tuple(-ord(ch) for ch in text)


def plan_replicaset(rs: dict, pods: list[dict], now: datetime) -> ReplicaSetPlan:
    wanted = _replicas(rs)
    min_ready = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
    finished = [p for p in pods if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed")
                and not p["metadata"].get("deletionTimestamp")]
    active = [p for p in pods if not p["metadata"].get("deletionTimestamp")
              and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
    plan = ReplicaSetPlan()
    plan.delete = [p["metadata"]["name"] for p in finished]
    if len(active) < wanted:
        plan.create = wanted - len(active)
    elif len(active) > wanted:
        victims = sorted(active, key=_deletion_rank)[: len(active) - wanted]
        plan.delete += [p["metadata"]["name"] for p in victims]
    selector = (rs.get("spec") or {}).get("selector")
    plan.status = {
        "replicas": len(active),
        "fullyLabeledReplicas": sum(1 for p in active
                                    if podspec.selector_matches(selector, p["metadata"].get("labels"))),
        "readyReplicas": sum(1 for p in active if pod_ready(p)),
        "availableReplicas": sum(1 for p in active if pod_available(p, min_ready, now)),
        "observedGeneration": rs["metadata"].get("generation", 1),
    }
    return plan


def replicaset_pod(rs: dict) -> dict:
    template = copy.deepcopy((rs.get("spec") or {}).get("template") or {})
    pod_meta = template.get("metadata") or {}
    return podspec.owned_pod(rs, "ReplicaSet", "apps/v1", dict(pod_meta.get("labels") or {}),
                             {**(template.get("spec") or {}), "nodeName": podspec.NODE_NAME})


class ReplicaSetController(OwnerController):
    def __init__(self, client: ApiClient, replicasets: Informer, pods: Informer):
        super().__init__(client, "replicaset")
        self.replicasets = replicasets
        self.pods = pods
        replicasets.add_handler(self._on_replicaset)
        pods.add_handler(self._on_pod)

    def _on_replicaset(self, kind: str, rs: dict, old: dict | None) -> None:
        if kind == "DELETED":
            # Normally the API server's garbage collector removes the pods; make sure.
            uid = rs["metadata"].get("uid")
            for pod in self.pods.objects(rs["metadata"].get("namespace") or ""):
                if podspec.controller_uid(pod) == uid and not pod["metadata"].get("deletionTimestamp"):
                    self.queue.add(("__orphan__", f"{pod['metadata'].get('namespace')}/{pod['metadata']['name']}"))
            self.forget(uid)
            return
        self.queue.add(key_of(rs))

    def _on_pod(self, kind: str, pod: dict, old: dict | None) -> None:
        self.enqueue_controller_of(pod, "ReplicaSet")

    async def reconcile(self, key) -> None:
        namespace, name = key
        if namespace == "__orphan__":
            pod_ns, pod_name = name.split("/", 1)
            await self.client.delete(PODS, pod_ns, pod_name)
            return
        rs = self.replicasets.get(namespace, name)
        if rs is None or rs["metadata"].get("deletionTimestamp"):
            return
        uid = rs["metadata"]["uid"]
        pods = settled_children(self.pods, self.expectations, namespace, uid)
        if pods is None:
            self.queue.add_after(key, 0.5)
            return
        now = datetime.now(timezone.utc)
        plan = plan_replicaset(rs, pods, now)
        await create_and_delete_pods(self.client, self.expectations, namespace, uid,
                                     plan.create, lambda: replicaset_pod(rs), plan.delete)
        current = {k: (rs.get("status") or {}).get(k) for k in plan.status}
        if plan.status != current and plan.status != self._written.get(uid):
            await self.client.patch_status(REPLICASETS, namespace, name, plan.status)
            self._written[uid] = plan.status
        min_ready = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
        if min_ready and plan.status["readyReplicas"] > plan.status["availableReplicas"]:
            self.queue.add_after(key, min_ready)


class DeploymentController(OwnerController):
    def __init__(self, client: ApiClient, deployments: Informer, replicasets: Informer, pods: Informer):
        super().__init__(client, "deployment")
        self.deployments = deployments
        self.replicasets = replicasets
        self.pods = pods
        deployments.add_handler(self._on_deployment)
        replicasets.add_handler(self._on_replicaset)
        pods.add_handler(self._on_pod)

    def _on_deployment(self, kind: str, deployment: dict, old: dict | None) -> None:
        if kind == "DELETED":
            uid = deployment["metadata"].get("uid")
            namespace = deployment["metadata"].get("namespace") or ""
            for rs in self.replicasets.objects(namespace):
                if podspec.controller_uid(rs) == uid:
                    self.queue.add(("__orphan__", f"{namespace}/{rs['metadata']['name']}"))
            self.forget(uid)
            return
        self.queue.add(key_of(deployment))

    def _on_replicaset(self, kind: str, rs: dict, old: dict | None) -> None:
        self.enqueue_controller_of(rs, "Deployment")

    def _on_pod(self, kind: str, pod: dict, old: dict | None) -> None:
        rs_key = podspec.controller_key(pod, "ReplicaSet")
        if rs_key:
            rs = self.replicasets.get(*rs_key)
            if rs is not None:
                self.enqueue_controller_of(rs, "Deployment")

    async def reconcile(self, key) -> None:
        namespace, name = key
        if namespace == "__orphan__":
            rs_ns, rs_name = name.split("/", 1)
            await self.client.delete(REPLICASETS, rs_ns, rs_name, propagation="Background")
            return
        deployment = self.deployments.get(namespace, name)
        if deployment is None or deployment["metadata"].get("deletionTimestamp"):
            return
        uid = deployment["metadata"]["uid"]
        spec = deployment.get("spec") or {}
        owned = settled_children(self.replicasets, self.expectations, namespace, uid)
        if owned is None:
            self.queue.add_after(key, 0.5)
            return
        now = datetime.now(timezone.utc)
        desired = _replicas(deployment)
        template = spec.get("template") or {}
        collision = int((deployment.get("status") or {}).get("collisionCount") or 0)
        pod_hash = template_hash(template, collision)
        new = next((rs for rs in owned if (rs["metadata"].get("labels") or {}).get(HASH_LABEL) == pod_hash
                    or _template_without_hash(rs) == template), None)
        olds = [rs for rs in owned if rs is not new]
        max_revision = max((_revision(rs) for rs in owned), default=0)
        if spec.get("paused"):
            return
        new_created = False
        if new is None:
            new_revision = max_revision + 1
            new = await self.client.create(REPLICASETS, namespace,
                                           replicaset_for(deployment, pod_hash, new_revision, 0))
            self.expectations.expect_create(uid, new["metadata"]["name"])
            new_created = True
        elif _revision(new) < max_revision:  # back to an older template: it becomes the newest revision
            new_revision = max_revision + 1
            await self.client.merge_patch(REPLICASETS, namespace, new["metadata"]["name"],
                                          {"metadata": {"annotations": {REVISION: str(new_revision)}}})
        else:
            new_revision = _revision(new)

        pods_by_set: dict[str, list[dict]] = {}
        rs_uids = {rs["metadata"]["uid"]: rs["metadata"]["name"] for rs in [new, *olds]}
        for pod in self.pods.objects(namespace):
            owner = rs_uids.get(podspec.controller_uid(pod) or "")
            if owner:
                pods_by_set.setdefault(owner, []).append(pod)
        min_ready = int(spec.get("minReadySeconds") or 0)

        def view(rs: dict) -> SetView:
            pods = pods_by_set.get(rs["metadata"]["name"], [])
            return SetView(rs["metadata"]["name"], _replicas(rs),
                           sum(1 for p in pods if pod_available(p, min_ready, now)),
                           rs["metadata"].get("creationTimestamp") or "")

        strategy = (spec.get("strategy") or {}).get("type") or "RollingUpdate"
        if strategy == "Recreate":
            old_pods_left = sum(len(pods_by_set.get(rs["metadata"]["name"], [])) for rs in olds)
            targets = plan_recreate(desired, view(new), [view(rs) for rs in olds], old_pods_left)
        else:
            surge, unavailable = surge_and_unavailable(deployment)
            targets = plan_rolling(desired, surge, unavailable, view(new), [view(rs) for rs in olds])
        for rs in [new, *olds]:
            target = targets.get(rs["metadata"]["name"], _replicas(rs))
            if target != _replicas(rs):
                await self.client.merge_patch(REPLICASETS, namespace, rs["metadata"]["name"],
                                              {"spec": {"replicas": target}})
        await self._clean_up_history(deployment, olds, targets)

        if (deployment["metadata"].get("annotations") or {}).get(REVISION) != str(new_revision):
            await self.client.merge_patch(DEPLOYMENTS, namespace, name,
                                          {"metadata": {"annotations": {REVISION: str(new_revision)}}})
        status = deployment_status(deployment, new["metadata"]["name"], new_created, pods_by_set,
                                   targets, now)
        current = deployment.get("status") or {}
        if _differs(status, current) and _differs(status, self._written.get(uid) or {}):
            await self.client.patch_status(DEPLOYMENTS, namespace, name, status)
            self._written[uid] = status
        if status["availableReplicas"] < status["readyReplicas"] or status["updatedReplicas"] != desired or \
                status["replicas"] != desired:
            # Waiting on minReadySeconds or on pods: look again even without events.
            self.queue.add_after(key, max(1.0, float(min_ready)))

    async def _clean_up_history(self, deployment: dict, olds: list[dict], targets: dict[str, int]) -> None:
        limit = (deployment.get("spec") or {}).get("revisionHistoryLimit")
        limit = 10 if limit is None else int(limit)
        idle = [rs for rs in olds if targets.get(rs["metadata"]["name"], 0) == 0
                and (rs.get("status") or {}).get("replicas", 0) == 0]
        idle.sort(key=_revision)
        for rs in idle[: max(0, len(idle) - limit)]:
            await self.client.delete(REPLICASETS, rs["metadata"].get("namespace"), rs["metadata"]["name"],
                                     propagation="Background")


def _differs(new: dict, old: dict) -> bool:
    """Status differs ignoring the timestamps inside unchanged conditions."""
    def strip(status: dict) -> dict:
        copy_ = dict(status)
        copy_["conditions"] = [{k: v for k, v in c.items() if k not in ("lastUpdateTime", "lastTransitionTime")}
                               for c in status.get("conditions") or []]
        return copy_
    return strip(new) != strip(old)
