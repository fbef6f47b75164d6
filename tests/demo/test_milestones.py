"""The loop's steps as the demo sees them: what a second look at the cluster adds to a first."""

from __future__ import annotations

import json

import pytest

from kadence.demo import report
from kadence.demo.milestones import Snapshot, changes

NOW = "2026-11-23T03:00:00Z"


def evaluation(time: str, breached: bool, f1: float = 0.4) -> dict:
    return {"time": time, "breached": breached, "reason": "QualityBelowThreshold" if breached else "Healthy",
            "message": f"f1={f1}", "metrics": {"f1": f1}}


def policy(*evaluations: dict, retrains: tuple = ()) -> dict:
    history = list(evaluations)
    return {"status": {"history": history[:-1] if history else [], "lastEvaluation": history[-1] if history else None,
                       "retrains": [{"trainingRun": r, "trigger": "breach", "message": "f1 low"} for r in retrains]}}


def model_version(name: str, version: int, stage: str, verdict: dict | None = None) -> dict:
    """A ModelVersion; `verdict` is the policy's verdict about it (snap puts it in status.verdicts)."""
    return {"metadata": {"name": name}, "spec": {"version": version}, "status": {"stage": stage},
            "verdict": verdict}


def service(stable: int, canary: int | None = None, weight: int | None = None, phase: str = "Stable",
            reason: str | None = None) -> dict:
    return {"status": {"stableVersion": stable, "canaryVersion": canary, "canaryWeight": weight, "phase": phase,
                       "rolloutReason": reason}}


def dataset(version: str, rows: int) -> dict:
    return {"status": {"latestVersion": version, "versions": [{"id": version, "rows": rows}]}}


def snap(policy_body=None, data=None, versions=(), runs=(), isvc=None) -> Snapshot:
    verdicts = [{**v["verdict"], "candidate": v["metadata"]["name"]} for v in versions if v.get("verdict")]
    if verdicts:
        policy_body = policy_body or {"status": {}}
        policy_body = {**policy_body, "status": {**policy_body["status"], "verdicts": verdicts}}
    return Snapshot.of(policy_body, data, [{k: v for k, v in mv.items() if k != "verdict"} for mv in versions],
                       list(runs), isvc)


def kinds(before: Snapshot, after: Snapshot) -> list[tuple[str, str]]:
    return [(m.kind, m.reason) for m in changes(before, after, NOW, 3)]


BASE = snap(policy(evaluation("t1", False)), dataset("d1", 1500), [model_version("c-v1", 1, "Production")],
            isvc=service(1))
APPROVED = {"allowed": True, "reason": "ChallengerBetter", "metric": "f1", "candidateScore": 0.99,
            "championScore": 0.2, "message": "candidate better"}


@pytest.mark.parametrize(("after", "expected"), [
    (BASE, []),
    (snap(policy(evaluation("t1", False), evaluation("t2", True)), dataset("d1", 1500),
          [model_version("c-v1", 1, "Production")], isvc=service(1)),
     [(report.BREACH, "QualityBelowThreshold")]),
    (snap(policy(evaluation("t1", False), evaluation("t2", True), retrains=("c-retrain-1",)), dataset("d2", 1700),
          [model_version("c-v1", 1, "Production")], isvc=service(1)),
     [(report.BREACH, "QualityBelowThreshold"), (report.RETRAIN, "breach"), (report.DATASET_VERSION, "NewVersion")]),
    (snap(policy(evaluation("t1", False)), dataset("d1", 1500),
          [model_version("c-v1", 1, "Production"), model_version("c-v2", 2, "Candidate", APPROVED)], isvc=service(1)),
     [(report.CANDIDATE, "Candidate"), (report.VERDICT, "Approved")]),
    (snap(policy(evaluation("t1", False)), dataset("d1", 1500),
          [model_version("c-v1", 1, "Production"),
           model_version("c-v2", 2, "Candidate", {"allowed": False, "reason": "ChallengerNotBetter"})],
          isvc=service(1)),
     [(report.CANDIDATE, "Candidate"), (report.VERDICT, "ChallengerNotBetter")]),
    (snap(policy(evaluation("t1", False)), dataset("d1", 1500), [model_version("c-v1", 1, "Production")],
          isvc=service(1, 2, 50, "Progressing")),
     [(report.CANARY, "CanaryStarted")]),
    (snap(policy(evaluation("t1", False)), dataset("d1", 1500),
          [model_version("c-v1", 1, "Archived"), model_version("c-v2", 2, "Production")], isvc=service(2)),
     [(report.PROMOTED, "Promoted")]),
    (snap(policy(evaluation("t1", False)), dataset("d1", 1500), [model_version("c-v1", 1, "Production")],
          isvc=service(1, 2, 0, "RolledBack", "AnalysisFailed: errors")),
     [(report.CANARY, "CanaryStarted"), (report.ROLLED_BACK, "RolledBack")]),
])
def test_each_step_of_the_loop_is_seen_once_when_it_appears(after, expected):
    assert kinds(BASE, after) == expected
    assert kinds(after, after) == [], "a second look at the same state adds nothing"


