"""The console's view models, from objects alone (no server, no cluster)."""

from __future__ import annotations

import pytest

from kadence.api import keys
from kadence.console import views
from kadence.console.views import ActionRefused, Snapshot

from .objects import NS, dataset, evaluation, featureset, policy, run, service, version


def loop_snapshot(*extra: dict, svc: dict | None = None, pol: dict | None = None) -> Snapshot:
    return Snapshot.of([dataset(), featureset(), run(), version(1, "Production"), svc or service(),
                        pol or policy(), *extra])


def test_every_model_named_by_a_version_a_run_or_a_service_is_listed_once():
    snapshot = loop_snapshot(run("other-run") | {"spec": {**run()["spec"], "model": "fraud"}})
    assert [(s["namespace"], s["model"]) for s in views.overview(snapshot)] == [(NS, "churn"), (NS, "fraud")]


def test_the_home_summary_shows_the_served_version_the_metric_against_its_threshold_and_what_is_not_ready():
    [summary] = [s for s in views.overview(loop_snapshot()) if s["model"] == "churn"]
    assert summary["stable"] == "churn-v1" and summary["canary"] is None
    assert summary["metric"] == {"metric": "f1", "threshold": 0.55, "value": 0.5, "breached": True,
                                 "lowerIsBetter": False}
    assert summary["drift"] == "1/2 drifted"
    assert summary["lastRetrain"]["outcome"] == "Won"
    assert summary["notReady"] == [{"kind": "MonitorPolicy", "name": "churn-quality", "ready": "False",
                                    "reason": "MonitorJobFailed", "message": "the last monitor Job failed"}]


def test_the_loop_follows_references_and_leaves_other_models_and_their_policies_out():
    fraud_service = service() | {"metadata": {**service()["metadata"], "name": "fraud"},
                                 "spec": {**service()["spec"], "model": "fraud"}}
    fraud_policy = policy() | {"metadata": {**policy()["metadata"], "name": "fraud-quality"},
                               "spec": {**policy()["spec"], "inferenceServiceRef": {"name": "fraud"}}}
    loop = views.loop_of(loop_snapshot(fraud_service, fraud_policy), NS, "churn")
    assert [o["metadata"]["name"] for o in loop.all()] == [
        "churn", "churn-features", "churn-initial", "churn-v1", "churn", "churn-quality"]


def test_a_model_page_of_an_unknown_model_is_none():
    assert views.model_page(loop_snapshot(), NS, "nothing") is None


def test_the_metric_chart_plots_each_evaluation_the_threshold_breaches_and_retrains():
    page = views.model_page(loop_snapshot(), NS, "churn")
    chart = page["policies"][0]["metricChart"]
    line, points, threshold, retrains = chart["layer"]
    assert [p["value"] for p in line["data"]["values"]] == [0.81, 0.50]
    assert [p["breached"] for p in points["data"]["values"]] == [False, True]
    assert threshold["data"]["values"] == [{"threshold": 0.55}] and threshold["mark"]["type"] == "rule"
    assert retrains["data"]["values"] == [{"time": "2026-12-02T00:05:00Z", "trigger": "breach"}]


def test_evaluations_that_could_not_judge_quality_are_not_plotted():
    history = [evaluation("2026-12-01T00:00:00Z", 0.8, False), {**evaluation("2026-12-02T00:00:00Z", 0, False),
                                                                  "metrics": {}, "reason": "TooFewLabels"}]
    chart = views.policy_view(policy(history=history))["metricChart"]
    assert len(chart["layer"][0]["data"]["values"]) == 1


def test_the_policy_view_lists_breaches_drift_per_feature_and_the_report_key():
    view = views.policy_view(policy())
    assert [b["time"] for b in view["breaches"]] == ["2026-12-02T00:00:00Z"]
    assert view["drift"] == [{"feature": "monthly_charges", "score": 0.31, "drifted": True},
                             {"feature": "tenure_months", "score": 0.05, "drifted": False}]
    assert view["reports"] == [{"time": "2026-12-02T00:00:00Z", "key": "monitoring/team-a/churn-quality/r2/report.html"}]
    assert view["driftChart"]["layer"][1]["data"]["values"] == [{"threshold": 0.2}]


