"""One real Ray head for the engine tests (as `kadence sandbox up --ray` starts it), started
once per module that asks for it: Ray takes seconds to start on this machine."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest



@pytest.fixture(scope="module")
def ray_address(tmp_path_factory):
    from kadence.sandbox import ray as sandbox_ray
    from kadence.sandbox import supervisor

    state_dir = tmp_path_factory.mktemp("ray")
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    record = sandbox_ray.start(state_dir, env, die_with_parent=True)
    yield sandbox_ray.address(record.port)
    proc = record.process()
    if proc is not None:
        assert not supervisor.stop_processes([proc], timeout=30), "the Ray head did not stop"
