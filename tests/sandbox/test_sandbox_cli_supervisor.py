"""Process records: `down` stops only what the sandbox started, never a recycled pid."""

from __future__ import annotations

import json
import subprocess
import sys

import psutil
import pytest

from kadence.sandbox import supervisor
from kadence.sandbox.cli import stop_all
from kadence.sandbox.kubelet.runner import kill_registered_processes

from .conftest import process_alive


@pytest.fixture
def sleeper():
    """A process the sandbox did not start (as far as any record knows)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


def test_a_record_matches_its_process_only_with_the_same_start_time(tmp_path, sleeper):
    started = psutil.Process(sleeper.pid).create_time()
    ours = supervisor.ComponentRecord("node", sleeper.pid, started, ["x"], "log")
    recycled = supervisor.ComponentRecord("node", sleeper.pid, started - 100, ["x"], "log")
    assert ours.alive() and ours.process().pid == sleeper.pid
    assert not recycled.alive()


def test_down_leaves_alone_a_process_that_reuses_a_recorded_pid(tmp_path, sleeper):
    started = psutil.Process(sleeper.pid).create_time()
    supervisor.write_record(tmp_path, supervisor.ComponentRecord("apiserver", sleeper.pid, started - 100, ["x"], "l"))
    assert stop_all(tmp_path) == []
    assert process_alive(sleeper.pid)
    assert supervisor.read_records(tmp_path) == []


def test_down_stops_a_recorded_component_and_its_children(tmp_path):
    record, proc = supervisor.start_component(
        tmp_path, "apiserver",
        [sys.executable, "-c", "import subprocess, sys, time; "
                               "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); "
                               "print('up', flush=True); time.sleep(120)"])
    supervisor.wait_until(lambda: "up" in supervisor.tail(record.log), timeout=30, record=record, what="child")
    family = [record.pid] + [c.pid for c in psutil.Process(record.pid).children(recursive=True)]
    assert len(family) == 2
    assert stop_all(tmp_path) == []
    proc.wait(timeout=10)
    assert not any(process_alive(pid) for pid in family)


def test_pod_processes_left_by_a_killed_kubelet_are_killed_but_not_recycled_pids(tmp_path, sleeper):
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    registry = tmp_path / "kubelet" / "processes.json"
    registry.parent.mkdir(parents=True)
    registry.write_text(json.dumps({
        str(orphan.pid): psutil.Process(orphan.pid).create_time(),
        str(sleeper.pid): psutil.Process(sleeper.pid).create_time() - 100,
    }))
    assert kill_registered_processes(tmp_path) == 1
    assert orphan.wait(timeout=10) == -9
    assert process_alive(sleeper.pid)


def test_waiting_for_a_component_fails_early_with_its_log_when_it_exits(tmp_path):
    record, _ = supervisor.start_component(tmp_path, "broken", [sys.executable, "-c",
                                                                "print('bad flag --frobnicate'); raise SystemExit(2)"])
    with pytest.raises(supervisor.ComponentFailed, match="bad flag --frobnicate"):
        supervisor.wait_until(lambda: False, timeout=60, record=record, what="broken")


def test_a_port_with_a_partner_leaves_room_for_the_grpc_port():
    port = supervisor.free_port_with_partner(10000)
    assert supervisor.port_is_free(port) and supervisor.port_is_free(port + 10000)


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")
def test_a_component_started_to_die_with_its_parent_does(tmp_path):
    from .conftest import wait_for
    parent = subprocess.run([sys.executable, "-c", f"""
import sys
from pathlib import Path
from kadence.sandbox import supervisor
record, _ = supervisor.start_component(Path({str(tmp_path)!r}), "child",
                                       [sys.executable, "-c", "import time; time.sleep(120)"], die_with_parent=True)
print(record.pid)
"""], capture_output=True, text=True, timeout=60, check=True)
    child = int(parent.stdout.strip())
    wait_for(lambda: not process_alive(child), timeout=30, message="the child to follow its parent")