def test_the_lineage_runs_from_the_dataset_version_to_the_service_serving_each_version():
    snapshot = loop_snapshot(version(2, "Candidate", dataset_version="d2"),
                             svc=service(canary=2, phase="Progressing", step=0, weight=10, source="challenger"))
    lineage = views.model_page(snapshot, NS, "churn")["lineage"]
    assert lineage["chains"] == [
        "Dataset churn@d2 → FeatureSet churn-features@f1 → TrainingRun churn-initial → ModelVersion churn-v2 "
        "(Candidate) → InferenceService churn (canary 10%)",
        "Dataset churn@d1 → FeatureSet churn-features@f1 → TrainingRun churn-initial → ModelVersion churn-v1 "
        "(Production) → InferenceService churn (stable)"]
    edges = {(e["from"], e["to"], e.get("role")) for e in lineage["edges"]}
    assert ("ModelVersion/churn-v2", "InferenceService/churn", "canary") in edges
    assert ("Dataset/churn@d1", "FeatureSet/churn-features@f1", None) in edges
    columns = {n["kind"]: n["x"] for n in lineage["chart"]["layer"][1]["data"]["values"]}
    assert columns == {"Dataset": 0, "FeatureSet": 1, "TrainingRun": 2, "ModelVersion": 3, "InferenceService": 4}


def test_canary_steps_before_the_current_one_are_done_and_none_are_live_without_a_canary():
    progressing = service(canary=2, phase="Progressing", step=1, weight=50, source="challenger")
    assert [s["state"] for s in views.canary_steps(progressing)] == ["done", "current"]
    assert [s["state"] for s in views.canary_steps(service())] == ["pending", "pending"]


def test_a_stage_tracking_service_without_spec_canary_shows_the_default_steps():
    bare = service()
    bare["spec"].pop("canary")
    assert [s["weight"] for s in views.canary_steps(bare)] == [10, 50]


def test_the_score_chart_tracks_the_best_score_so_far_and_skips_failed_trials():
    chart = views.score_chart({"metric": "f1", "direction": "maximize", "trials": [
        {"number": 0, "score": 0.7, "family": "rf"}, {"number": 1, "score": None, "state": "FAIL"},
        {"number": 2, "score": 0.6, "family": "lr"}, {"number": 3, "score": 0.8, "family": "rf"}]})
    assert [(p["trial"], p["best"]) for p in chart["data"]["values"]] == [(0, 0.7), (2, 0.7), (3, 0.8)]


def test_the_score_chart_of_a_minimized_metric_keeps_the_lowest():
    chart = views.score_chart({"direction": "minimize", "trials": [{"number": 0, "score": 2.0},
                                                                  {"number": 1, "score": 1.0}]})
    assert [p["best"] for p in chart["data"]["values"]] == [2.0, 1.0]


def test_a_finished_run_links_its_model_card_and_a_running_one_does_not():
    assert views.run_view(run())["modelCard"] == "runs/team-a/churn-initial/model_card.html"
    assert views.run_view(run(model_version=None))["modelCard"] is None


# ---------------------------------------------------------------- actions


def test_a_candidate_of_a_manual_training_run_can_be_approved_to_its_target_stage_or_rejected():
    snapshot = loop_snapshot(run("churn-manual", mode="Manual", target="Staging"),
                             version(2, "Candidate", run_name="churn-manual"))
    loop = views.loop_of(snapshot, NS, "churn")
    assert [(a["action"], a["name"]) for a in views.available_actions(loop)] == [
        ("approve", "churn-v2"), ("reject", "churn-v2"), ("retrain", "churn-quality")]
    plan = views.plan_action(loop, "approve", "churn-v2", "alice (kadence console)")
    assert (plan.kind, plan.name) == ("ModelVersion", "churn-v2")
    assert plan.patch == {"spec": {"stage": "Staging"}, "metadata": {"annotations": {
        keys.CHANGED_BY_ANNOTATION: "alice (kadence console)", keys.REASON_ANNOTATION: "approved in kadence console"}}}
    assert views.plan_action(loop, "reject", "churn-v2", "alice").patch["spec"] == {"stage": "Archived"}


