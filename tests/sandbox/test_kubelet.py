"""The node against the real API server: Jobs, Deployments and pods run as local processes."""

from __future__ import annotations

import sys
import uuid

import psutil
import pytest

from kadence.sandbox.kubelet.podspec import PORT_ANNOTATION

from .conftest import PROGRAMS, process_alive, processes_with, wait_for

pytestmark = pytest.mark.sandbox


def job_body(name: str, command: list[str], backoff_limit: int = 6, **spec) -> dict:
    return {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {"backoffLimit": backoff_limit, **spec, "template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "kadence:test", "command": command}]}}},
    }


def deployment_body(name: str, replicas: int, command: list[str], **container) -> dict:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [
                     {"name": "main", "image": "kadence:test", "command": command, **container}]}}},
    }


def condition(obj: dict | None, kind: str) -> dict | None:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c["type"] == kind and c["status"] == "True":
            return c
    return None


def pid_of(pod: dict) -> int | None:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if "running" in (status.get("state") or {}) and status.get("containerID", "").startswith("sandbox://"):
            return int(status["containerID"].removeprefix("sandbox://"))
    return None


def server_command(marker: str) -> list[str]:
    return [sys.executable, str(PROGRAMS / "pod_server.py"), f"--marker={marker}"]


def test_a_failing_job_is_retried_up_to_its_backoff_limit_and_fails_with_its_logs_kept(kube, kubectl,
                                                                                        sandbox_namespace):
    ns = sandbox_namespace
    kube.create("batch/v1", "jobs", ns, job_body("fails", ["sh", "-c", "echo attempt $HOSTNAME; exit 3"],
                                                 backoff_limit=2))
    job = wait_for(lambda: condition(kube.get("batch/v1", "jobs", ns, "fails"), "Failed") and
                   kube.get("batch/v1", "jobs", ns, "fails"), message="the Job to fail")
    assert condition(job, "Failed")["reason"] == "BackoffLimitExceeded"
    assert condition(job, "FailureTarget")["reason"] == "BackoffLimitExceeded"
    assert job["status"]["failed"] == 3 and job["status"]["active"] == 0
    pods = kube.pods_of(ns, "job-name=fails")
    assert len(pods) == 3, "one pod per attempt: the first and two retries"
    for pod in pods:
        assert pod["status"]["phase"] == "Failed"
        assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3
        logs = kubectl("logs", "-n", ns, pod["metadata"]["name"]).stdout
        assert logs.strip() == f"attempt {pod['metadata']['name']}"


def test_a_pod_failure_policy_fails_the_job_on_its_first_matching_exit(kube, sandbox_namespace):
    ns = sandbox_namespace
    body = job_body("invalid", ["sh", "-c", "exit 3"], backoff_limit=5, podFailurePolicy={"rules": [
        {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [3]}}]})
    kube.create("batch/v1", "jobs", ns, body)
    job = wait_for(lambda: condition(j := kube.get("batch/v1", "jobs", ns, "invalid"), "Failed") and j,
                   message="the Job to fail")
    assert condition(job, "Failed")["reason"] == "PodFailurePolicy", job["status"]
    assert "failed with exit code 3 matching FailJob rule at index 0" in condition(job, "Failed")["message"]
    pods = kube.pods_of(ns, "job-name=invalid")
    assert len(pods) == 1, [(p["metadata"]["name"], p["status"]) for p in pods]


def test_a_succeeding_job_completes_and_kubectl_logs_shows_its_resolved_environment(kube, kubectl,
                                                                                     sandbox_namespace):
    ns = sandbox_namespace
    kube.create("v1", "configmaps", ns, {"metadata": {"name": "settings"}, "data": {"greeting": "hello"}})
    kube.create("v1", "secrets", ns, {"metadata": {"name": "creds"}, "data": {"token": "czNjcjN0"}})
    body = job_body("says", ["sh", "-c", "echo $GREETING $TOKEN $POD_NAMESPACE port=$PORT; pwd"])
    body["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "greeting"}}},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "PORT", "value": "8080"},  # the container port on a cluster; the pod's own port here
    ]
    kube.create("batch/v1", "jobs", ns, body)
    job = wait_for(lambda: condition(kube.get("batch/v1", "jobs", ns, "says"), "Complete") and
                   kube.get("batch/v1", "jobs", ns, "says"), message="the Job to complete")
    assert job["status"]["succeeded"] == 1 and job["status"].get("completionTime")
    assert condition(job, "SuccessCriteriaMet")
    [pod] = kube.pods_of(ns, "job-name=says")
    port = pod["metadata"]["annotations"][PORT_ANNOTATION]
    first_line, workdir = kubectl("logs", "-n", ns, "job/says").stdout.splitlines()
    assert first_line == f"hello s3cr3t {ns} port={port}"
    assert workdir.endswith(f"/pods/{ns}/{pod['metadata']['name']}"), "a per-pod scratch working directory"


