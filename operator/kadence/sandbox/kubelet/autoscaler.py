"""A HorizontalPodAutoscaler controller for CPU and memory, measured from the pods' processes.

On a cluster metrics-server reports each pod's usage; here the node knows every
pod's processes, so usage is the CPU time (or resident memory) of each
container's process tree.  The scaling rule is Kubernetes' own: desired =
ceil(current × usage / target), nothing done within a 10 % tolerance, clamped
to [minReplicas, maxReplicas], scale-up limited to max(2×, +4) per step, and
scale-down held back by the stabilization window (default 300 s).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass

import psutil

from . import podspec
from .api import DEPLOYMENTS, HPAS, ApiClient
from .informer import Informer

log = logging.getLogger(__name__)

TOLERANCE = 0.1
DEFAULT_SCALE_DOWN_WINDOW = 300


def parse_quantity(text) -> float:
    """A Kubernetes quantity as a float: "250m" -> 0.25, "1.5" -> 1.5, "512Mi" -> 536870912."""
    value = str(text).strip()
    suffixes = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
                "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40}
    for suffix in sorted(suffixes, key=len, reverse=True):
        if value.endswith(suffix):
            return float(value[: -len(suffix)]) * suffixes[suffix]
    return float(value)


def format_cpu(cores: float) -> str:
    return f"{round(cores * 1000)}m"


@dataclass(frozen=True)
class MetricTarget:
    resource: str  # cpu | memory
    utilization: int | None  # percent of the request
    average_value: float | None  # cores or bytes per pod


def metric_targets(hpa: dict) -> list[MetricTarget]:
    targets = []
    for metric in (hpa.get("spec") or {}).get("metrics") or []:
        if metric.get("type") != "Resource":
            continue
        resource = metric.get("resource") or {}
        target = resource.get("target") or {}
        if target.get("type") == "Utilization":
            targets.append(MetricTarget(resource.get("name", ""), int(target.get("averageUtilization") or 80), None))
        elif target.get("type") == "AverageValue":
            targets.append(MetricTarget(resource.get("name", ""), None, parse_quantity(target["averageValue"])))
    if not (hpa.get("spec") or {}).get("metrics"):
        targets.append(MetricTarget("cpu", 80, None))  # autoscaling/v1's default
    return targets


def desired_replicas(current: int, usage_ratio: float) -> int:
    """Kubernetes' rule: no change within the tolerance, else ceil(current × ratio)."""
    if abs(usage_ratio - 1.0) <= TOLERANCE:
        return current
    return math.ceil(current * usage_ratio)


def clamp_and_limit(current: int, wanted: int, minimum: int, maximum: int) -> tuple[int, str, str]:
    """(replicas, ScalingLimited reason, message) after the bounds and the scale-up rate limit."""
    scale_up_limit = max(2 * current, current + 4)
    if wanted > maximum:
        return maximum, "TooManyReplicas", "the desired replica count is more than the maximum replica count"
    if wanted < minimum:
        return minimum, "TooFewReplicas", "the desired replica count is less than the minimum replica count"
    if wanted > scale_up_limit:
        return scale_up_limit, "ScaleUpLimit", "the desired replica count is increasing faster than the maximum " \
                                               "scale rate"
    return wanted, "DesiredWithinRange", "the desired count is within the acceptable range"


def stabilized(recommendations: list[tuple[float, int]], now: float, window: float, wanted: int) -> int:
    """Scale down only to the highest recommendation within the window (prevents flapping)."""
    recent = [replicas for at, replicas in recommendations if now - at <= window]
    return max([wanted, *recent])


class ProcessUsage:
    """CPU cores and resident bytes of a pod's process trees, from successive samples."""

    def __init__(self) -> None:
        self._last: dict[int, tuple[float, float]] = {}  # leader pid -> (monotonic time, cpu seconds)

    def sample(self, pid: int) -> tuple[float | None, float]:
        try:
            leader = psutil.Process(pid)
            tree = [leader, *leader.children(recursive=True)]
        except psutil.Error:
            return None, 0.0
        cpu_seconds = rss = 0.0
        for proc in tree:
            try:
                times = proc.cpu_times()
                cpu_seconds += times.user + times.system + getattr(times, "children_user", 0) + \
                    getattr(times, "children_system", 0)
                rss += proc.memory_info().rss
            except psutil.Error:
                continue
        now = time.monotonic()
        previous = self._last.get(pid)
        self._last[pid] = (now, cpu_seconds)
        if previous is None or now <= previous[0]:
            return None, rss
        return max(0.0, (cpu_seconds - previous[1]) / (now - previous[0])), rss

    def forget_except(self, pids: set[int]) -> None:
        for pid in list(self._last):
            if pid not in pids:
                del self._last[pid]


