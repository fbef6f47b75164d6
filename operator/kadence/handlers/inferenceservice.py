"""InferenceService handlers: observe the model servers, call the planner, carry out its plan.

Each reconcile (create, spec update, resume, resync timer):
1. resolves the ModelVersions of spec.model (with the champion/challenger verdict on each
   candidate, read from the status.verdicts of the MonitorPolicies watching this
   InferenceService: status only the operator writes) and which one holds spec.stage;
2. observes the model-server Deployments by role, and, while a canary rolls out or is
   about to (a pinned canary, or an approved challenger for a stage-tracking one), each
   version's requests, 5xx answers and p99 latency since the current step started, from the
   servers' /metrics (plus, when the canary has a quality gate, f1/accuracy per version
   from the newest `kadence canary` Job: the operator never loads prediction logs itself);
3. plans (`planners.inferenceservice`), realizes the plan, moves ModelVersion stages when a
   canary was promoted (or an approved challenger failed its canary: Archived), and clears
   the kadence.dev/promote annotation once it was acted on.

Step baselines: a step's window starts at the first scrape after the step started; that
scrape is kept in operator memory, keyed by (namespace, name, stepStartedAt). After an
operator restart the memory is empty and the baseline of the step in progress is the
start of the pods (their counters since they started), which counts some requests of the
step before as this step's.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from ..api.common import API_VERSION
from ..api.common import parse_duration
from ..api.kinds import BY_KIND
from ..builders import serving as build
from ..builders.jobs import job_state, task_configmap, workload_job
from ..builders.meta import child_name
from ..domain.registry import requested_stage, stage_request_patch
from ..domain.rollout import VersionStats, stats_from_metrics
from ..k8s.apply import create, list_objects, merge_patch
from ..metrics import canary_rollbacks
from ..planners.inferenceservice import (ModelVersionInfo, ServingContext, ServingObservation, StageChange,
                                         approved_candidate, plan_inferenceservice)
from ..planners.plan import ChildRef
from ..workloads.canary import CanaryQualityResult, CanaryQualityTask
from .common import (model_versions_of, monitor_policies_of, owned_jobs, read_json, realize, register_reconciler,
                     utcnow, workload_settings)
from ..api import keys

KIND = BY_KIND["InferenceService"]
PROMOTE_ANNOTATION = keys.PROMOTE_ANNOTATION
# In the sandbox every pod has podIP 127.0.0.1 and its own local port, given in this
# annotation (all of the pod's container ports map to it); on a cluster it is absent.
SANDBOX_PORT_ANNOTATION = keys.SANDBOX_PORT_ANNOTATION
SCRAPE_TIMEOUT_SECONDS = 2.0
log = logging.getLogger(__name__)
# httpx logs every request at INFO: one line per pod per resync would drown the operator's log.
logging.getLogger("httpx").setLevel(logging.WARNING)


# ------------------------------------------------------------------ pure observation helpers


def policy_verdicts(policies: list[dict], inference_service: str) -> dict[str, dict]:
    """{candidate ModelVersion: champion/challenger verdict} from the status.verdicts of the
    MonitorPolicies whose spec.inferenceServiceRef names this InferenceService; the newest
    verdict wins when two policies judged the same candidate."""
    found: dict[str, dict] = {}
    for policy in policies:
        if ((policy.get("spec") or {}).get("inferenceServiceRef") or {}).get("name") != inference_service:
            continue
        for verdict in (policy.get("status") or {}).get("verdicts") or []:
            candidate = verdict.get("candidate") if isinstance(verdict, dict) else None
            if candidate and str(verdict.get("time") or "") >= str(found.get(candidate, {}).get("time") or ""):
                found[candidate] = verdict
    return found


def model_version_info(model_version: dict, verdict: dict | None = None) -> ModelVersionInfo:
    spec, status = model_version.get("spec") or {}, model_version.get("status") or {}
    signature = spec.get("signature") or {}
    return ModelVersionInfo(
        name=model_version["metadata"]["name"],
        version=int(spec["version"]),
        artifact_uri=spec["artifact"]["uri"],
        sha256=spec["artifact"]["sha256"],
        inputs=[{"name": c["name"], "type": c["type"], **({"pii": True} if c.get("pii") else {})}
                for c in signature.get("inputs") or []] or None,
        task=spec.get("task"),
        compiled=spec.get("compiled"),
        stage=status.get("stage"),
        verified=status.get("verified"),
        verdict=verdict,
    )


def stage_holder(model_versions: list[dict], stage: str, stable_version: int | None) -> int | None:
    """The version holding `stage` (status.stage, the stage in force).

    While a stage move toward the version this InferenceService serves as stable is in
    flight (its spec.stage or the operator's stage request asks for the stage, the registry
    has not granted it yet, e.g. right after a promotion, while the previous holder is being
    archived), that version:
    the registry passes through a moment with no holder, which must not read as "nothing
    to serve" nor roll stable back to the previous holder."""
    for mv in model_versions:
        spec, status = mv.get("spec") or {}, mv.get("status") or {}
        if (stable_version is not None and int(spec.get("version", 0)) == stable_version
                and requested_stage(mv) == stage and status.get("stage") != stage):
            return stable_version
    holders = [int(mv["spec"]["version"]) for mv in model_versions if (mv.get("status") or {}).get("stage") == stage]
    return max(holders) if holders else None


