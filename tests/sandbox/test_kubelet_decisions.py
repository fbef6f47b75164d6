"""Table tests of the node's pure decisions: environment, restarts, phases, Job and rollout plans."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone

import pytest

from kadence.sandbox.kubelet import podspec
from kadence.sandbox.kubelet.deployments import (
    SetView, deployment_status, plan_recreate, plan_replicaset, plan_rolling, resolve_int_or_percent,
    surge_and_unavailable, template_hash,
)
from kadence.sandbox.kubelet.autoscaler import (
    MetricTarget, clamp_and_limit, desired_replicas, metric_targets, parse_quantity, stabilized,
)
from kadence.sandbox.kubelet.jobs import job_pod, plan_job, pod_failure_action

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
POD = {"metadata": {"name": "p-1", "namespace": "ml", "uid": "u-1", "labels": {"app": "x", "tier": "web"},
                    "annotations": {"note": "hi"}}, "spec": {}}
CONFIGMAPS = {("ml", "settings"): {"data": {"LEVEL": "debug", "MODE": "fast"}}}
SECRETS = {("ml", "creds"): {"data": {"token": base64.b64encode(b"s3cr3t").decode()}}}


def resolve(container: dict) -> dict:
    return podspec.resolve_env(POD, container, lambda ns, n: CONFIGMAPS.get((ns, n)),
                               lambda ns, n: SECRETS.get((ns, n)))


@pytest.mark.parametrize("container, expected", [
    ({"env": [{"name": "A", "value": "1"}]}, {"A": "1"}),
    ({"env": [{"name": "A", "value": "x"}, {"name": "B", "value": "$(A)-y"}]}, {"A": "x", "B": "x-y"}),
    ({"env": [{"name": "B", "value": "$(UNDEFINED) $$(A)"}]}, {"B": "$(UNDEFINED) $(A)"}),
    ({"env": [{"name": "L", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "LEVEL"}}}]},
     {"L": "debug"}),
    ({"env": [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}]},
     {"T": "s3cr3t"}),
    ({"env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
              {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
              {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
              {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}}]},
     {"N": "p-1", "NS": "ml", "IP": "127.0.0.1", "APP": "x"}),
    ({"envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}, {"secretRef": {"name": "creds"}}]},
     {"CFG_LEVEL": "debug", "CFG_MODE": "fast", "token": "s3cr3t"}),
    ({"envFrom": [{"configMapRef": {"name": "settings"}}], "env": [{"name": "MODE", "value": "slow"}]},
     {"LEVEL": "debug", "MODE": "slow"}),
    ({"env": [{"name": "O", "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "k", "optional": True}}}]},
     {}),
])
def test_the_environment_is_built_as_the_kubelet_builds_it(container, expected):
    assert resolve(container) == expected


@pytest.mark.parametrize("container, message", [
    ({"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "k"}}}]},
     'configmap "absent" not found'),
    ({"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "nope"}}}]},
     "couldn't find key nope in ConfigMap ml/settings"),
    ({"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k"}}}]},
     'secret "absent" not found'),
    ({"envFrom": [{"secretRef": {"name": "absent"}}]}, 'secret "absent" not found'),
])
def test_a_missing_reference_stops_the_container_with_a_clear_message(container, message):
    with pytest.raises(podspec.EnvError, match=message):
        resolve(container)


def test_command_and_args_expand_variables_and_a_missing_command_is_refused():
    argv = podspec.container_argv({"command": ["kadence", "train"], "args": ["--port", "$(PORT)"]}, {"PORT": "9"})
    assert argv == ["kadence", "train", "--port", "9"]
    with pytest.raises(podspec.EnvError, match="has no command"):
        podspec.container_argv({"name": "c", "image": "x", "args": ["a"]}, {})


@pytest.mark.parametrize("policy, exit_code, restart", [
    ("Always", 0, True), ("Always", 1, True), ("OnFailure", 0, False), ("OnFailure", 2, True),
    ("Never", 0, False), ("Never", 1, False),
])
def test_restart_policy_decides_whether_a_container_runs_again(policy, exit_code, restart):
    assert podspec.restart_wanted(policy, exit_code) is restart


@pytest.mark.parametrize("restarts, delay", [(0, 0), (1, 10), (2, 20), (3, 40), (6, 300), (20, 300)])
def test_crash_loop_back_off_doubles_up_to_its_cap(restarts, delay):
    assert podspec.Backoff(base=10, cap=300).delay(restarts) == delay


@pytest.mark.parametrize("states, init_done, init_failed, phase", [
    ([], True, False, "Pending"),
    (["waiting"], True, False, "Pending"),
    (["running"], True, False, "Running"),
    (["backoff"], True, False, "Running"),
    (["running", "succeeded"], True, False, "Running"),
    (["succeeded", "succeeded"], True, False, "Succeeded"),
    (["succeeded", "failed"], True, False, "Failed"),
    (["waiting"], False, False, "Pending"),
    (["waiting"], False, True, "Failed"),
])
def test_the_pod_phase_follows_its_containers(states, init_done, init_failed, phase):
    assert podspec.pod_phase(states, init_done, init_failed) == phase


@pytest.mark.parametrize("selector, labels, matches", [
    ({"matchLabels": {"app": "x"}}, {"app": "x", "b": "c"}, True),
    ({"matchLabels": {"app": "x"}}, {"app": "y"}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]}]}, {"tier": "web"}, True),
    ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}]}, {"tier": "web"}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, {}, True),
    ({}, {"app": "x"}, False),
    (None, {"app": "x"}, False),
    ({"matchExpressions": [{"key": "app", "operator": "Near", "values": ["x"]}]}, {"app": "x"}, False),
])
def test_label_selectors_match_as_on_a_cluster(selector, labels, matches):
    assert podspec.selector_matches(selector, labels) is matches


def test_service_links_point_at_the_local_proxy_port():
    services = [{"metadata": {"name": "model-server", "annotations": {podspec.PROXY_PORT_ANNOTATION: "4321"}}},
                {"metadata": {"name": "no-port-yet"}}]
    assert podspec.service_link_env(services) == {
        "MODEL_SERVER_SERVICE_HOST": "127.0.0.1", "MODEL_SERVER_SERVICE_PORT": "4321",
        "MODEL_SERVER_PORT": "tcp://127.0.0.1:4321"}


# ---- Jobs -------------------------------------------------------------------------------------

def job(**spec) -> dict:
    return {"metadata": {"name": "train", "namespace": "ml", "uid": "job-uid"},
            "spec": {"template": {"metadata": {"labels": {"app": "t"}},
                                  "spec": {"restartPolicy": "Never", "containers": [{"name": "c"}]}}, **spec},
            "status": {}}


def pod(phase: str, name: str = "train-x", finished: datetime | None = None, deleting: bool = False,
        ready: bool = False, restarts: int = 0) -> dict:
    status: dict = {"phase": phase, "containerStatuses": [{"restartCount": restarts, "state": {}}]}
    if finished:
        status["containerStatuses"][0]["state"] = {"terminated": {"finishedAt": finished.strftime(
            "%Y-%m-%dT%H:%M:%SZ")}}
    if ready:
        status["conditions"] = [{"type": "Ready", "status": "True"}]
    meta = {"name": name}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T12:00:00Z"
    return {"metadata": meta, "status": status}


BACKOFF = podspec.Backoff(base=10, cap=300)


def condition_types(status: dict) -> list[tuple[str, str]]:
    return [(c["type"], c["reason"]) for c in status.get("conditions", [])]


def test_a_new_job_creates_its_first_pod_and_records_its_start():
    plan = plan_job(job(), [], NOW, BACKOFF)
    assert plan.create == 1
    assert plan.status["startTime"] == "2026-01-01T12:00:00Z"
    assert plan.status["active"] == 0 and plan.status["failed"] == 0


def test_a_running_pod_is_counted_active_and_nothing_more_is_created():
    plan = plan_job(job(), [pod("Running", ready=True)], NOW, BACKOFF)
    assert (plan.create, plan.status["active"], plan.status["ready"]) == (0, 1, 1)


def test_a_failed_pod_is_replaced_only_after_the_back_off():
    failed = [pod("Failed", finished=NOW - timedelta(seconds=3))]
    early = plan_job(job(backoffLimit=3), failed, NOW, BACKOFF)
    assert early.create == 0 and early.requeue_after == pytest.approx(7)
    late = plan_job(job(backoffLimit=3), failed, NOW + timedelta(seconds=8), BACKOFF)
    assert late.create == 1 and late.status["failed"] == 1


def test_failures_beyond_the_backoff_limit_fail_the_job_with_both_conditions():
    pods = [pod("Failed", f"p{i}", finished=NOW) for i in range(3)]
    plan = plan_job(job(backoffLimit=2), pods, NOW, BACKOFF)
    assert plan.create == 0
    assert condition_types(plan.status) == [("FailureTarget", "BackoffLimitExceeded"),
                                            ("Failed", "BackoffLimitExceeded")]
    assert plan.status["failed"] == 3 and "completionTime" not in plan.status


def test_failures_up_to_the_backoff_limit_still_retry():
    pods = [pod("Failed", f"p{i}", finished=NOW - timedelta(hours=1)) for i in range(2)]
    plan = plan_job(job(backoffLimit=2), pods, NOW, BACKOFF)
    assert plan.create == 1 and "conditions" not in plan.status or plan.status["conditions"] == []


def test_a_job_past_its_deadline_terminates_its_pods_before_it_is_failed():
    started = job(activeDeadlineSeconds=60)
    started["status"] = {"startTime": "2026-01-01T11:58:00Z"}
    running = pod("Running", "p-run")
    first = plan_job(started, [running], NOW, BACKOFF)
    assert first.delete == ["p-run"]
    assert condition_types(first.status) == [("FailureTarget", "DeadlineExceeded")]
    started["status"] = first.status
    second = plan_job(started, [pod("Running", "p-run", deleting=True)], NOW, BACKOFF)
    assert condition_types(second.status) == [("FailureTarget", "DeadlineExceeded")]
    third = plan_job(started, [], NOW, BACKOFF)
    assert condition_types(third.status) == [("FailureTarget", "DeadlineExceeded"), ("Failed", "DeadlineExceeded")]


def test_a_job_before_its_deadline_asks_to_be_looked_at_when_it_falls_due():
    started = job(activeDeadlineSeconds=60)
    started["status"] = {"startTime": "2026-01-01T11:59:30Z"}
    plan = plan_job(started, [pod("Running")], NOW, BACKOFF)
    assert plan.requeue_after == pytest.approx(30)


def test_a_succeeded_pod_completes_the_job_with_a_completion_time():
    plan = plan_job(job(completions=1), [pod("Succeeded", finished=NOW)], NOW, BACKOFF)
    assert condition_types(plan.status) == [("SuccessCriteriaMet", "CompletionsReached"),
                                            ("Complete", "CompletionsReached")]
    assert plan.status["succeeded"] == 1 and plan.status["completionTime"] == "2026-01-01T12:00:00Z"


def test_counts_never_go_down_when_finished_pods_disappear():
    counted = job()
    counted["status"] = {"failed": 2, "succeeded": 0, "startTime": "2026-01-01T11:00:00Z"}
    plan = plan_job(counted, [], NOW, BACKOFF)
    assert plan.status["failed"] == 2


def test_on_failure_restarts_count_against_the_backoff_limit():
    restarting = job(backoffLimit=2)
    restarting["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    plan = plan_job(restarting, [pod("Running", "p", restarts=2)], NOW, BACKOFF)
    assert plan.delete == ["p"]
    assert condition_types(plan.status) == [("FailureTarget", "BackoffLimitExceeded")]


def test_a_finished_job_with_a_ttl_is_deleted_once_the_ttl_has_passed():
    done = job(ttlSecondsAfterFinished=30)
    done["status"] = {"completionTime": "2026-01-01T11:59:00Z",
                      "conditions": [{"type": "Complete", "status": "True", "reason": "CompletionsReached",
                                      "lastTransitionTime": "2026-01-01T11:59:00Z"}]}
    assert plan_job(done, [], NOW, BACKOFF).delete_job
    done["status"]["completionTime"] = "2026-01-01T11:59:50Z"
    plan = plan_job(done, [], NOW, BACKOFF)
    assert not plan.delete_job and plan.requeue_after == pytest.approx(20)


def exited(code: int, container: str = "train", name: str = "p") -> dict:
    return {"metadata": {"name": name, "namespace": "ml"},
            "status": {"phase": "Failed", "containerStatuses": [
                {"name": container, "state": {"terminated": {"exitCode": code, "finishedAt": "2026-01-01T11:00:00Z"}}}]}}


FAIL_ON_3 = {"rules": [{"action": "FailJob", "onExitCodes": {"containerName": "train", "operator": "In",
                                                             "values": [3]}},
                       {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [143]}},
                       {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1]}}]}


@pytest.mark.parametrize("pod_, action", [
    (exited(3), "FailJob"),
    (exited(3, container="sidecar"), "Count"),
    (exited(143), "Ignore"),
    (exited(2), "Count"),
    (exited(1), "Count"),
])
def test_pod_failure_policy_rules_match_in_order(pod_, action):
    assert pod_failure_action(FAIL_ON_3, pod_)[0] == action


def test_a_fail_job_rule_fails_the_job_at_once_whatever_the_backoff_limit():
    plan = plan_job(job(backoffLimit=6, podFailurePolicy=FAIL_ON_3), [exited(3)], NOW, BACKOFF)
    assert condition_types(plan.status) == [("FailureTarget", "PodFailurePolicy"), ("Failed", "PodFailurePolicy")]
    assert plan.status["conditions"][0]["message"] == (
        "Container train for pod ml/p failed with exit code 3 matching FailJob rule at index 0")


def test_an_ignored_failure_is_not_counted_and_the_pod_is_replaced_at_once():
    plan = plan_job(job(backoffLimit=0, podFailurePolicy=FAIL_ON_3), [exited(143)], NOW, BACKOFF)
    assert plan.status["failed"] == 0 and plan.create == 1 and not plan.status["conditions"]


def test_job_pods_carry_the_job_labels_and_a_controller_owner_reference():
    body = job_pod(job())
    labels = body["metadata"]["labels"]
    assert labels["job-name"] == "train" and labels["batch.kubernetes.io/controller-uid"] == "job-uid"
    assert labels["app"] == "t"
    owner = body["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("Job", "job-uid", True)
    assert body["metadata"]["generateName"] == "train-"


# ---- Deployments ------------------------------------------------------------------------------

@pytest.mark.parametrize("value, total, round_up, expected", [
    ("25%", 4, True, 1), ("25%", 3, True, 1), ("25%", 3, False, 0), (2, 10, True, 2), ("50%", 5, False, 2),
    (None, 3, True, 0),
])
def test_int_or_percent_rounds_surge_up_and_unavailability_down(value, total, round_up, expected):
    assert resolve_int_or_percent(value, total, round_up) == expected


def test_zero_surge_and_zero_unavailable_still_allows_one_unavailable_pod():
    deployment = {"spec": {"replicas": 3, "strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}}}
    assert surge_and_unavailable(deployment) == (0, 1)


@pytest.mark.parametrize("desired, surge, unavailable, new, olds, expected", [
    # A first rollout: no old sets, the new set gets every replica.
    (3, 1, 0, SetView("new", 0, 0), [], {"new": 3}),
    # Surge one pod first, never dropping below 3 available.
    (3, 1, 0, SetView("new", 0, 0), [SetView("old", 3, 3)], {"new": 1, "old": 3}),
    # The surged pod is available: one old pod may go.
    (3, 1, 0, SetView("new", 1, 1), [SetView("old", 3, 3)], {"new": 1, "old": 2}),
    # An unhealthy old pod may go even when availability is at its minimum: removing it costs none.
    (3, 1, 0, SetView("new", 1, 1), [SetView("old", 3, 2)], {"new": 1, "old": 2}),
    # An unavailable new pod holds the rollout: nothing old may go.
    (3, 1, 0, SetView("new", 1, 0), [SetView("old", 3, 3)], {"new": 1, "old": 3}),
    # maxUnavailable lets old pods go before new ones are ready.
    (4, 0, 2, SetView("new", 0, 0), [SetView("old", 4, 4)], {"new": 0, "old": 2}),
    # Scaling down with no rollout in progress.
    (1, 1, 0, SetView("new", 3, 3), [SetView("old", 0, 0)], {"new": 1, "old": 0}),
])
def test_a_rolling_update_moves_within_surge_and_unavailability(desired, surge, unavailable, new, olds, expected):
    assert plan_rolling(desired, surge, unavailable, new, olds) == expected


@pytest.mark.parametrize("olds, old_pods_left, expected", [
    ([SetView("old", 2, 2)], 2, {"old": 0, "new": 0}),   # first take every old pod down
    ([SetView("old", 0, 0)], 1, {"old": 0, "new": 0}),   # ...and wait until they are gone
    ([SetView("old", 0, 0)], 0, {"old": 0, "new": 3}),   # then bring the new ones up
])
def test_a_recreate_rollout_stops_all_old_pods_before_starting_new_ones(olds, old_pods_left, expected):
    assert plan_recreate(3, SetView("new", 0, 0), olds, old_pods_left) == expected


def running(name: str, ready: bool = True) -> dict:
    conditions = [{"type": "Ready", "status": "True" if ready else "False",
                   "lastTransitionTime": "2026-01-01T11:00:00Z"}]
    return {"metadata": {"name": name}, "status": {"phase": "Running", "conditions": conditions}}


def deployment(replicas: int = 2, generation: int = 3) -> dict:
    return {"metadata": {"name": "web", "generation": generation},
            "spec": {"replicas": replicas, "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}},
            "status": {}}


def test_a_rolled_out_deployment_is_available_and_has_progressed():
    status = deployment_status(deployment(), "web-new", False, {"web-new": [running("a"), running("b")]},
                               {"web-new": 2}, NOW)
    assert (status["replicas"], status["updatedReplicas"], status["readyReplicas"], status["availableReplicas"],
            status["observedGeneration"]) == (2, 2, 2, 2, 3)
    assert [(c["type"], c["status"], c["reason"]) for c in status["conditions"]] == [
        ("Available", "True", "MinimumReplicasAvailable"), ("Progressing", "True", "NewReplicaSetAvailable")]


def test_a_deployment_mid_rollout_is_progressing_and_counts_old_pods_as_not_updated():
    pods = {"web-new": [running("n", ready=False)], "web-old": [running("a"), running("b")]}
    status = deployment_status(deployment(), "web-new", False, pods, {"web-new": 1, "web-old": 2}, NOW)
    assert (status["replicas"], status["updatedReplicas"], status["availableReplicas"]) == (3, 1, 2)
    assert [(c["type"], c["reason"]) for c in status["conditions"]] == [
        ("Available", "MinimumReplicasAvailable"), ("Progressing", "ReplicaSetUpdated")]


def test_a_deployment_without_enough_ready_pods_is_not_available():
    status = deployment_status(deployment(), "web-new", True, {"web-new": [running("a", ready=False)]},
                               {"web-new": 2}, NOW)
    assert [(c["type"], c["status"], c["reason"]) for c in status["conditions"]] == [
        ("Available", "False", "MinimumReplicasUnavailable"), ("Progressing", "True", "NewReplicaSetCreated")]


def test_a_rollout_without_progress_past_its_deadline_reports_progress_deadline_exceeded():
    stuck = deployment()
    stuck["spec"]["progressDeadlineSeconds"] = 600
    stuck["status"] = {"replicas": 1, "updatedReplicas": 1, "readyReplicas": 0, "availableReplicas": 0,
                       "conditions": [{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                                       "message": 'ReplicaSet "web-new" is progressing.',
                                       "lastUpdateTime": "2026-01-01T11:48:00Z",
                                       "lastTransitionTime": "2026-01-01T11:48:00Z"}]}
    status = deployment_status(stuck, "web-new", False, {"web-new": [running("a", ready=False)]},
                               {"web-new": 2}, NOW)
    progressing = status["conditions"][1]
    assert (progressing["status"], progressing["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert progressing["message"] == 'ReplicaSet "web-new" has timed out progressing.'


def test_the_template_hash_is_stable_and_changes_with_the_template():
    template = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}
    same = {"spec": {"containers": [{"image": "i:1", "name": "c"}]}, "metadata": {"labels": {"app": "x"}}}
    changed = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "i:2"}]}}
    assert template_hash(template) == template_hash(same)
    assert template_hash(template) != template_hash(changed)
    assert set(template_hash(template)) <= set("bcdfghjklmnpqrstvwxz2456789")


def test_a_replicaset_removes_not_ready_pods_before_ready_ones():
    rs = {"metadata": {"name": "rs", "generation": 2}, "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}}}}
    pods = [
        {"metadata": {"name": "ready", "labels": {"a": "b"}, "creationTimestamp": "2026-01-01T10:00:00Z"},
         "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}},
        {"metadata": {"name": "starting", "labels": {"a": "b"}, "creationTimestamp": "2026-01-01T09:00:00Z"},
         "status": {"phase": "Running"}},
    ]
    plan = plan_replicaset(rs, pods, NOW)
    assert plan.delete == ["starting"] and plan.create == 0
    assert plan.status == {"replicas": 2, "fullyLabeledReplicas": 2, "readyReplicas": 1,
                           "availableReplicas": 1, "observedGeneration": 2}


def test_a_replicaset_replaces_finished_pods():
    rs = {"metadata": {"name": "rs"}, "spec": {"replicas": 2}}
    pods = [{"metadata": {"name": "done"}, "status": {"phase": "Failed"}},
            {"metadata": {"name": "up"}, "status": {"phase": "Running"}}]
    plan = plan_replicaset(rs, pods, NOW)
    assert plan.delete == ["done"] and plan.create == 1


# ---- HorizontalPodAutoscaler ------------------------------------------------------------------

@pytest.mark.parametrize("text, value", [("250m", 0.25), ("2", 2.0), ("1.5", 1.5), ("512Mi", 512 * 2 ** 20),
                                         ("1G", 1e9), ("100k", 1e5)])
def test_quantities_parse_as_kubernetes_writes_them(text, value):
    assert parse_quantity(text) == pytest.approx(value)


@pytest.mark.parametrize("current, ratio, desired", [
    (2, 1.05, 2),   # within the 10 % tolerance: no change
    (2, 0.95, 2),
    (2, 1.5, 3),    # ceil(2 * 1.5)
    (3, 0.2, 1),    # ceil(0.6)
    (4, 0.0, 0),    # idle: the bounds decide
])
def test_desired_replicas_follow_the_usage_ratio_outside_the_tolerance(current, ratio, desired):
    assert desired_replicas(current, ratio) == desired


@pytest.mark.parametrize("current, wanted, bounds, result", [
    (2, 3, (1, 5), (3, "DesiredWithinRange")),
    (2, 9, (1, 5), (5, "TooManyReplicas")),
    (2, 0, (1, 5), (1, "TooFewReplicas")),
    (1, 20, (1, 50), (5, "ScaleUpLimit")),    # at most max(2x, +4) per step
    (10, 30, (1, 50), (20, "ScaleUpLimit")),
])
def test_the_recommendation_is_clamped_and_rate_limited(current, wanted, bounds, result):
    replicas, reason, _ = clamp_and_limit(current, wanted, *bounds)
    assert (replicas, reason) == result


def test_scale_down_waits_for_the_highest_recommendation_in_the_window():
    history = [(100.0, 5), (200.0, 4), (290.0, 3)]
    assert stabilized(history, now=300.0, window=150, wanted=2) == 4
    assert stabilized(history, now=300.0, window=5, wanted=2) == 2


def test_metric_targets_read_utilization_and_average_value_and_default_to_cpu_80():
    hpa = {"spec": {"metrics": [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}},
        {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1Gi"}}},
        {"type": "Pods", "pods": {"metric": {"name": "requests"}}},
    ]}}
    assert metric_targets(hpa) == [MetricTarget("cpu", 60, None), MetricTarget("memory", None, 2 ** 30)]
    assert metric_targets({"spec": {}}) == [MetricTarget("cpu", 80, None)]