def test_a_deployment_whose_pod_crashes_is_restarted_with_its_previous_logs_kept(kube, kubectl,
                                                                                 sandbox_namespace):
    ns = sandbox_namespace
    kube.create("apps/v1", "deployments", ns,
                deployment_body("crashy", 1, ["sh", "-c", "echo run; sleep 0.2; exit 1"]))

    def restarted_twice():
        pods = kube.pods_of(ns, "app=crashy")
        if pods and pods[0]["status"].get("containerStatuses") and \
                pods[0]["status"]["containerStatuses"][0]["restartCount"] >= 2:
            return pods[0]
    pod = wait_for(restarted_twice, message="two restarts")
    status = pod["status"]["containerStatuses"][0]
    assert status["lastState"]["terminated"]["exitCode"] == 1
    assert pod["status"]["phase"] == "Running", "a crash-looping pod stays Running, as on a cluster"
    assert kubectl("logs", "-n", ns, pod["metadata"]["name"], "--previous").stdout.strip() == "run"
    # Repeats are counted on one Event, as the kubelet's event correlator does.
    backoffs = wait_for(lambda: [e for e in kube.list("v1", "events", ns) if e["reason"] == "BackOff"
                                 and e["involvedObject"]["name"] == pod["metadata"]["name"] and e["count"] >= 2],
                        message="a BackOff event counted twice")
    assert len([e for e in kube.list("v1", "events", ns) if e["reason"] == "BackOff"]) == 1, backoffs


def test_scaling_a_deployment_changes_how_many_processes_run(kube, sandbox_namespace):
    ns, marker = sandbox_namespace, f"scale-{uuid.uuid4().hex[:8]}"
    kube.create("apps/v1", "deployments", ns, deployment_body(
        "scaled", 1, server_command(marker), readinessProbe={"httpGet": {"path": "/ready", "port": 8080},
                                                             "periodSeconds": 1}))
    wait_for(lambda: len(processes_with(marker)) == 1, message="one process")
    kube.patch("apps/v1", "deployments", ns, "scaled", {"spec": {"replicas": 3}})
    wait_for(lambda: len(processes_with(marker)) == 3, message="three processes")
    deployment = wait_for(lambda: (d := kube.get("apps/v1", "deployments", ns, "scaled"))["status"].get(
        "readyReplicas") == 3 and d, message="three ready replicas")
    assert deployment["status"]["availableReplicas"] == 3
    kube.patch("apps/v1", "deployments", ns, "scaled", {"spec": {"replicas": 1}})
    wait_for(lambda: len(processes_with(marker)) == 1, message="back to one process")
    wait_for(lambda: len(kube.pods_of(ns, "app=scaled")) == 1, message="back to one pod")


def test_a_template_change_rolls_every_pod_onto_a_new_replicaset(kube, kubectl, sandbox_namespace):
    ns, marker = sandbox_namespace, f"roll-{uuid.uuid4().hex[:8]}"
    kube.create("apps/v1", "deployments", ns, deployment_body("rolled", 2, server_command(marker)))
    kubectl("rollout", "status", "-n", ns, "deployment/rolled", "--timeout=60s")
    before = {p["metadata"]["name"] for p in kube.pods_of(ns, "app=rolled")}
    kube.patch("apps/v1", "deployments", ns, "rolled", {"spec": {"template": {"spec": {"containers": [
        {"name": "main", "image": "kadence:test", "command": server_command(marker),
         "env": [{"name": "COLOR", "value": "blue"}]}]}}}})
    kubectl("rollout", "status", "-n", ns, "deployment/rolled", "--timeout=60s")
    wait_for(lambda: len(kube.pods_of(ns, "app=rolled")) == 2, message="old pods gone")
    after = kube.pods_of(ns, "app=rolled")
    assert not before & {p["metadata"]["name"] for p in after}
    assert all(p["spec"]["containers"][0].get("env") == [{"name": "COLOR", "value": "blue"}] for p in after)
    sets = kube.list("apps/v1", "replicasets", ns)
    assert sorted(rs["spec"]["replicas"] for rs in sets) == [0, 2]
    deployment = kube.get("apps/v1", "deployments", ns, "rolled")
    assert deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert deployment["status"]["updatedReplicas"] == 2
    assert deployment["status"]["observedGeneration"] == deployment["metadata"]["generation"]
    assert wait_for(lambda: len(processes_with(marker)) == 2, message="two processes")