def deployments_by_role(deployments: list[dict]) -> dict[str, dict]:
    return {d["metadata"]["labels"][build.ROLE_LABEL]: d for d in deployments
            if build.ROLE_LABEL in ((d.get("metadata") or {}).get("labels") or {})}


def scrape_url(pod: dict) -> str | None:
    """Where a running model-server pod serves /metrics (its `metrics` port, never the serving
    port), or None when it cannot be reached."""
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    if meta.get("deletionTimestamp") or status.get("phase") != "Running" or not status.get("podIP"):
        return None
    annotations = meta.get("annotations") or {}
    if SANDBOX_PORT_ANNOTATION in annotations:
        # The sandbox: the named `metrics` port has a local port of its own, in this annotation.
        port = annotations.get(build.SANDBOX_METRICS_PORT_ANNOTATION)
        if port is None:
            return None
    else:
        declared = [p for c in (pod.get("spec") or {}).get("containers") or [] for p in c.get("ports") or []]
        named = [p for p in declared if p.get("name") == build.METRICS_PORT_NAME]
        if not named:
            return None
        port = named[0]["containerPort"]
    host = status["podIP"]
    if ":" in host:
        host = f"[{host}]"  # IPv6
    return f"http://{host}:{port}/metrics"


def version_stats(scrapes: dict[str, str], baseline: dict[str, str], version: int) -> VersionStats:
    """A version's requests, errors and p99 since `baseline`, over the pods scraped now.

    `scrapes` and `baseline` map pod name -> /metrics text. A pod absent from the baseline
    (started since) counts from its start; a pod whose counters went down restarted, and
    counts from its restart."""
    label = str(version)
    kept = []
    for pod, text in scrapes.items():
        before = baseline.get(pod)
        if before is not None and stats_from_metrics(text, before, label).requests >= 0:
            kept.append(before)
    return stats_from_metrics("\n".join(scrapes.values()), "\n".join(kept) or None, label)


def with_quality(stats: VersionStats, labelled: int, quality: float | None,
                 segments_failure: str | None = None) -> VersionStats:
    return VersionStats(stats.requests, stats.errors, stats.latency_p99, labelled, quality, segments_failure)


class StepBaselines:
    """Per-step metric baselines in operator memory: (namespace, name, stepStartedAt) -> {pod: text}."""

    def __init__(self) -> None:
        self._baselines: dict[tuple[str, str, str], dict[str, str]] = {}
        self._lock = threading.Lock()  # the resync timer and event handlers run in threads

    def get(self, namespace: str, name: str, step_started_at: str | None) -> dict[str, str]:
        if step_started_at is None:
            return {}
        with self._lock:
            return dict(self._baselines.get((namespace, name, step_started_at), {}))

    def ensure(self, namespace: str, name: str, step_started_at: str) -> None:
        """A step this process did not see start (it restarted): its baseline is the pods' start."""
        with self._lock:
            self._baselines.setdefault((namespace, name, step_started_at), {})

    def start_step(self, namespace: str, name: str, step_started_at: str, scrapes: dict[str, str]) -> None:
        """Remember the scrape a step starts from; earlier steps of the object are forgotten."""
        with self._lock:
            for key in [k for k in self._baselines if k[:2] == (namespace, name)]:
                del self._baselines[key]
            self._baselines[(namespace, name, step_started_at)] = dict(scrapes)

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            for key in [k for k in self._baselines if k[:2] == (namespace, name)]:
                del self._baselines[key]