def _condition(kind: str, status: bool, reason: str, message: str, previous: list[dict], now: str) -> dict:
    old = next((c for c in previous if c.get("type") == kind), None)
    value = "True" if status else "False"
    since = old["lastTransitionTime"] if old and old.get("status") == value and old.get("lastTransitionTime") \
        else now
    return {"type": kind, "status": value, "reason": reason, "message": message, "lastTransitionTime": since}


class AutoscalerController:
    def __init__(self, client: ApiClient, hpas: Informer, deployments: Informer, pods: Informer, kubelet,
                 sync_period: float = 15.0):
        self.client = client
        self.hpas = hpas
        self.deployments = deployments
        self.pods = pods
        self.kubelet = kubelet
        self.sync_period = sync_period
        self.usage = ProcessUsage()
        self._recommendations: dict[str, list[tuple[float, int]]] = {}

    async def run(self) -> None:
        while True:
            pids_seen: set[int] = set()
            for hpa in self.hpas.objects():
                try:
                    await self.sync(hpa, pids_seen)
                except Exception:  # noqa: BLE001 - one autoscaler must not stop the others
                    log.exception("autoscaler %s/%s", hpa["metadata"].get("namespace"), hpa["metadata"]["name"])
            self.usage.forget_except(pids_seen)
            live = {h["metadata"].get("uid") for h in self.hpas.objects()}
            for uid in list(self._recommendations):
                if uid not in live:
                    del self._recommendations[uid]
            await asyncio.sleep(self.sync_period)

    def _pod_pids(self, pod: dict) -> list[int]:
        worker = self.kubelet.workers.get(pod["metadata"].get("uid", ""))
        if worker is None:
            return []
        return [c.process.pid for c in worker.containers
                if c.process is not None and c.process.returncode is None]

    async def sync(self, hpa: dict, pids_seen: set[int]) -> None:
        meta, spec = hpa["metadata"], hpa.get("spec") or {}
        namespace = meta.get("namespace") or "default"
        ref = spec.get("scaleTargetRef") or {}
        previous = (hpa.get("status") or {}).get("conditions") or []
        now_iso = podspec.now_iso()
        if ref.get("kind") != "Deployment":
            return
        deployment = self.deployments.get(namespace, ref.get("name", ""))
        if deployment is None:
            await self._status(hpa, 0, 0, [], [
                _condition("AbleToScale", False, "FailedGetScale",
                           f'deployments/scale.apps "{ref.get("name")}" not found', previous, now_iso)])
            return
        current = int((deployment.get("spec") or {}).get("replicas") or 0)
        selector = (deployment.get("spec") or {}).get("selector")
        pods = [p for p in self.pods.objects(namespace)
                if podspec.selector_matches(selector, p["metadata"].get("labels"))
                and not p["metadata"].get("deletionTimestamp")
                and (p.get("status") or {}).get("phase") == "Running"]
        minimum = int(spec.get("minReplicas") or 1)
        maximum = int(spec.get("maxReplicas") or minimum)
        proposals, current_metrics, problem = [], [], None
        for target in metric_targets(hpa):
            ratio, metric, problem = self._measure(target, pods, pids_seen)
            if ratio is not None:
                proposals.append(desired_replicas(current, ratio))
                current_metrics.append(metric)
        conditions = []
        if current == 0:
            conditions.append(_condition("ScalingActive", False, "ScalingDisabled",
                                         "scaling is disabled since the replica count of the target is zero",
                                         previous, now_iso))
            await self._status(hpa, 0, 0, current_metrics, conditions)
            return
        if not proposals:
            conditions.append(_condition("AbleToScale", True, "SucceededGetScale",
                                         "the HPA controller was able to get the target's current scale",
                                         previous, now_iso))
            conditions.append(_condition("ScalingActive", False, "FailedGetResourceMetric",
                                         problem or "no metrics yet", previous, now_iso))
            await self._status(hpa, current, current, current_metrics, conditions)
            return
        wanted, limit_reason, limit_message = clamp_and_limit(current, max(proposals), minimum, maximum)
        window = ((spec.get("behavior") or {}).get("scaleDown") or {}).get("stabilizationWindowSeconds")
        window = DEFAULT_SCALE_DOWN_WINDOW if window is None else int(window)
        history = self._recommendations.setdefault(meta.get("uid", ""), [])
        moment = time.monotonic()
        history.append((moment, wanted))
        history[:] = [(at, r) for at, r in history if moment - at <= max(window, 1)]
        desired = stabilized(history[:-1], moment, window, wanted) if wanted < current else wanted
        scaled = desired != current
        if scaled:
            await self.client.merge_patch(DEPLOYMENTS, namespace, ref["name"], {"spec": {"replicas": desired}})
        conditions = [
            _condition("AbleToScale", True, "SucceededRescale" if scaled else "ReadyForNewScale",
                       f"the HPA controller was able to update the target scale to {desired}" if scaled
                       else "recommended size matches current size", previous, now_iso),
            _condition("ScalingActive", True, "ValidMetricFound",
                       "the HPA was able to successfully calculate a replica count from cpu resource "
                       "utilization (percentage of request)", previous, now_iso),
            _condition("ScalingLimited", limit_reason != "DesiredWithinRange", limit_reason, limit_message,
                       previous, now_iso),
        ]
        await self._status(hpa, current, desired, current_metrics, conditions,
                           last_scale=now_iso if scaled else None)

    def _measure(self, target: MetricTarget, pods: list[dict], pids_seen: set[int]):
        """(usage ratio, currentMetrics entry, problem) for one Resource metric over the pods."""
        usages, requests = [], []
        for pod in pods:
            pids = self._pod_pids(pod)
            pids_seen.update(pids)
            samples = [self.usage.sample(pid) for pid in pids]
            if not pids or any(cpu is None for cpu, _ in samples) and target.resource == "cpu":
                continue
            usages.append(sum((cpu or 0.0) if target.resource == "cpu" else rss for cpu, rss in samples))
            request = 0.0
            for container in (pod.get("spec") or {}).get("containers") or []:
                value = ((container.get("resources") or {}).get("requests") or {}).get(target.resource)
                if value is None:
                    request = None
                    break
                request += parse_quantity(value)
            requests.append(request)
        if not usages:
            return None, None, f"unable to get metrics for resource {target.resource}: no metrics returned yet"
        average = sum(usages) / len(usages)
        value_text = format_cpu(average) if target.resource == "cpu" else str(int(average))
        if target.utilization is not None:
            if any(r is None or r == 0 for r in requests):
                return None, None, f"failed to get {target.resource} utilization: missing request for " \
                                   f"{target.resource}"
            utilization = 100 * sum(usages) / sum(requests)
            metric = {"type": "Resource", "resource": {"name": target.resource, "current": {
                "averageUtilization": round(utilization), "averageValue": value_text}}}
            return utilization / target.utilization, metric, None
        metric = {"type": "Resource", "resource": {"name": target.resource, "current": {"averageValue": value_text}}}
        return average / target.average_value, metric, None

    async def _status(self, hpa: dict, current: int, desired: int, metrics: list[dict], conditions: list[dict],
                      last_scale: str | None = None) -> None:
        status = {
            "observedGeneration": hpa["metadata"].get("generation", 1),
            "currentReplicas": current,
            "desiredReplicas": desired,
            "currentMetrics": metrics or None,
            "conditions": conditions,
        }
        if last_scale:
            status["lastScaleTime"] = last_scale
        old = hpa.get("status") or {}
        if last_scale is None and all(old.get(k) == v for k, v in status.items()):
            return
        await self.client.patch_status(HPAS, hpa["metadata"].get("namespace"), hpa["metadata"]["name"],
                                       status)

