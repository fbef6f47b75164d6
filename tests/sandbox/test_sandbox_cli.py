"""`kadence sandbox up|status|down|kubeconfig` as a user runs them, in its own state directory."""

from __future__ import annotations

import base64
import io
import os
import signal
import subprocess
import sys
import uuid

import httpx
import psutil
import pytest
import yaml
from minio import Minio

from kadence.sandbox import supervisor
from kadence.sandbox.kubeconfig import client_options

from .conftest import PROGRAMS, process_alive, processes_with, wait_for

pytestmark = pytest.mark.sandbox


def sandbox(state_dir, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "kadence", "sandbox", *args, "--state-dir", str(state_dir)],
                            capture_output=True, text=True, timeout=180)
    if check and result.returncode != 0:
        raise AssertionError(f"kadence sandbox {' '.join(args)} -> {result.returncode}\n{result.stdout}\n"
                             f"{result.stderr}")
    return result


def everything_started(state_dir) -> tuple[set[int], set[int]]:
    """Pids of the components and of all their descendants (pods included), and their ports."""
    pids, ports = set(), set()
    for record in supervisor.read_records(state_dir):
        proc = record.process()
        assert proc is not None, f"{record.name} is not running"
        pids.add(proc.pid)
        pids.update(child.pid for child in proc.children(recursive=True))
        ports.update([record.port] if record.port else [])
        ports.update(record.extra.get("ports", []))
    return pids, ports


def start_workload(server: str, marker: str, options: dict) -> int:
    """A 2-replica Deployment behind a Service; returns the Service's local proxy port."""
    client = httpx.Client(base_url=server, timeout=10, **options)
    command = [sys.executable, str(PROGRAMS / "pod_server.py"), f"--marker={marker}"]
    client.post("/apis/apps/v1/namespaces/default/deployments", json={
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "kadence:test", "command": command}]}}}},
    ).raise_for_status()
    client.post("/api/v1/namespaces/default/services", json={
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}).raise_for_status()
    return proxy_port(server, options)


def proxy_port(server: str, options: dict) -> int:
    def annotated():
        svc = httpx.get(server + "/api/v1/namespaces/default/services/web", timeout=5, **options).json()
        return (svc["metadata"].get("annotations") or {}).get("sandbox.kadence.dev/proxy-port")
    return int(wait_for(annotated, message="the Service's proxy port"))


def answer(port: int) -> str:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text
    except httpx.TransportError:
        return ""  # no ready pod yet: the proxy refuses


@pytest.fixture
def state_dir(tmp_path):
    """A state directory whose sandbox is stopped after the test, even when the test fails."""
    directory = tmp_path / "sandbox"
    yield directory
    if any(r.alive() for r in supervisor.read_records(directory)):
        from kadence.sandbox.cli import stop_all
        stop_all(directory)


def storage_client(server: str, options: dict) -> dict:
    """A minio client built only from the `kadence-storage` Secret, as a workload would build it."""
    secret = httpx.get(server + "/api/v1/namespaces/kadence-system/secrets/kadence-storage", timeout=5,
                       **options).json()
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    client = Minio(data["endpoint"], access_key=data["accessKey"], secret_key=data["secretKey"],
                   secure=data["secure"] == "true")
    return {"client": client, "bucket": data["bucket"]}


def assert_all_gone(pids: set[int], ports: set[int]) -> None:
    left = [pid for pid in pids if process_alive(pid)]
    assert not left, f"processes left behind: {[psutil.Process(p).cmdline() for p in left if process_alive(p)]}"
    busy = [port for port in ports if not supervisor.port_is_free(port)]
    assert not busy, f"ports still in use: {busy}"