def test_a_retrain_run_labelled_by_the_policy_counts_before_the_policy_status_lists_it():
    run = {"metadata": {"name": "c-retrain-9", "labels": {"kadence.dev/retrained-by": "p"},
                        "annotations": {"kadence.dev/retrain-trigger": "breach",
                                        "kadence.dev/retrain-cause": "f1=0.3 < 0.55"}}}
    after = snap(policy(evaluation("t1", False)), dataset("d1", 1500), [model_version("c-v1", 1, "Production")],
                 runs=[run], isvc=service(1))
    [found] = changes(BASE, after, NOW, 2)
    assert (found.kind, found.object, found.message, found.month) == (report.RETRAIN, "TrainingRun/c-retrain-9",
                                                                       "f1=0.3 < 0.55", 2)


def test_only_the_first_breached_evaluation_of_a_run_is_a_breach_and_a_later_run_is_a_new_one():
    first = snap(policy(evaluation("t1", False), evaluation("t2", True)))
    still = snap(policy(evaluation("t1", False), evaluation("t2", True), evaluation("t3", True)))
    assert kinds(first, still) == []
    recovered = snap(policy(evaluation("t2", True), evaluation("t3", True), evaluation("t4", False),
                            evaluation("t5", True)))
    assert kinds(still, recovered) == [(report.BREACH, "QualityBelowThreshold")]


def test_a_canary_moving_to_its_next_weight_is_a_step_and_the_verdict_message_carries_both_scores():
    started = snap(isvc=service(1, 2, 10, "Progressing"))
    stepped = snap(isvc=service(1, 2, 50, "Progressing"))
    [step] = changes(started, stepped, NOW, 5)
    assert (step.kind, step.message) == (report.CANARY_STEP, "version 2 at 50% of the traffic")
    verdict = changes(snap(), snap(versions=[model_version("c-v2", 2, "Candidate", APPROVED)]), NOW, 4)[-1]
    assert verdict.message.startswith("f1 0.990 (candidate) vs 0.200 (Production); candidate better")


def test_the_promotion_names_the_new_version_and_the_one_it_replaced():
    after = snap(versions=[model_version("c-v1", 1, "Archived"), model_version("c-v2", 2, "Production")],
                 isvc=service(2))
    before = snap(versions=[model_version("c-v1", 1, "Production"), model_version("c-v2", 2, "Candidate")],
                  isvc=service(1, 2, 50, "Progressing"))
    [promoted] = changes(before, after, NOW, 5)
    assert promoted.object == "ModelVersion/c-v2"
    assert promoted.message == "version 2 is the stable version (was 1)"


def test_a_verdict_written_on_the_model_version_by_a_user_is_no_verdict():
    forged = model_version("c-v2", 2, "Candidate")
    forged["metadata"]["annotations"] = {"kadence.dev/challenger-verdict": json.dumps(APPROVED)}
    assert kinds(snap(), snap(versions=[forged])) == [(report.CANDIDATE, "Candidate")]