def test_a_candidate_a_policy_allowed_with_rollout_manual_waits_for_a_person():
    verdict = {"candidate": "churn-v2", "allowed": True, "rollout": "Manual", "reason": "ChallengerBeatsChampion",
               "time": "2026-12-03T00:00:00Z", "metric": "f1", "message": "m"}
    snapshot = loop_snapshot(version(2, "Candidate"), pol=policy(verdicts=[verdict], rollout_mode="Manual"))
    plan = views.plan_action(views.loop_of(snapshot, NS, "churn"), "approve", "churn-v2", "bob")
    assert plan.patch["spec"] == {"stage": "Production"}
    assert plan.message == "bob approved churn-v2 in kadence console (spec.stage Production)"


def test_a_candidate_of_an_auto_run_or_a_refused_verdict_offers_nothing_and_refuses_approval():
    refused = {"candidate": "churn-v2", "allowed": False, "rollout": None, "reason": "ChampionHolds",
               "time": "2026-12-03T00:00:00Z", "metric": "f1", "message": "m"}
    loop = views.loop_of(loop_snapshot(version(2, "Candidate"), pol=policy(verdicts=[refused])), NS, "churn")
    assert [a["action"] for a in views.available_actions(loop)] == ["retrain"]
    with pytest.raises(ActionRefused, match="churn-v2 is not a Candidate waiting for a person's approval"):
        views.plan_action(loop, "approve", "churn-v2", "bob")


def test_a_canary_paused_at_its_last_step_can_be_promoted_with_the_promote_annotation():
    paused = service(canary=2, phase="Paused", step=1, weight=50, source="challenger",
                     reason="awaiting promotion: every step passed and autoPromote is off")
    loop = views.loop_of(loop_snapshot(version(2, "Candidate"), svc=paused), NS, "churn")
    assert [(a["action"], a["name"]) for a in views.available_actions(loop)] == [
        ("promote", "churn"), ("abort", "churn"), ("retrain", "churn-quality")]
    plan = views.plan_action(loop, "promote", "churn", "alice")
    assert (plan.kind, plan.name, plan.patch) == (
        "InferenceService", "churn", {"metadata": {"annotations": {keys.PROMOTE_ANNOTATION: "true"}}})
    assert plan.reason == "ConsolePromote" and "alice promoted canary churn-v2 of churn" in plan.message


def test_a_progressing_canary_cannot_be_promoted_yet():
    progressing = service(canary=2, phase="Progressing", step=0, weight=10, source="challenger")
    loop = views.loop_of(loop_snapshot(version(2, "Candidate"), svc=progressing), NS, "churn")
    with pytest.raises(ActionRefused, match="no canary paused at its last step awaiting promotion"):
        views.plan_action(loop, "promote", "churn", "alice")


def test_aborting_a_challenger_canary_archives_its_candidate():
    progressing = service(canary=2, phase="Progressing", step=0, weight=10, source="challenger")
    loop = views.loop_of(loop_snapshot(version(2, "Candidate"), svc=progressing), NS, "churn")
    plan = views.plan_action(loop, "abort", "churn", "alice")
    assert (plan.kind, plan.name, plan.patch["spec"]) == ("ModelVersion", "churn-v2", {"stage": "Archived"})
    assert plan.event_object == {"kind": "ModelVersion", "name": "churn-v2", "uid": "uid-churn-v2"}


def test_a_pinned_canary_is_not_aborted_by_the_console():
    pinned = service(canary=2, phase="Progressing", step=0, weight=10, source="spec")
    loop = views.loop_of(loop_snapshot(version(2, "Candidate"), svc=pinned), NS, "churn")
    with pytest.raises(ActionRefused, match="pinned by spec.canary.version"):
        views.plan_action(loop, "abort", "churn", "alice")


def test_an_unknown_action_or_object_is_refused_by_name():
    loop = views.loop_of(loop_snapshot(), NS, "churn")
    with pytest.raises(ActionRefused, match="unknown action 'delete'"):
        views.plan_action(loop, "delete", "churn", "alice")
    with pytest.raises(ActionRefused, match="no ModelVersion churn-v9"):
        views.plan_action(loop, "approve", "churn-v9", "alice")
    with pytest.raises(ActionRefused, match="no InferenceService nope"):
        views.plan_action(loop, "promote", "nope", "alice")