def stage_change_patch(change: StageChange, version: dict) -> dict:
    """What the ModelVersion controller reads: a stage request against the version's spec as
    read (its owner's spec is never rewritten), and who moved it and why."""
    return stage_request_patch(version, change.stage, change.by, change.reason)


# ------------------------------------------------------------------ side effects


BASELINES = StepBaselines()
# The feedback-token Secret is created once (a POST; 409 means it exists and is kept, never
# overwritten). Checked again this often, so a deleted Secret (to rotate the token) comes back.
FEEDBACK_TOKEN_CHECK_SECONDS = 600.0
_token_checked: dict[str, float] = {}  # InferenceService uid -> when its Secret was last known to exist
_token_lock = threading.Lock()


def ensure_feedback_token(body: dict) -> None:
    """The InferenceService's feedback-token Secret, with a fresh random token when absent."""
    from kubernetes.client.rest import ApiException

    uid = body["metadata"]["uid"]
    with _token_lock:
        checked = _token_checked.get(uid)
    if checked is not None and time.monotonic() - checked < FEEDBACK_TOKEN_CHECK_SECONDS:
        return
    try:
        create(build.feedback_token_secret(body, secrets.token_urlsafe(32)))
        log.info("created the feedback token Secret %s/%s", body["metadata"]["namespace"],
                 build.feedback_token_secret_name(body["metadata"]["name"]))
    except ApiException as error:
        if error.status != 409:
            raise
    with _token_lock:
        _token_checked[uid] = time.monotonic()


def scrape_pods(pods: list[dict]) -> dict[str, dict[str, str]]:
    """{version label: {pod name: /metrics text}} of the pods that answered."""
    scrapes: dict[str, dict[str, str]] = {}
    with httpx.Client(timeout=SCRAPE_TIMEOUT_SECONDS) as client:
        for pod in pods:
            url = scrape_url(pod)
            if url is None:
                continue
            try:
                response = client.get(url)
            except httpx.HTTPError as error:
                log.debug("scraping %s failed: %s", url, error)
                continue
            if response.status_code == 200:
                version = pod["metadata"]["labels"].get(build.VERSION_LABEL, "")
                scrapes.setdefault(version, {})[pod["metadata"]["name"]] = response.text
    return scrapes


# ------------------------------------------------------------------ canary quality (computed where the data is)

QUALITY_COMPONENT = "canary-quality"
# The servers flush the prediction log to S3 every 10 s: a quality slot shorter than that sees nothing new.
QUALITY_MIN_INTERVAL_SECONDS = 15.0


def quality_job_prefix(isvc: str, step_started_at: str) -> str:
    return child_name(isvc, "quality", hashlib.sha256(step_started_at.encode()).hexdigest()[:8]) + "-"


def quality_result_key(namespace: str, isvc: str, job_name: str) -> str:
    return f"monitoring/{namespace}/{isvc}/canary/{job_name}.json"


@dataclass
class QualityWork:
    """What the canary's quality gate needs this reconcile: Jobs to start or remove, and the
    figures of the newest finished one ({version: (labelled requests, metric)})."""

    children: list[dict] = field(default_factory=list)
    delete: list[ChildRef] = field(default_factory=list)
    figures: dict[int, tuple[int, float | None]] = field(default_factory=dict)
    segment_failures: dict[int, str] = field(default_factory=dict)  # version -> its failed segment gate