def test_deleting_a_deployment_stops_its_processes(kube, sandbox_namespace):
    ns, marker = sandbox_namespace, f"del-{uuid.uuid4().hex[:8]}"
    kube.create("apps/v1", "deployments", ns, deployment_body("doomed", 2, server_command(marker)))
    pods = wait_for(lambda: (ps := kube.pods_of(ns, "app=doomed")) and len(ps) == 2 and all(map(pid_of, ps))
                    and ps, message="two running pods")
    pids = [pid_of(p) for p in pods]
    assert all(process_alive(pid) for pid in pids)
    kube.delete("apps/v1", "deployments", ns, "doomed", propagationPolicy="Background")
    wait_for(lambda: not any(process_alive(pid) for pid in pids), message="the processes to stop")
    wait_for(lambda: not kube.pods_of(ns, "app=doomed"), message="the pods to be removed")
    assert not processes_with(marker)


def test_a_deleted_pod_gets_sigterm_and_time_to_clean_up(kube, sandbox_namespace, sandbox_apiserver, tmp_path):
    ns = sandbox_namespace
    flag = tmp_path / "terminated"
    script = f"trap 'echo bye > {flag}; exit 0' TERM; echo up; while true; do sleep 0.1; done"
    kube.create("v1", "pods", ns, {"metadata": {"name": "graceful"}, "spec": {
        "terminationGracePeriodSeconds": 20,
        "containers": [{"name": "main", "image": "kadence:test", "command": ["sh", "-c", script]}]}})
    pod = wait_for(lambda: pid_of(p := kube.get("v1", "pods", ns, "graceful") or {}) and p, message="running")
    assert pod["spec"]["nodeName"] == "kadence-sandbox"
    pid = pid_of(pod)
    logs = sandbox_apiserver.state_dir / "logs" / ns / "graceful"
    assert (logs / "main.log").exists()
    kube.delete("v1", "pods", ns, "graceful")
    wait_for(lambda: kube.get("v1", "pods", ns, "graceful") is None, message="the pod to be removed")
    assert flag.read_text().strip() == "bye"
    assert not process_alive(pid)
    wait_for(lambda: not logs.exists(), message="the removed pod's logs to be dropped, as a kubelet does")


def test_a_failing_readiness_probe_keeps_the_pod_unready(kube, sandbox_namespace, tmp_path):
    ns = sandbox_namespace
    flag = tmp_path / "not-ready"
    flag.write_text("")
    kube.create("v1", "pods", ns, {"metadata": {"name": "probed"}, "spec": {"containers": [{
        "name": "main", "image": "kadence:test", "command": server_command("probe"),
        "env": [{"name": "NOT_READY_FLAG", "value": str(flag)}],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 1}}]}})

    def ready(pod):
        return (pod.get("status") or {}).get("containerStatuses", [{}])[0].get("ready")
    wait_for(lambda: pid_of(kube.get("v1", "pods", ns, "probed")), message="running")
    wait_for(lambda: [e for e in kube.list("v1", "events", ns)
                      if e["reason"] == "Unhealthy" and "statuscode: 503" in e["message"]],
             message="a readiness probe answered 503")
    assert not ready(kube.get("v1", "pods", ns, "probed"))
    flag.unlink()
    pod = wait_for(lambda: ready(p := kube.get("v1", "pods", ns, "probed")) and p, message="ready")
    assert condition(pod, "Ready") and condition(pod, "ContainersReady")
    assert psutil.pid_exists(pid_of(pod))


def test_a_job_past_its_active_deadline_is_stopped_and_failed(kube, sandbox_namespace):
    ns, marker = sandbox_namespace, f"deadline-{uuid.uuid4().hex[:8]}"
    kube.create("batch/v1", "jobs", ns, job_body("slow", ["sh", "-c", f"sleep 300 # {marker}"],
                                                 activeDeadlineSeconds=2))
    wait_for(lambda: processes_with(marker), message="the Job's process")
    job = wait_for(lambda: condition(j := kube.get("batch/v1", "jobs", ns, "slow"), "Failed") and j,
                   message="the Job to fail")
    assert condition(job, "Failed")["reason"] == "DeadlineExceeded"
    wait_for(lambda: not processes_with(marker), message="the process to be stopped")


