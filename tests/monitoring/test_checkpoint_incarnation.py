"""The feedback export's checkpoint belongs to one incarnation of a MonitorPolicy (its uid): a
policy deleted and re-created under the same name starts from the logs, not from its
predecessor's rows; a checkpoint kept under the name by earlier versions is taken over by the
policy that wrote it."""

from __future__ import annotations

from kadence.workloads.monitor_run import evaluate
from kadence.workloads.monitor_task import MonitorTask

from .test_late_labels_workload import DAY, T, body, predict_days

RETENTION_START = "2026-10-24T12:00:00Z"  # T - 30 days: where a carried checkpoint ends


def export_at(store, ns: str, when, **incarnation):
    export = {"target": "churned", "timeColumn": "t", **incarnation}
    task = MonitorTask.model_validate(body(ns, time=when.isoformat(), feedbackExport=export))
    result, _, _ = evaluate(task, store)
    return result.feedback_export


def test_a_policy_recreated_under_the_same_name_does_not_start_from_its_predecessors_checkpoint(store, s3_env):
    predict_days(store, "reborn", list(range(1, 200, 3)), per_day=4, label_after=DAY)
    first = {"policyUid": "uid-first", "policyCreated": (T - 300 * DAY).isoformat()}
    assert export_at(store, "reborn", T - 5 * DAY, **first).carried_until is None  # nothing to start from
    assert export_at(store, "reborn", T, **first).carried_until == RETENTION_START  # its own checkpoint
    second = {"policyUid": "uid-second", "policyCreated": (T - DAY).isoformat()}
    assert export_at(store, "reborn", T, **second).carried_until is None


def test_a_checkpoint_kept_under_the_name_is_taken_over_only_by_the_policy_that_wrote_it(store, s3_env):
    predict_days(store, "upgraded", list(range(1, 200, 3)), per_day=4, label_after=DAY)
    assert export_at(store, "upgraded", T - 5 * DAY).carried_until is None  # written as before uids keyed it
    created_after = {"policyUid": "uid-new", "policyCreated": (T - 2 * DAY).isoformat()}
    assert export_at(store, "upgraded", T, **created_after).carried_until is None
    created_before = {"policyUid": "uid-old", "policyCreated": (T - 300 * DAY).isoformat()}
    assert export_at(store, "upgraded", T, **created_before).carried_until == RETENTION_START
