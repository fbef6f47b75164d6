"""Canary analysis and the rollout state machine of an InferenceService. Pure: no I/O, no clock.

Phases (status.phase):

    Stable       only the stable version serves
    Progressing  a canary serves the current step's weight and is analysed against stable; or,
                 without a canary, a new stable version is starting (no ready replica yet: a
                 new InferenceService, or the spec moved stable) for up to 10 minutes
    Paused       the canary holds its weight: too little traffic to judge after maxWait, or the
                 last step passed and autoPromote is off (waiting for a manual promotion)
    Promoting    the canary passed every step; it becomes the stable version
    RolledBack   an analysis failed; all traffic is back on stable, the canary is not retried
                 (a pinned canary until spec.canary.version changes; an approved challenger is
                 archived, and the phase stays until a newer challenger starts)
    Degraded     the stable version served and lost its ready replicas, or never became ready

A failed analysis rolls back at once, at any moment of a step. Passing needs the step's
pause to have elapsed and `minRequests` canary requests in the step; a step that cannot
gather them within `maxWait` pauses the rollout with the reason instead of promoting blindly.

A canary comes from the spec (spec.canary.version, source "spec") or is an approved
challenger the planner resolved from the registry (source "challenger").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from ..api.common import parse_duration
from ..api.inferenceservice import Analysis, Canary

Phase = Literal["Stable", "Progressing", "Paused", "Promoting", "RolledBack", "Degraded"]
Verdict = Literal["pass", "fail", "wait"]
Source = Literal["spec", "challenger"]

STABLE_STARTING = "StableStarting"
# Like a Deployment's default progressDeadlineSeconds: a new stable version that has no ready
# replica after this long is Degraded rather than starting.
START_DEADLINE = "10m"



# ------------------------------------------------------------------ analysis


@dataclass(frozen=True)
class VersionStats:
    """What one version served during the window being judged."""

    requests: int = 0
    errors: int = 0  # answers with a 5xx status
    latency_p99: float | None = None  # seconds
    labelled: int = 0  # requests with feedback
    quality: float | None = None  # f1 or accuracy over the labelled requests
    segments_failure: str | None = None  # why the quality gate's segments failed on these requests, if they did


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    message: str
    requests: int
    error_rate: float | None = None
    latency_p99_ratio: float | None = None
    quality_delta: float | None = None


def judge(analysis: Analysis, stable: VersionStats, canary: VersionStats) -> Judgement:
    """Compare the canary with stable under the thresholds; failures are reported with numbers."""
    if canary.requests < analysis.min_requests:
        return Judgement("wait", f"the canary served {canary.requests} of the {analysis.min_requests} requests "
                                 "an analysis needs", canary.requests)
    error_rate = canary.errors / canary.requests
    ratio = None
    if canary.latency_p99 is not None and stable.latency_p99:
        ratio = canary.latency_p99 / stable.latency_p99
    delta = None
    gate = analysis.quality
    quality_note = ""
    if gate is not None:
        if (canary.labelled >= gate.min_labelled and stable.labelled >= gate.min_labelled
                and canary.quality is not None and stable.quality is not None):
            delta = canary.quality - stable.quality
        else:
            quality_note = (f"; {gate.metric} not judged yet ({canary.labelled} canary and {stable.labelled} "
                            f"stable labels of {gate.min_labelled} each)")
    failures = []
    if error_rate > analysis.max_error_rate:
        failures.append(f"error rate {error_rate:.4f} is above {analysis.max_error_rate:g}")
    if ratio is not None and ratio > analysis.max_latency_p99_ratio:
        failures.append(f"p99 latency {canary.latency_p99 * 1000:.1f} ms is {ratio:.2f}x stable's "
                        f"{stable.latency_p99 * 1000:.1f} ms (at most {analysis.max_latency_p99_ratio:g}x)")
    if delta is not None and delta < -gate.max_drop:
        failures.append(f"{gate.metric} {canary.quality:.3f} is {-delta:.3f} below stable's {stable.quality:.3f} "
                        f"(at most {gate.max_drop:g})")
    if gate is not None and canary.segments_failure and canary.labelled >= gate.min_labelled:
        failures.append(f"segments: {canary.segments_failure}")
    if failures:
        return Judgement("fail", "; ".join(failures), canary.requests, error_rate, ratio, delta)
    summary = f"{canary.requests} requests, error rate {error_rate:.4f}"
    if ratio is not None:
        summary += f", p99 {ratio:.2f}x stable"
    if delta is not None:
        summary += f", {gate.metric} {delta:+.3f} vs stable"
    return Judgement("pass", summary + quality_note, canary.requests, error_rate, ratio, delta)


# ------------------------------------------------------------------ state machine


@dataclass(frozen=True)
class RolloutState:
    """The rollout fields of status.{phase, stableVersion, canaryVersion, canaryWeight,
    currentStep, stepStartedAt}."""

    phase: Phase = "Stable"
    stable_version: int | None = None
    canary_version: int | None = None
    canary_weight: int = 0
    current_step: int | None = None
    step_started_at: datetime | None = None  # the canary step's start, or a starting stable's
    reason: str = ""
    source: Source | None = None  # where the canary came from


def starting(state: RolloutState) -> bool:
    """A new stable version is coming up: Progressing without a canary."""
    return state.phase == "Progressing" and state.canary_version is None


@dataclass(frozen=True)
class Observed:
    stable_ready: bool  # the stable Deployment has a ready replica serving stable_version
    canary_ready: bool = False  # the canary Deployment is available
    stable: VersionStats = field(default_factory=VersionStats)  # since the step started
    canary: VersionStats = field(default_factory=VersionStats)
    promote_requested: bool = False  # a person asked to promote a Paused canary
    # The stable Deployment's template runs stable_version and it has a ready replica, though its
    # status may not have caught up with a replica change yet (None: as stable_ready). Enough for
    # a stable that already served: between rollouts only its replica count changes.
    stable_serving: bool | None = None


@dataclass(frozen=True)
class Transition:
    state: RolloutState
    judgement: Judgement | None = None  # set when an analysis was judged (pass or fail)
    event: tuple[str, str, str] | None = None  # (Normal|Warning, reason, message)
    promoted: int | None = None  # a canary version that just became stable
    requeue_after: float | None = None
    judged_step: int = 0  # the step the judgement was about
    canary_failed: bool = False  # rolled back for the canary's own doing (not stable's outage)


def _step_weight(canary: Canary, step: int) -> int:
    return canary.steps[step].weight


def _start(state: RolloutState, canary: Canary, now: datetime, source: Source, origin: str) -> Transition:
    started = replace(state, phase="Progressing", canary_version=canary.version, current_step=0,
                      canary_weight=_step_weight(canary, 0), step_started_at=now, source=source,
                      reason=f"step 1 of {len(canary.steps)} at {_step_weight(canary, 0)}%")
    what = f"canary version {canary.version}" + (f" ({origin})" if origin else "")
    return Transition(started, event=("Normal", "CanaryStarted", f"{what} started at {started.canary_weight}% of "
                                                                 "traffic"),
                      requeue_after=parse_duration(canary.analysis.interval))


def _stable_starting(state: RolloutState, observed: Observed, now: datetime) -> Transition | None:
    """While a new stable version starts: still starting, Degraded past the deadline, or None
    once it serves."""
    if observed.stable_ready:
        return None
    waited = (now - state.step_started_at).total_seconds() if state.step_started_at else 0.0
    if waited >= parse_duration(START_DEADLINE):
        return Transition(replace(state, phase="Degraded", step_started_at=None,
                                  reason=f"stable version {state.stable_version} did not become ready within "
                                         f"{START_DEADLINE}"), requeue_after=10.0)
    return Transition(replace(state, reason=f"{STABLE_STARTING}: version {state.stable_version} has no ready "
                                            "replica yet"), requeue_after=5.0)


def advance(state: RolloutState, target_stable: int, canary: Canary | None, observed: Observed,
            now: datetime, source: Source = "spec", origin: str = "") -> Transition:
    """The next rollout state for one reconcile.

    `target_stable`: the version the spec asks for (spec.version, or the version holding
    spec.stage). `canary`: the canary wanted now, with its version (spec.canary, or an approved
    challenger with spec.canary's or the default steps), or None. `source`: where it came from;
    `origin`: how the CanaryStarted Event describes it, e.g. "approved challenger: ...".
    """
    # No stable yet, or the spec moved stable by itself (a new pinned version, a stage change):
    # the stable Deployment simply rolls to it, starting until it serves.
    if state.stable_version is None or ((state.phase in ("Stable", "RolledBack", "Degraded") or starting(state))
                                        and state.stable_version != target_stable
                                        and not (canary and state.canary_version == canary.version
                                                 and state.phase == "RolledBack")):
        if state.stable_version is not None:
            # what was observed is the previous version
            observed = replace(observed, stable_ready=False, stable_serving=False)
        state = replace(state, phase="Progressing", stable_version=target_stable, canary_version=None,
                        canary_weight=0, current_step=None, step_started_at=now, source=None)

    if state.phase == "Promoting":
        # The stable Deployment now runs the promoted version; once it serves, we are Stable.
        if observed.stable_ready:
            return Transition(replace(state, phase="Stable", canary_version=None, canary_weight=0, current_step=None,
                                      step_started_at=None, source=None,
                                      reason=f"version {state.stable_version} is stable"))
        return Transition(state, requeue_after=5.0)

    if starting(state):
        waiting = _stable_starting(state, observed, now)
        if waiting is not None:
            return waiting
        state = replace(state, phase="Stable", step_started_at=None)

    serving = observed.stable_ready or bool(observed.stable_serving)
    if not serving and state.phase != "Progressing":
        return Transition(replace(state, phase="Degraded", reason=f"stable version {state.stable_version} has no "
                                                                  "ready replica"), requeue_after=10.0)

    no_canary = canary is None or canary.version == state.stable_version
    if no_canary:
        if state.phase in ("Progressing", "Paused"):
            why = (f"canary version {state.canary_version} is no longer an approved challenger"
                   if state.source == "challenger" else "the canary was removed from the spec")
            return Transition(replace(state, phase="Stable", canary_version=None, canary_weight=0, current_step=None,
                                      step_started_at=None, source=None, reason=why),
                              event=("Normal", "CanaryRemoved", f"{why}; all traffic on version "
                                                                f"{state.stable_version}"))
        if state.phase == "RolledBack" and canary is None:
            if state.source == "challenger":
                return Transition(state)  # the failed analysis stays on record until a newer challenger
            return Transition(replace(state, phase="Stable", canary_version=None, source=None, reason=""))
        if state.phase in ("Degraded", "Stable"):
            return Transition(replace(state, phase="Stable", canary_weight=0,
                                      reason=f"version {state.stable_version} is stable"))
        return Transition(state)

    # A canary is wanted.
    if state.phase == "RolledBack" and state.canary_version == canary.version and (state.source or "spec") == source:
        return Transition(state)  # not retried until the spec names another version
    if state.canary_version != canary.version or state.phase in ("Stable", "Degraded", "RolledBack"):
        return _start(state, canary, now, source, origin)

    interval = parse_duration(canary.analysis.interval)
    step = state.current_step or 0
    elapsed = (now - state.step_started_at).total_seconds() if state.step_started_at else 0.0
    pause = parse_duration(canary.steps[step].pause)
    max_wait = parse_duration(canary.analysis.max_wait)

    if not serving:
        return _roll_back(state, Judgement("fail", f"stable version {state.stable_version} has no ready replica "
                                                   "during the canary", observed.canary.requests), interval,
                          canary_failed=False)
    if not observed.canary_ready:
        if elapsed >= max_wait:
            return _roll_back(state, Judgement("fail", f"canary version {canary.version} did not become ready in "
                                                       f"{canary.analysis.max_wait}", 0), interval)
        return Transition(state, requeue_after=interval)

    judgement = judge(canary.analysis, observed.stable, observed.canary)
    if judgement.verdict == "fail":
        return _roll_back(state, judgement, interval)

    if state.phase == "Paused" and state.reason.startswith("awaiting promotion"):
        if observed.promote_requested:
            return _promote(state, judgement)
        return Transition(state, requeue_after=interval)

    if elapsed < pause:
        return Transition(replace(state, phase="Progressing"), requeue_after=min(interval, pause - elapsed))

    if judgement.verdict == "wait":
        if elapsed >= max_wait:
            paused = replace(state, phase="Paused", reason=f"InsufficientTraffic: {judgement.message} within "
                                                           f"{canary.analysis.max_wait}")
            event = None if state.phase == "Paused" else ("Warning", "InsufficientTraffic",
                                                          f"canary paused at {state.canary_weight}%: {judgement.message} "
                                                          f"within {canary.analysis.max_wait}")
            return Transition(paused, event=event, requeue_after=interval)
        return Transition(state, requeue_after=interval)

    # Passed this step.
    if step + 1 < len(canary.steps):
        weight = _step_weight(canary, step + 1)
        nxt = replace(state, phase="Progressing", current_step=step + 1, canary_weight=weight, step_started_at=now,
                      reason=f"step {step + 2} of {len(canary.steps)} at {weight}%")
        return Transition(nxt, judgement, ("Normal", "CanaryStepPassed",
                                           f"step {step + 1} passed ({judgement.message}); canary now at {weight}%"),
                          requeue_after=interval, judged_step=step)
    if canary.auto_promote or observed.promote_requested:
        return _promote(state, judgement)
    paused = replace(state, phase="Paused", reason="awaiting promotion: every step passed and autoPromote is off")
    return Transition(paused, judgement, ("Normal", "CanaryAwaitingPromotion",
                                          f"canary version {canary.version} passed every step ({judgement.message}); "
                                          "annotate kadence.dev/promote=true to promote it"), requeue_after=interval,
                      judged_step=step)


def _roll_back(state: RolloutState, judgement: Judgement, interval: float, canary_failed: bool = True) -> Transition:
    rolled = replace(state, phase="RolledBack", canary_weight=0, step_started_at=None,
                     reason=f"AnalysisFailed: {judgement.message}")
    return Transition(rolled, judgement, ("Warning", "RolledBack",
                                          f"canary version {state.canary_version} rolled back at "
                                          f"{state.canary_weight}%: {judgement.message}"),
                      judged_step=state.current_step or 0, canary_failed=canary_failed)


def _promote(state: RolloutState, judgement: Judgement) -> Transition:
    promoted = replace(state, phase="Promoting", stable_version=state.canary_version, canary_weight=0,
                       reason=f"promoting version {state.canary_version} to stable")
    return Transition(promoted, judgement, ("Normal", "Promoted",
                                            f"canary version {state.canary_version} promoted to stable "
                                            f"({judgement.message})"),
                      promoted=state.canary_version, requeue_after=5.0, judged_step=state.current_step or 0)


# ------------------------------------------------------------------ traffic split


@dataclass(frozen=True)
class Split:
    stable_replicas: int
    canary_replicas: int
    effective_weight: int  # the canary's share of traffic the replicas give, in percent


def replica_split(total: int, weight: int, exact_routing: bool) -> Split:
    """Replicas for a canary weight. Behind one Service, traffic follows the replica ratio, so
    the canary gets ceil(total * weight / 100) replicas (at least one) and stable the rest (at
    least one while weight < 100). With a Gateway API route the weight is exact and stable
    keeps its full capacity."""
    total = max(total, 1)
    if weight <= 0:
        return Split(total, 0, 0)
    canary = max(1, math.ceil(total * weight / 100))
    if exact_routing:
        return Split(total, canary, weight)
    if weight >= 100:
        return Split(0, canary, 100)
    stable = max(1, total - canary)
    return Split(stable, canary, round(100 * canary / (stable + canary)))


# ------------------------------------------------------------------ metrics


def stats_from_metrics(now_text: str, baseline_text: str | None, version: str) -> VersionStats:
    """A version's requests, 5xx errors and p99 latency between two scrapes of the model
    server's /metrics (Prometheus text), summed over its pods' scrapes concatenated."""
    now = _predict_counters(now_text, version)
    before = _predict_counters(baseline_text or "", version)
    requests = now["requests"] - before["requests"]
    errors = now["errors"] - before["errors"]
    buckets = {le: now["buckets"].get(le, 0.0) - before["buckets"].get(le, 0.0) for le in now["buckets"]}
    return VersionStats(requests=int(requests), errors=int(errors), latency_p99=_quantile(buckets, 0.99))


def _predict_counters(text: str, version: str) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    requests = errors = 0.0
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if labels.get("version") != version:
                continue
            if sample.name == "kadence_serving_requests_total" and labels.get("endpoint") in ("predict", "infer"):
                requests += sample.value
                if labels.get("code", "").startswith("5"):
                    errors += sample.value
            elif sample.name == "kadence_serving_request_duration_seconds_bucket":
                le = math.inf if labels["le"] == "+Inf" else float(labels["le"])
                buckets[le] = buckets.get(le, 0.0) + sample.value
    return {"requests": requests, "errors": errors, "buckets": buckets}


def _quantile(buckets: dict[float, float], q: float) -> float | None:
    """Prometheus' histogram_quantile over cumulative buckets."""
    if not buckets:
        return None
    ordered = sorted(buckets.items())
    total = ordered[-1][1]
    if total <= 0:
        return None
    rank = q * total
    previous_le, previous_count = 0.0, 0.0
    for le, count in ordered:
        if count >= rank:
            if math.isinf(le):
                return previous_le
            if count == previous_count:
                return le
            return previous_le + (le - previous_le) * (rank - previous_count) / (count - previous_count)
        previous_le, previous_count = le, count
    return ordered[-1][0]


def step_deadline(state: RolloutState, canary: Canary) -> datetime | None:
    if state.step_started_at is None or state.current_step is None:
        return None
    return state.step_started_at + timedelta(seconds=parse_duration(canary.steps[state.current_step].pause))