def plan_quality(obj: dict, metric: str, interval_seconds: float, jobs: list[dict], results: dict[str, dict],
                 now: datetime, settings, segments=None) -> QualityWork:
    """One `kadence canary` Job per analysis slot of the step in progress (never two at once),
    each over the labelled requests from the step's start to its own start; the newest
    finished one's figures are the step's. Jobs of other steps, and older slots, go.
    `results`: job name -> the result JSON of finished Jobs. Pure."""
    meta, status = obj["metadata"], obj.get("status") or {}
    work = QualityWork()
    started = status.get("stepStartedAt")
    versions = [str(v) for v in (status.get("stableVersion"), status.get("canaryVersion")) if v]
    prefix = quality_job_prefix(meta["name"], started) if started else None
    slots: dict[int, dict] = {}
    for job in jobs:
        name = job["metadata"]["name"]
        tail = name[len(prefix):] if prefix and name.startswith(prefix) else ""
        if tail.isdigit():
            slots[int(tail)] = job
        else:
            work.delete += [ChildRef("batch/v1", "Job", name), ChildRef("v1", "ConfigMap", name)]
    if not started or len(versions) < 2:
        return work
    done = [slot for slot, job in slots.items()
            if job_state(job) == "Succeeded" and job["metadata"]["name"] in results]
    if done:
        newest = max(done)
        result = CanaryQualityResult.model_validate(results[slots[newest]["metadata"]["name"]])
        work.figures = {int(v): (q.labelled, q.value) for v, q in result.versions.items() if v.isdigit()}
        work.segment_failures = {int(v): q.segments_failure for v, q in result.versions.items()
                                 if v.isdigit() and q.segments_failure}
        for slot in [s for s in slots if s < newest]:
            name = slots[slot]["metadata"]["name"]
            work.delete += [ChildRef("batch/v1", "Job", name), ChildRef("v1", "ConfigMap", name)]
    since = datetime.fromisoformat(started.replace("Z", "+00:00"))
    every = max(interval_seconds, QUALITY_MIN_INTERVAL_SECONDS)
    slot_now = int(max((now - since).total_seconds(), 0.0) // every)
    running = any(job_state(job) == "Running" for job in slots.values())
    if not running and slot_now not in slots:
        name = f"{prefix}{slot_now}"
        task = CanaryQualityTask(namespace=meta["namespace"], inference_service=meta["name"], versions=versions,
                                 metric=metric, since=since, until=now, segments=segments,
                                 result_key=quality_result_key(meta["namespace"], meta["name"], name))
        work.children = [task_configmap(obj, name, QUALITY_COMPONENT, task.model_dump(mode="json", by_alias=True)),
                         workload_job(obj, name, QUALITY_COMPONENT, ["kadence", "canary"], settings)]
    return work


def observe_quality(obj: dict, spec, now: datetime) -> QualityWork:
    """Read the canary quality Jobs and the results of the finished ones (each read once)."""
    gate = spec.canary.analysis.quality if spec.canary else None
    status = obj.get("status") or {}
    jobs = [j for j in owned_jobs(KIND, obj)
            if ((j["metadata"].get("labels") or {}).get("app.kubernetes.io/component")) == QUALITY_COMPONENT]
    if gate is None or not status.get("canaryVersion"):
        return plan_quality(obj, "f1", 0.0, jobs, {}, now, workload_settings()) if jobs else QualityWork()
    namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    results = {}
    for job in jobs:
        job_name = job["metadata"]["name"]
        if job_state(job) != "Succeeded":
            continue
        memo_key = (job["metadata"].get("uid"), job_name)
        if memo_key not in _QUALITY_RESULTS:
            found = read_json(quality_result_key(namespace, name, job_name), owner=obj)
            if found is None:
                continue
            _QUALITY_RESULTS[memo_key] = found
        results[job_name] = _QUALITY_RESULTS[memo_key]
    return plan_quality(obj, gate.metric, parse_duration(spec.canary.analysis.interval), jobs, results, now,
                        workload_settings(), gate.segments)


# A finished Job's result never changes: {(job uid, job name): result}.
_QUALITY_RESULTS: dict[tuple[str | None, str], dict] = {}


def observe_stats(obj: dict, spec, scrapes: dict[str, dict[str, str]], now: datetime,
                  quality: dict[int, tuple[int, float | None]] | None = None,
                  segment_failures: dict[int, str] | None = None) -> dict[int, VersionStats]:
    """Each version's traffic since the step started, from the servers' /metrics, with the
    quality figures of the newest canary quality Job (`observe_quality`)."""
    meta, status = obj["metadata"], obj.get("status") or {}
    started = status.get("stepStartedAt")
    if not status.get("canaryVersion") or started is None:
        return {}
    namespace, name = meta["namespace"], meta["name"]
    BASELINES.ensure(namespace, name, started)
    baseline = BASELINES.get(namespace, name, started)
    versions = [v for v in (status.get("stableVersion"), status.get("canaryVersion")) if v]
    stats = {v: version_stats(scrapes.get(str(v), {}), baseline, v) for v in versions}
    for version, (labelled, value) in (quality or {}).items():
        if version in stats:
            stats[version] = with_quality(stats[version], labelled, value, (segment_failures or {}).get(version))
    return stats


def reconcile_inferenceservice(obj, spec, body, patch):
    meta, status = obj["metadata"], obj.get("status") or {}
    namespace, name = meta["namespace"], meta["name"]
    now = utcnow()
    versions = model_versions_of(namespace, spec.model)
    verdicts = policy_verdicts(monitor_policies_of(namespace, name), name)
    context = ServingContext(
        versions={info.version: info for info in (
            model_version_info(mv, verdicts.get(mv["metadata"]["name"])) for mv in versions)},
        stage_version=stage_holder(versions, spec.stage, status.get("stableVersion")) if spec.stage else None,
        settings=workload_settings(),
    )
    selector = f"{build.ISVC_LABEL}={name}"
    deployments = deployments_by_role(list_objects("apps/v1", "Deployment", namespace, selector))
    scrapes: dict[str, dict[str, str]] = {}
    stable = status.get("stableVersion") or context.stage_version
    challenger = spec.stage is not None and stable is not None and approved_candidate(context.versions.values(), stable)
    if spec.canary is not None or status.get("canaryVersion") or challenger:
        # A step's baseline is the scrape of the reconcile that starts it, so scrape before one starts too.
        # Stable and canary only: a shadow running the canary's version must not count as canary traffic.
        scrapes = scrape_pods(list_objects("v1", "Pod", namespace, f"{selector},{build.ROLE_LABEL} in (stable,canary)"))
    quality = observe_quality(obj, spec, now)
    observation = ServingObservation(
        deployments=deployments,
        stats=observe_stats(obj, spec, scrapes, now, quality.figures, quality.segment_failures),
        promote_requested=(meta.get("annotations") or {}).get(PROMOTE_ANNOTATION) == "true",
    )
    plan = plan_inferenceservice(obj, observation, context, now)
    # Services before the Deployments behind them (Kubernetes' own advice): a container gets
    # the <SVC>_SERVICE_HOST/_PORT variables only of Services that exist when it starts, and
    # the stable servers find the shadow through them where there is no cluster DNS.
    plan.children.sort(key=lambda child: child["kind"] != "Service")
    plan.children += quality.children
    plan.delete += quality.delete
    if any(child["kind"] == "Deployment" for child in plan.children):
        ensure_feedback_token(body)  # before the servers, whose env reads it
    realize(plan, status, meta, patch, body)

    new_step = plan.status_patch().get("stepStartedAt", status.get("stepStartedAt"))
    if new_step is None:
        BASELINES.forget(namespace, name)
    elif new_step != status.get("stepStartedAt"):
        # A new step starts now: this reconcile's scrape is where its window begins.
        BASELINES.start_step(namespace, name, new_step, {pod: text for by_pod in scrapes.values()
                                                         for pod, text in by_pod.items()})
    if plan.phase == "RolledBack" and status.get("phase") != "RolledBack":
        canary_rollbacks.labels(namespace=namespace, inferenceservice=name).inc()
    read = {version["metadata"]["name"]: version for version in versions}
    for change in plan.stage_changes:
        merge_patch(API_VERSION, "ModelVersion", namespace, change.name,
                    stage_change_patch(change, read.get(change.name, {})))
    if plan.promoted is not None and PROMOTE_ANNOTATION in (meta.get("annotations") or {}):
        merge_patch(API_VERSION, KIND.kind, namespace, name, {"metadata": {"annotations": {PROMOTE_ANNOTATION: None}}})


register_reconciler(KIND, reconcile_inferenceservice)
