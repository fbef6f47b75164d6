"""`kadence sandbox up --ray` as a user runs it: a real Ray head, supervised and capped, that a
driver can submit to and the operator is pointed at; `down` stops it with everything else."""

from __future__ import annotations

import subprocess
import sys

import psutil
import pytest

from kadence.sandbox import ray as sandbox_ray
from kadence.sandbox import supervisor

from .test_sandbox_cli import everything_started, sandbox

pytestmark = [pytest.mark.sandbox, pytest.mark.timeout(600)]

DRIVER = """
import sys, ray
ray.init(address=sys.argv[1], log_to_driver=False)
print(int(ray.cluster_resources()["CPU"]), ray.get(ray.remote(lambda x: x * 2).remote(21)))
"""


@pytest.fixture(scope="module")
def up_with_ray(tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("ray-cli")
    started = sandbox(state_dir, "up", "--detach", "--port", "0", "--no-operator", "--ray")
    try:
        head = next(r for r in supervisor.read_records(state_dir) if r.name == sandbox_ray.NAME)
        yield state_dir, started, head, everything_started(state_dir)[0]
    finally:
        sandbox(state_dir, "down", check=False)


def test_up_with_ray_prints_the_head_address_and_status_lists_it(up_with_ray):
    state_dir, started, head, _ = up_with_ray
    assert f"Ray:         {sandbox_ray.address(head.port)}" in started.stdout
    line = next(line for line in sandbox(state_dir, "status").stdout.splitlines() if line.startswith("ray "))
    assert line.split() == ["ray", str(head.pid), str(head.port), "running"]


def test_a_driver_runs_tasks_on_the_capped_head(up_with_ray):
    _, _, head, _ = up_with_ray
    result = subprocess.run([sys.executable, "-c", DRIVER, sandbox_ray.address(head.port)], capture_output=True,
                            text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-2:] == [str(sandbox_ray.NUM_CPUS), "42"]


def test_the_operator_would_get_the_heads_address(up_with_ray):
    from kadence.sandbox.cli import ray_env

    state_dir, _, head, _ = up_with_ray
    assert ray_env(state_dir) == {"KADENCE_RAY_ADDRESS": sandbox_ray.address(head.port)}


def test_down_stops_the_head_and_every_process_it_started(up_with_ray):
    state_dir, _, head, pids = up_with_ray
    ray_pids = {head.pid} | {p.pid for p in psutil.Process(head.pid).children(recursive=True)}
    assert len(ray_pids) > 2  # the GCS and the raylet run under `ray start --block`
    sandbox(state_dir, "down")
    assert not [pid for pid in pids | ray_pids if psutil.pid_exists(pid)
                and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
