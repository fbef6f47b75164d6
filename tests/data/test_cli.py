"""The data commands as a user runs them: `kadence ingest` / `kadence materialize` in a subprocess."""

import json
import subprocess
import sys

TASK = {"namespace": "cli", "name": "tiny", "spec": {
    "source": {"inline": "a,b\n1,x\n2,y\n"},
    "schema": {"columns": [{"name": "a", "type": "int"}, {"name": "b", "type": "category"}]},
    "quality": {"minRows": 2}}}


def kadence(*args, env=None, **kwargs):
    return subprocess.run([sys.executable, "-m", "kadence", *args], capture_output=True, text=True, env=env,
                          timeout=120, **kwargs)


def test_ingest_help_describes_its_arguments():
    done = kadence("ingest", "--help")
    assert done.returncode == 0
    assert "--task FILE" in done.stdout and "--no-store" in done.stdout


def test_materialize_help_describes_its_arguments():
    done = kadence("materialize", "--help")
    assert done.returncode == 0 and "--task FILE" in done.stdout


def test_a_real_ingest_run_stores_the_snapshot_and_prints_the_result_last(s3_env, store, tmp_path):
    path = tmp_path / "task.json"
    path.write_text(json.dumps({**TASK, "runId": "job-1"}))
    done = kadence("ingest", "--task", str(path), env=s3_env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["outcome"] == "Valid" and result["rows"] == 2
    assert store.exists(f"datasets/cli/tiny/{result['version']}/manifest.json")
    assert json.loads(store.get_bytes("datasets/cli/tiny/runs/job-1/result.json")) == result


def test_an_invalid_ingest_exits_3_with_the_failing_rule_from_the_environment_task(s3_env):
    task = {**TASK, "spec": {**TASK["spec"], "quality": {"minRows": 5}}}
    done = kadence("ingest", env={**s3_env, "KADENCE_TASK": json.dumps(task)})
    assert done.returncode == 3
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["failedRules"] == ["minRows"] and "2 rows, at least 5 required" in result["message"]


def test_a_bad_task_exits_2_with_the_reason(tmp_path):
    path = tmp_path / "task.json"
    path.write_text(json.dumps({"namespace": "x"}))
    done = kadence("ingest", "--task", str(path), "--no-store")
    assert done.returncode == 2
    assert "bad task" in json.loads(done.stdout.strip().splitlines()[-1])["message"]


def test_ingest_without_storage_validates_a_local_file_and_writes_the_snapshot_files(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("a,b\n1,x\n2,y\n3,x\n")
    task = tmp_path / "task.json"
    task.write_text(json.dumps(TASK))
    done = kadence("ingest", "--task", str(task), "--source", data.as_uri(), "--no-store", "--output",
                   str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["rows"] == 3
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["data.parquet", "manifest.json", "profile.json"]


def test_unreachable_storage_still_ends_with_an_error_result_line(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    env = {**__import__("os").environ, "KADENCE_S3_ENDPOINT": f"127.0.0.1:{port}", "KADENCE_S3_ACCESS_KEY": "a",
           "KADENCE_S3_SECRET_KEY": "b"}
    done = kadence("ingest", env={**env, "KADENCE_TASK": json.dumps(TASK)})
    assert done.returncode == 2
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["outcome"] == "Error" and "ingest failed" in result["message"]
    assert "could not write the result" in done.stderr


def test_a_real_materialize_run_follows_an_ingest_run(s3_env, store, tmp_path):
    ingest_task = {**TASK, "name": "tiny-for-features", "runId": "job-i"}
    done = kadence("ingest", env={**s3_env, "KADENCE_TASK": json.dumps(ingest_task)})
    assert done.returncode == 0, done.stderr
    dataset = json.loads(done.stdout.strip().splitlines()[-1])
    task = {"namespace": "cli", "name": "tiny-features", "datasetUri": dataset["uri"], "runId": "job-m",
            "spec": {"datasetRef": {"name": "tiny-for-features"},
                     "features": [{"name": "double", "expression": "a * 2"},
                                  {"name": "b", "transform": {"type": "oneHot", "column": "b"}}]}}
    path = tmp_path / "materialize.json"
    path.write_text(json.dumps(task))
    done = kadence("materialize", "--task", str(path), env=s3_env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["featureColumns"] == ["double", "b=x", "b=y", "b=<other>"] and result["rows"] == 2
    assert json.loads(store.get_bytes("features/cli/tiny-features/runs/job-m/result.json")) == result