def test_up_detached_status_down_and_up_again_keeps_state_and_leaves_nothing_behind(state_dir):
    marker = f"cli-{uuid.uuid4().hex[:8]}"
    up = sandbox(state_dir, "up", "--detach", "--port", "0")
    assert f"export KUBECONFIG={state_dir / 'kubeconfig'}" in up.stdout
    config = yaml.safe_load(sandbox(state_dir, "kubeconfig").stdout)
    assert config["current-context"] == "kadence-sandbox"
    server = config["clusters"][0]["cluster"]["server"]
    options = client_options(state_dir)
    assert sandbox(state_dir, "kubeconfig", "--path").stdout.strip() == str(state_dir / "kubeconfig")

    again = sandbox(state_dir, "up", "--detach", "--port", "0", check=False)
    assert again.returncode == 1 and "already running" in again.stderr

    port = start_workload(server, marker, options)
    wait_for(lambda: answer(port).startswith("web-"),
             message="the Service to answer")
    status = sandbox(state_dir, "status").stdout
    for name in ("s3", "apiserver", "node", "operator"):
        assert any(line.split()[0] == name and line.split()[-1] == "running" for line in status.splitlines()
                   if line.strip()), f"{name} not running:\n{status}"
    assert any(line.split()[:3] == ["default", "web", str(port)] for line in status.splitlines()), status

    storage = storage_client(server, options)
    storage["client"].put_object(storage["bucket"], "kept.txt", io.BytesIO(b"kept"), 4)

    pids, ports = everything_started(state_dir)
    assert len(processes_with(marker)) == 2
    # Even a node killed outright leaves its pods' processes known to `down`.
    node = next(r for r in supervisor.read_records(state_dir) if r.name == "node")
    os.kill(node.pid, signal.SIGKILL)
    wait_for(lambda: not process_alive(node.pid), message="the node to die")
    assert len(processes_with(marker)) == 2, "pods run in their own sessions and outlive the node"
    sandbox(state_dir, "down")
    assert_all_gone(pids, ports | {port})
    assert not processes_with(marker)
    assert "not started" in sandbox(state_dir, "status", check=False).stdout

    # A second life: the Deployment comes back from the snapshot, its Service on the same port.
    sandbox(state_dir, "up", "--detach", "--port", "0", "--no-operator")
    server = yaml.safe_load(sandbox(state_dir, "kubeconfig").stdout)["clusters"][0]["cluster"]["server"]
    wait_for(lambda: len(processes_with(marker)) == 2, message="the restored Deployment's pods")
    assert proxy_port(server, options) == port
    storage = storage_client(server, options)
    assert storage["client"].get_object(storage["bucket"], "kept.txt").read() == b"kept"
    storage["client"].put_object(storage["bucket"], "after.txt", io.BytesIO(b"after"), 5)
    assert storage["client"].get_object(storage["bucket"], "kept.txt").read() == b"kept", \
        "a write after the restart must not reuse the old object's file id"
    wait_for(lambda: answer(port).startswith("web-"),
             message="the Service to answer again")
    pids, ports = everything_started(state_dir)
    sandbox(state_dir, "down")
    assert_all_gone(pids, ports | {port})


def test_up_in_the_foreground_restarts_a_component_that_dies_and_stops_everything_on_ctrl_c(state_dir):
    up = subprocess.Popen([sys.executable, "-m", "kadence", "sandbox", "up", "--port", "0", "--no-operator",
                           "--state-dir", str(state_dir)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    try:
        for line in up.stdout:
            if "press Ctrl-C" in line:
                break
        else:
            raise AssertionError(f"`up` ended early with {up.wait()}")
        assert {r.name for r in supervisor.read_records(state_dir)} == {"s3", "apiserver", "node"}
        # The foreground `up` supervises: a component that dies is started again.
        node = next(r for r in supervisor.read_records(state_dir) if r.name == "node")
        os.kill(node.pid, signal.SIGKILL)
        for line in up.stdout:
            if "restarting node" in line:
                break
        else:
            raise AssertionError(f"`up` ended early with {up.wait()}")
        restarted = wait_for(lambda: next((r for r in supervisor.read_records(state_dir)
                                           if r.name == "node" and r.pid != node.pid and r.alive()), None),
                             message="the node to be restarted")
        from kadence.sandbox.kubelet.node import ready_marker
        wait_for(lambda: ready_marker(state_dir).exists() and ready_marker(state_dir).read_text() == str(restarted.pid),
                 message="the restarted node to be ready")
        pids, ports = everything_started(state_dir)
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=120) == 0
    finally:
        if up.poll() is None:
            os.kill(up.pid, signal.SIGKILL)
    assert_all_gone(pids, ports)
    assert supervisor.read_records(state_dir) == []


def test_down_when_nothing_runs_says_so(tmp_path):
    result = sandbox(tmp_path, "down")
    assert "not running" in result.stdout


def test_a_taken_port_is_refused_with_a_clear_message(tmp_path):
    import socket
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = sandbox(tmp_path, "up", "--detach", "--port", str(taken.getsockname()[1]), check=False)
    assert result.returncode == 1
    assert "already in use" in result.stderr
    assert supervisor.read_records(tmp_path) == []


def test_the_sandbox_runs_for_a_with_block_and_is_gone_after_it(tmp_path):
    from kadence.sandbox.cli import running_sandbox
    with running_sandbox(tmp_path / "sandbox", with_operator=False, backoff=(0.2, 2)) as summary:
        assert httpx.get(summary["server"] + "/version", timeout=5,
                         **client_options(tmp_path / "sandbox")).status_code == 200
        assert summary["s3_env"]["KADENCE_S3_ENDPOINT"] == summary["s3"]
        pids, ports = everything_started(tmp_path / "sandbox")
    assert_all_gone(pids, ports)