def test_a_failing_liveness_probe_restarts_the_container(kube, sandbox_namespace, tmp_path):
    ns = sandbox_namespace
    flag = tmp_path / "sick"
    flag.write_text("")
    kube.create("v1", "pods", ns, {"metadata": {"name": "sick"}, "spec": {
        "terminationGracePeriodSeconds": 2, "containers": [{
            "name": "main", "image": "kadence:test", "command": server_command("live"),
            "env": [{"name": "NOT_READY_FLAG", "value": str(flag)}],
            "livenessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 1,
                              "failureThreshold": 2}}]}})

    def restarts():
        statuses = ((kube.get("v1", "pods", ns, "sick") or {}).get("status") or {}).get("containerStatuses")
        return statuses[0]["restartCount"] if statuses else 0
    wait_for(lambda: restarts() >= 1, message="a restart after failed liveness probes")
    flag.unlink()
    reasons = {e["reason"] for e in kube.list("v1", "events", ns)}
    assert {"Unhealthy", "Killing"} <= reasons


def test_a_cpu_autoscaler_scales_a_busy_deployment_up_and_an_idle_one_down(kube, sandbox_namespace, tmp_path):
    ns = sandbox_namespace
    busy = tmp_path / "busy"
    busy.write_text("")
    body = deployment_body("burner", 1, ["sh", "-c", f"while [ -e {busy} ]; do :; done; exec sleep 3600"],
                           resources={"requests": {"cpu": "100m"}})
    kube.create("apps/v1", "deployments", ns, body)
    kube.create("autoscaling/v2", "horizontalpodautoscalers", ns, {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "burner"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "burner"},
                 "minReplicas": 1, "maxReplicas": 3,
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                     "type": "Utilization", "averageUtilization": 50}}}],
                 "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}}})
    # A busy loop uses far more than 50 % of 100m: the autoscaler goes to its maximum.
    wait_for(lambda: kube.get("apps/v1", "deployments", ns, "burner")["spec"]["replicas"] == 3, timeout=90,
             message="a scale-up to 3")
    # Right after the scale-up the new pods have no CPU sample yet, so currentMetrics may be empty a moment.
    hpa = wait_for(lambda: (h := kube.get("autoscaling/v2", "horizontalpodautoscalers", ns, "burner"))
                   and h["status"].get("currentMetrics") and h, timeout=60, message="measured current metrics")
    assert hpa["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"] > 50
    assert {c["type"]: c["reason"] for c in hpa["status"]["conditions"]}["ScalingLimited"] in (
        "TooManyReplicas", "DesiredWithinRange", "ScaleUpLimit")
    busy.unlink()
    wait_for(lambda: kube.get("apps/v1", "deployments", ns, "burner")["spec"]["replicas"] == 1, timeout=90,
             message="a scale-down to 1 once idle")
    wait_for(lambda: len(kube.pods_of(ns, "app=burner")) == 1, message="one pod left")


def test_a_pod_bound_to_another_node_is_left_to_that_nodes_kubelet(kube, sandbox_namespace):
    ns, marker = sandbox_namespace, f"elsewhere-{uuid.uuid4().hex[:8]}"
    pod = {"metadata": {"name": "elsewhere"},
           "spec": {"nodeName": "elsewhere", "containers": [{"name": "c", "image": "i", "command": server_command(marker)}]}}
    kube.create("v1", "pods", ns, pod)
    kube.create("v1", "pods", ns, {"metadata": {"name": "here"},
                                   "spec": {"containers": [{"name": "c", "image": "i", "command": server_command(marker)}]}})
    # By the time this node runs the pod created after it, it has seen the other one too.
    wait_for(lambda: pid_of(kube.get("v1", "pods", ns, "here")), message="the pod bound to this node running")
    other = kube.get("v1", "pods", ns, "elsewhere")
    assert other["spec"]["nodeName"] == "elsewhere"
    assert not (other.get("status") or {}).get("containerStatuses"), "no status from this node's kubelet"
    assert len(processes_with(marker)) == 1, "only the pod bound here runs"
    kube.delete("v1", "pods", ns, "here")
