"""`kadence serve` flags: the limits override the task's, are validated like it, and the
listeners bind where the environment says (the sandbox binds 127.0.0.1)."""

from __future__ import annotations

import argparse
import json

import pytest

from kadence.workloads import serve

TASK = {"inferenceService": "churn", "model": "churn", "version": 3,
        "artifact": {"uri": "s3://kadence/m.skops", "sha256": "a" * 64}, "maxRows": 100}


def parse(tmp_path, *flags: str) -> argparse.Namespace:
    path = tmp_path / "task.json"
    path.write_text(json.dumps(TASK))
    parser = argparse.ArgumentParser()
    serve.configure(parser)
    return parser.parse_args(["--task", str(path), *flags])


def test_limit_flags_override_the_task(tmp_path):
    task = serve.task_from_args(parse(tmp_path, "--max-rows", "7", "--max-body-bytes", "2048",
                                      "--max-concurrent-requests", "3", "--predict-timeout", "0.5"))
    assert (task.max_rows, task.max_body_bytes, task.max_concurrent_requests, task.predict_timeout_seconds) == \
        (7, 2048, 3, 0.5)


def test_without_flags_the_task_decides(tmp_path):
    task = serve.task_from_args(parse(tmp_path))
    assert task.max_rows == 100 and task.max_concurrent_requests == 32


@pytest.mark.parametrize("flags, field", [
    (("--max-rows", "0"), "max_rows"),
    (("--max-body-bytes", "10"), "max_body_bytes"),
    (("--predict-timeout", "0"), "predict_timeout_seconds"),
])
def test_a_limit_out_of_range_is_refused_naming_it(tmp_path, flags, field):
    with pytest.raises(SystemExit, match=f"kadence serve: invalid option:\n1 validation error for ServeTask\n{field}"):
        serve.task_from_args(parse(tmp_path, *flags))


@pytest.mark.parametrize("env, host", [({}, "0.0.0.0"), ({"KADENCE_BIND_ADDRESS": "127.0.0.1"}, "127.0.0.1")])
def test_the_listeners_bind_where_the_environment_says(monkeypatch, env, host):
    monkeypatch.delenv("KADENCE_BIND_ADDRESS", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert serve.default_host() == host


def test_a_metrics_port_in_use_is_a_clear_error(tmp_path):
    import socket
    import subprocess
    import sys
    from pathlib import Path


    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    task = tmp_path / "task.json"
    task.write_text(json.dumps(TASK))
    try:
        result = subprocess.run([str(Path(sys.executable).parent / "kadence"), "serve", "--task", str(task),
                                 "--host", "127.0.0.1", "--port", "0", "--metrics-port", str(port)],
                                capture_output=True, text=True, timeout=120)
    finally:
        busy.close()
    assert result.returncode != 0
    assert f"kadence serve: cannot serve /metrics on 127.0.0.1:{port}: Address already in use" in result.stderr
