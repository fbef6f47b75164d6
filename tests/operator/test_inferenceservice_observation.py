"""The InferenceService handler's pure observation helpers: where to scrape, which version
holds the stage, per-step stats from pod scrapes, and what a stage move patches."""

from __future__ import annotations

import json

import pytest

from kadence.handlers.inferenceservice import (
    StepBaselines,
    model_version_info,
    policy_verdicts,
    scrape_url,
    stage_change_patch,
    stage_holder,
    version_stats,
)
from kadence.domain.registry import StageChange

SHA = "b" * 64


HTTP_AND_METRICS = [{"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 9090}]


def pod(ip: str | None = "10.0.0.7", phase: str = "Running", annotations: dict | None = None,
        ports: list[dict] | None = None, deleting: bool = False) -> dict:
    meta = {"name": "churn-stable-abc", "annotations": annotations or {}}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-23T00:00:00Z"
    status = {"phase": phase}
    if ip:
        status["podIP"] = ip
    return {"metadata": meta, "status": status,
            "spec": {"containers": [{"name": "server", "ports": ports if ports is not None else HTTP_AND_METRICS}]}}


@pytest.mark.parametrize("given, url", [
    (pod(), "http://10.0.0.7:9090/metrics"),
    (pod(ip="127.0.0.1", annotations={"sandbox.kadence.dev/port": "41234", "sandbox.kadence.dev/port-metrics": "41300"}),
     "http://127.0.0.1:41300/metrics"),
    (pod(ports=[{"name": "grpc", "containerPort": 9000}, {"name": "metrics", "containerPort": 9191}]),
     "http://10.0.0.7:9191/metrics"),
    (pod(ip="fd00::5"), "http://[fd00::5]:9090/metrics"),
])
def test_a_running_pod_is_scraped_on_its_metrics_port_never_the_serving_port(given, url):
    assert scrape_url(given) == url


@pytest.mark.parametrize("given", [
    pod(ip=None), pod(phase="Pending"), pod(deleting=True), pod(ports=[]),
    pod(ports=[{"name": "http", "containerPort": 8080}]),  # a server of before the metrics port
    pod(ip="127.0.0.1", annotations={"sandbox.kadence.dev/port": "41234"}),  # the sandbox gave it no metrics port yet
])
def test_a_pod_without_an_address_running_or_a_metrics_port_is_not_scraped(given):
    assert scrape_url(given) is None


def mv(version: int, spec_stage: str, status_stage: str | None) -> dict:
    return {"metadata": {"name": f"churn-v{version}"},
            "spec": {"model": "churn", "version": version, "stage": spec_stage,
                     "artifact": {"uri": f"s3://kadence/m/{version}.skops", "sha256": SHA}},
            "status": {"stage": status_stage} if status_stage else {}}


def requested(version: dict, stage: str) -> dict:
    version["metadata"]["annotations"] = {"kadence.dev/stage-request": json.dumps({"stage": stage, "generation": 0})}
    return version


@pytest.mark.parametrize("versions, stable, holder", [
    ([mv(1, "Production", "Production"), mv(2, "Candidate", "Candidate")], 1, 1),
    ([mv(1, "Candidate", "Candidate")], None, None),
    # our promoted stable is on its way to Production while v1 is being archived: keep serving it
    ([mv(1, "Production", "Production"), mv(2, "Production", "Candidate")], 2, 2),
    ([mv(1, "Archived", "Archived"), mv(2, "Production", "Candidate")], 2, 2),
    # someone else asked for Production on v3: the registry decides, v1 still holds it
    ([mv(1, "Production", "Production"), mv(3, "Production", "Candidate")], 1, 1),
    ([mv(1, "Archived", "Production"), mv(2, "Production", "Production")], 1, 2),
    # the promotion asked through the operator's stage request, the spec untouched
    ([mv(1, "Production", "Production"), requested(mv(2, "Candidate", "Candidate"), "Production")], 2, 2),
])
def test_the_stage_is_held_by_the_registry_s_version_unless_our_stable_is_moving_into_it(versions, stable, holder):
    assert stage_holder(versions, "Production", stable) == holder


def test_a_model_version_becomes_serving_info_with_its_signature_and_stage():
    body = mv(4, "Staging", "Staging")
    body["spec"]["task"] = "classification"
    body["spec"]["signature"] = {"inputs": [{"name": "tenure", "type": "int"}, {"name": "plan", "type": "category"}]}
    info = model_version_info(body)
    assert (info.name, info.version, info.artifact_uri, info.sha256, info.task, info.stage) == (
        "churn-v4", 4, "s3://kadence/m/4.skops", SHA, "classification", "Staging")
    assert info.inputs == [{"name": "tenure", "type": "int"}, {"name": "plan", "type": "category"}]
    assert model_version_info(mv(5, "Candidate", None)).inputs is None


VERDICT = {"allowed": True, "reason": "ChallengerBeatsChampion", "message": "candidate f1=0.81 vs Production 0.74",
           "candidate": "churn-v5", "time": "2026-11-23T12:00:00Z", "rollout": "Canary"}


def test_a_model_version_carries_its_verification_and_the_verdict_it_is_given():
    body = mv(5, "Candidate", "Candidate")
    body["status"]["verified"] = True
    info = model_version_info(body, VERDICT)
    assert info.verified is True
    assert info.verdict["allowed"] is True and info.verdict["candidate"] == "churn-v5"
    assert model_version_info(mv(5, "Candidate", "Candidate")).verdict is None


def policy(target: str, *verdicts: dict) -> dict:
    return {"metadata": {"name": f"watch-{target}"}, "spec": {"inferenceServiceRef": {"name": target}},
            "status": {"verdicts": list(verdicts)}}


@pytest.mark.parametrize("policies, expected", [
    ([], {}),
    ([policy("churn", VERDICT)], {"churn-v5": VERDICT}),
    ([policy("other", VERDICT)], {}),
    ([policy("churn", VERDICT), policy("churn", {**VERDICT, "allowed": False, "time": "2026-11-23T13:00:00Z"})],
     {"churn-v5": {**VERDICT, "allowed": False, "time": "2026-11-23T13:00:00Z"}}),
    ([policy("churn", {**VERDICT, "candidate": "churn-v6"}, VERDICT)],
     {"churn-v5": VERDICT, "churn-v6": {**VERDICT, "candidate": "churn-v6"}}),
])
def test_the_verdicts_come_from_the_status_of_the_policies_watching_the_service_the_newest_first(policies, expected):
    assert policy_verdicts(policies, "churn") == expected


def test_a_verdict_a_user_annotated_on_the_model_version_is_ignored():
    body = mv(5, "Candidate", "Candidate")
    body["metadata"]["annotations"] = {"kadence.dev/challenger-verdict": json.dumps(VERDICT)}
    assert model_version_info(body).verdict is None


def metrics(version: str, ok: int, errors: int = 0, fast: int | None = None) -> str:
    """A model server's /metrics: `ok` 200s and `errors` 500s, `fast` of the answers under 5 ms."""
    fast = ok if fast is None else fast
    lines = [
        '# TYPE kadence_serving_requests_total counter',
        f'kadence_serving_requests_total{{model="churn",version="{version}",protocol="v2",endpoint="infer",code="200"}} {ok}',
        f'kadence_serving_requests_total{{model="churn",version="{version}",protocol="v2",endpoint="infer",code="500"}} {errors}',
        '# TYPE kadence_serving_request_duration_seconds histogram',
        f'kadence_serving_request_duration_seconds_bucket{{model="churn",version="{version}",protocol="v2",le="0.005"}} {fast}',
        f'kadence_serving_request_duration_seconds_bucket{{model="churn",version="{version}",protocol="v2",le="0.1"}} {ok}',
        f'kadence_serving_request_duration_seconds_bucket{{model="churn",version="{version}",protocol="v2",le="+Inf"}} {ok}',
    ]
    return "\n".join(lines) + "\n"


def test_a_step_counts_the_requests_since_its_baseline_over_every_pod():
    now = {"a": metrics("2", 50, 2), "b": metrics("2", 30)}
    baseline = {"a": metrics("2", 20, 1), "b": metrics("2", 10)}
    stats = version_stats(now, baseline, 2)
    assert (stats.requests, stats.errors) == (51, 1)  # (52 + 30) - (21 + 10)


def test_a_pod_started_after_the_baseline_counts_from_its_start():
    stats = version_stats({"a": metrics("2", 50), "new": metrics("2", 7)}, {"a": metrics("2", 40)}, 2)
    assert stats.requests == 17


def test_a_pod_whose_counters_went_down_restarted_and_counts_from_its_restart():
    stats = version_stats({"a": metrics("2", 5)}, {"a": metrics("2", 40)}, 2)
    assert stats.requests == 5


def test_only_the_asked_version_is_counted_and_latency_comes_from_the_window():
    now = {"a": metrics("2", 100, fast=10), "s": metrics("1", 500)}
    stats = version_stats(now, {"a": metrics("2", 90, fast=10)}, 2)
    assert stats.requests == 10
    assert 0.005 < stats.latency_p99 <= 0.1  # the window's 10 answers were all slower than 5 ms


def test_no_scrape_means_no_requests():
    stats = version_stats({}, {"gone": metrics("2", 40)}, 2)
    assert (stats.requests, stats.errors, stats.latency_p99) == (0, 0, None)


def test_a_step_baseline_is_kept_per_object_and_replaced_when_the_next_step_starts():
    baselines = StepBaselines()
    baselines.start_step("shop", "churn", "T1", {"a": "x"})
    baselines.start_step("shop", "fraud", "T1", {"f": "y"})
    assert baselines.get("shop", "churn", "T1") == {"a": "x"}
    baselines.start_step("shop", "churn", "T2", {"a": "z"})
    assert baselines.get("shop", "churn", "T1") == {}
    assert baselines.get("shop", "churn", "T2") == {"a": "z"}
    assert baselines.get("shop", "fraud", "T1") == {"f": "y"}


def test_a_step_unknown_after_a_restart_counts_from_the_pods_start_without_dropping_a_newer_one():
    baselines = StepBaselines()
    baselines.start_step("shop", "churn", "T2", {"a": "z"})
    baselines.ensure("shop", "churn", "T1")  # a stale read of the previous step
    baselines.ensure("shop", "churn", "T2")
    assert baselines.get("shop", "churn", "T1") == {}
    assert baselines.get("shop", "churn", "T2") == {"a": "z"}


def test_a_stage_move_says_who_moved_it_and_why_and_leaves_the_spec_to_its_owner():
    version = {"metadata": {"name": "churn-v4", "generation": 3}, "spec": {"stage": "Candidate"}}
    change = StageChange("churn-v4", "Candidate", "Production", "kadence-operator", "canary version 4 passed every step")
    patch = stage_change_patch(change, version)
    assert patch == {"metadata": {"annotations": {
        "kadence.dev/changed-by": "kadence-operator", "kadence.dev/reason": "canary version 4 passed every step",
        "kadence.dev/stage-request": '{"generation": 3, "stage": "Production"}'}}}