def test_the_event_names_the_object_and_who_acted():
    loop = views.loop_of(loop_snapshot(run("churn-manual", mode="Manual"), version(2, "Candidate", run_name="churn-manual")),
                         NS, "churn")
    plan = views.plan_action(loop, "reject", "churn-v2", "alice (kadence console)")
    event = views.event_manifest(NS, plan, "2026-12-07T00:00:00Z", "abc")
    assert event["metadata"] == {"name": "churn-v2.console-abc", "namespace": NS}
    assert event["involvedObject"] == {"apiVersion": "kadence.dev/v1alpha1", "namespace": NS, "kind": "ModelVersion",
                                       "name": "churn-v2", "uid": "uid-churn-v2"}
    assert event["reason"] == "ConsoleReject" and event["message"].startswith("alice (kadence console) rejected churn-v2")


def test_the_access_review_asks_to_patch_exactly_the_object_changed():
    assert views.access_review(NS, "ModelVersion", "churn-v2")["spec"]["resourceAttributes"] == {
        "namespace": NS, "verb": "patch", "group": "kadence.dev", "resource": "modelversions", "name": "churn-v2"}


def test_a_policy_that_retrains_is_asked_for_one_retrain_through_spec_triggers_manual():
    loop = views.loop_of(loop_snapshot(), NS, "churn")
    assert {"action": "retrain", "kind": "MonitorPolicy", "name": "churn-quality",
            "label": "Retrain now (churn-quality)"} in views.available_actions(loop)
    plan = views.plan_action(loop, "retrain", "churn-quality", "alice (kadence console)", now="2026-12-07T21:00:00Z",
                             reason="  new labels are in  ")
    assert (plan.kind, plan.name, plan.reason) == ("MonitorPolicy", "churn-quality", "ConsoleRetrain")
    assert plan.patch == {"spec": {"triggers": {"manual": {
        "requestedAt": "2026-12-07T21:00:00Z", "requestedBy": "alice (kadence console)", "reason": "new labels are in"}}}}
    assert plan.message == ("alice (kadence console) asked MonitorPolicy churn-quality to retrain in kadence console "
                            "(spec.triggers.manual.requestedAt 2026-12-07T21:00:00Z): new labels are in")
    assert views.plan_action(loop, "retrain", "churn-quality", "bob", now="2026-12-07T21:00:00Z").patch[
        "spec"]["triggers"]["manual"]["reason"] == "asked in kadence console"


def test_a_retrain_request_not_handled_yet_is_neither_offered_nor_made_again():
    pending = policy()
    pending["spec"]["triggers"] = {"manual": {"requestedAt": "2026-12-07T21:00:00Z", "requestedBy": "alice"}}
    loop = views.loop_of(loop_snapshot(pol=pending), NS, "churn")
    assert "retrain" not in [a["action"] for a in views.available_actions(loop)]
    with pytest.raises(ActionRefused, match="the retrain alice asked for at 2026-12-07T21:00:00Z is not handled yet"):
        views.plan_action(loop, "retrain", "churn-quality", "bob", now="2026-12-07T21:05:00Z")
    pending["status"]["lastManualRequest"] = "2026-12-07T21:00:00Z"  # handled: a new request may be made
    loop = views.loop_of(loop_snapshot(pol=pending), NS, "churn")
    assert "retrain" in [a["action"] for a in views.available_actions(loop)]


def test_a_policy_that_does_not_retrain_offers_no_retrain_and_refuses_one():
    disabled = policy()
    disabled["spec"]["actions"] = {"retrain": {"enabled": False}}
    loop = views.loop_of(loop_snapshot(pol=disabled), NS, "churn")
    assert views.available_actions(loop) == []
    with pytest.raises(ActionRefused, match="does not retrain"):
        views.plan_action(loop, "retrain", "churn-quality", "bob", now="2026-12-07T21:05:00Z")
    with pytest.raises(ActionRefused, match="no MonitorPolicy fraud-quality"):
        views.plan_action(loop, "retrain", "fraud-quality", "bob", now="2026-12-07T21:05:00Z")


def test_the_access_review_of_a_retrain_asks_to_patch_the_policy():
    assert views.access_review(NS, "MonitorPolicy", "churn-quality")["spec"]["resourceAttributes"]["resource"] == (
        "monitorpolicies")