def test_a_retrain_decision_that_found_nothing_new_is_a_step_of_its_own_and_starts_no_run():
    body = policy(evaluation("t1", False), evaluation("t2", True), retrains=("c-retrain-1",))
    body["status"]["retrains"].append({"time": "t3", "trigger": "breach", "outcome": "NothingNew",
                                       "outcomeMessage": "the inputs equal those of c-v2"})
    after = snap(body, dataset("d1", 1500), [model_version("c-v1", 1, "Production")], isvc=service(1))
    assert kinds(BASE, after) == [(report.BREACH, "QualityBelowThreshold"), (report.RETRAIN, "breach"),
                                  (report.NOTHING_NEW, "NothingNewToLearn")]
    assert [r[0] for r in after.retrains] == ["c-retrain-1"]
    assert kinds(after, after) == []


def retrain_run(name: str, phase: str | None) -> dict:
    return {"metadata": {"name": name, "labels": {"kadence.dev/retrained-by": "p"}},
            "status": {"phase": phase} if phase else {}}


@pytest.mark.parametrize(("runs", "isvc", "busy"), [
    ([], service(1), None),
    ([retrain_run("c-retrain-1", "Running")], service(1), "retrain c-retrain-1 runs"),
    ([retrain_run("c-retrain-1", None)], service(1), "retrain c-retrain-1 runs"),
    ([retrain_run("c-retrain-1", "Succeeded")], service(1, 2, 50, "Progressing"),
     "the canary of version 2 goes on (Progressing)"),
    ([retrain_run("c-retrain-1", "Failed")], service(1, 2, 0, "RolledBack"), None),
    ([retrain_run("c-retrain-1", "Succeeded")], service(2), None),
])
def test_a_running_retrain_or_a_canary_under_way_is_the_loop_busy(runs, isvc, busy):
    assert snap(policy(evaluation("t1", False)), dataset("d1", 1500), [model_version("c-v1", 1, "Production")],
                runs=runs, isvc=isvc).busy() == busy


NOT_SCORED = {"allowed": False, "reason": "ChallengerNotEvaluated", "message": "not scored yet"}
TOO_FEW = {"allowed": False, "reason": "TooFewLabelsToCompare", "message": "no labelled predictions yet"}


@pytest.mark.parametrize(("pending", "candidate", "isvc", "busy"), [
    ({"dataset": "customers", "trigger": "breach"}, None, service(1),
     "a retrain waits for Dataset customers to take in the labelled feedback"),
    (None, model_version("c-v2", 2, "Candidate"), service(1), "candidate c-v2 awaits the champion/challenger verdict"),
    (None, model_version("c-v2", 2, "Candidate", NOT_SCORED), service(1),
     "candidate c-v2 awaits the champion/challenger verdict"),
    (None, model_version("c-v2", 2, "Candidate", {**APPROVED, "rollout": "Canary"}), service(1),
     "candidate c-v2 is approved and its canary has not started"),
    (None, model_version("c-v2", 2, "Candidate", TOO_FEW), service(1), None),
    (None, model_version("c-v2", 2, "Candidate", {**APPROVED, "rollout": "Manual"}), service(1), None),
    (None, model_version("c-v2", 2, "Archived", {**APPROVED, "rollout": "Canary"}), service(1, 2, 0, "RolledBack"),
     None),
    (None, model_version("c-v2", 2, "Production", {**APPROVED, "rollout": "Canary"}), service(2), None),
])
def test_a_decided_retrain_an_unjudged_candidate_or_an_approved_one_not_yet_canaried_is_the_loop_busy(
        pending, candidate, isvc, busy):
    body = policy(evaluation("t1", True))
    if pending:
        body["status"]["pendingRetrain"] = {"time": "t1", "slot": "s", **pending}
    versions = [model_version("c-v1", 1, "Production")] + ([candidate] if candidate else [])
    assert snap(body, dataset("d1", 1500), versions, isvc=isvc).busy() == busy
