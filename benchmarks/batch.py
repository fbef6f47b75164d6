"""Benchmark: a BatchPrediction run (`kadence batch`, the Job's command) against the floor: the same churn model
called on the same Parquet file in one process (read, transform, predict, write).

Setup (not timed): a churn pipeline (one-hot, scaling, imputing, a 25-tree random forest, as in the serving
tests) is trained on 600 rows and compiled to ONNX as training does (verified against scikit-learn); ROWS churn
rows with an entity id are written as one Parquet file; a SeaweedFS S3 is started as the sandbox starts it, and
the input, the model and its graph are uploaded there.

- kadence: `kadence batch --task FILE` in its own process: download the input from S3, read it in chunks of
  --chunk-rows, type every column as the model server does, score with the verified ONNX graph (what the server
  uses), write Parquet parts to S3 and publish the manifest. Prediction logging (the MonitorPolicy stream) is
  off here, as a BatchPrediction has it on; run with --with-log to include it.
- floor: a child process that reads the same local Parquet file whole with pandas, calls the skops pipeline's
  predict_proba, and writes one Parquet file locally: no S3, no chunks, no checks.

Each side runs in a child process so peak RSS (wait4) is that side's alone; time is wall time including
interpreter start and imports. Targets (issue 21): within 1.5x of the floor at 10M rows, memory bounded by the
chunk size (it must not grow with the rows).

Usage: python benchmarks/batch.py [--rows 1000000 10000000] [--chunk-rows 200000] [--with-log]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GIB = 1 << 30
TARGET_RATIO = 1.5

FLOOR = r"""
import sys, pandas as pd, skops.io as sio, pyarrow as pa, pyarrow.parquet as pq
source, model, out = sys.argv[1:4]
data = open(model, "rb").read()
pipeline = sio.loads(data, trusted=sio.get_untrusted_types(data=data))
frame = pd.read_parquet(source)
proba = pipeline.predict_proba(frame.drop(columns=["customer_id"]))
result = pd.DataFrame({"customer_id": frame["customer_id"], "prediction": pipeline.classes_[proba.argmax(1)],
                       "probability_0": proba[:, 0], "probability_1": proba[:, 1]})
pq.write_table(pa.Table.from_pandas(result, preserve_index=False), out, compression="zstd")
print(len(result))
"""


def run(argv: list[str], env: dict) -> tuple[float, int, str]:
    """(wall seconds, peak RSS bytes, last output line) of one child process."""
    began = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - began
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{argv[:3]} failed:\n{output[-3000:]}")
    return wall, usage.ru_maxrss * 1024, (output.strip().splitlines() or [""])[-1]


def model_files(directory: Path) -> tuple[Path, str, Path, str]:
    import hashlib

    sys.path.insert(0, str(REPO))
    from tests.serving.conftest import _save, churn_frame, churn_pipeline

    frame, labels = churn_frame(600, seed=1)
    holdout, _ = churn_frame(200, seed=2)
    files = _save(churn_pipeline(frame, labels), holdout, directory, "churn", compile_it=True)
    return files.skops_path, files.sha256, files.onnx_path, hashlib.sha256(files.onnx_path.read_bytes()).hexdigest()


def write_input(path: Path, rows: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sys.path.insert(0, str(REPO))
    from tests.serving.conftest import churn_frame

    writer = None
    for start in range(0, rows, 1_000_000):  # generated in slices: the generator itself stays small
        count = min(1_000_000, rows - start)
        frame, _ = churn_frame(count, seed=start + 1)
        frame.insert(0, "customer_id", [f"c{i:08d}" for i in range(start, start + count)])
        table = pa.Table.from_pandas(frame, preserve_index=False)
        writer = writer or pq.ParquetWriter(path, table.schema, compression="zstd")
        writer.write_table(table, row_group_size=200_000)
    writer.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--chunk-rows", type=int, default=200_000)
    parser.add_argument("--with-log", action="store_true", help="also log every row for a MonitorPolicy")
    args = parser.parse_args()

    from kadence.sandbox import s3
    from kadence.storage import ObjectStore

    work = Path(tempfile.mkdtemp(prefix="batch-bench-"))
    settings = s3.load_or_create_settings(work / "s3")
    record = s3.start(work / "s3", settings, die_with_parent=True)
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
           **settings.storage_config().as_env()}
    try:
        store = ObjectStore(settings.storage_config())
        store.ensure_bucket()
        skops_path, skops_sha, onnx_path, onnx_sha = model_files(work)
        store.put_file("models/bench/churn.skops", str(skops_path))
        store.put_file("models/bench/churn.onnx", str(onnx_path))
        columns = [{"name": "tenure", "type": "int"}, {"name": "charges", "type": "float"},
                   {"name": "plan", "type": "category"}, {"name": "paperless", "type": "bool"},
                   {"name": "age", "type": "float", "nullable": True}]
        print(f"{'rows':>11} {'side':<8}{'wall s':>9}{'rows/s':>12}{'peak RSS':>11}  ratio", flush=True)
        for rows in args.rows:
            source = work / f"input-{rows}.parquet"
            write_input(source, rows)
            store.put_file(f"raw/bench/input-{rows}.parquet", str(source))
            task = {"namespace": "bench", "name": "bench", "run": f"run-{rows}", "chunkRows": args.chunk_rows,
                    "model": {"name": "churn-v1", "model": "churn", "version": 1, "task": "classification",
                              "artifact": {"uri": store.uri("models/bench/churn.skops"), "sha256": skops_sha},
                              "compiled": {"uri": store.uri("models/bench/churn.onnx"), "sha256": onnx_sha,
                                           "verified": True},
                              "inputs": columns},
                    "input": {"uri": store.uri(f"raw/bench/input-{rows}.parquet"), "format": "parquet"},
                    "output": {"uri": store.uri(f"predictions/bench/run-{rows}/"), "format": "parquet",
                               "entityColumn": "customer_id", "probabilities": True},
                    "stream": "batch.bench" if args.with_log else None}
            task_path = work / f"task-{rows}.json"
            task_path.write_text(json.dumps(task))
            floor_wall, floor_rss, _ = run([sys.executable, "-c", FLOOR, str(source), str(skops_path),
                                            str(work / "floor-out.parquet")], env)
            kadence_wall, kadence_rss, last = run([sys.executable, "-m", "kadence", "batch", "--task", str(task_path)],
                                                  env)
            assert json.loads(last)["rows"] == rows, last
            for side, wall, rss in (("floor", floor_wall, floor_rss), ("kadence", kadence_wall, kadence_rss)):
                ratio = f"{wall / floor_wall:.2f}x" if side == "kadence" else ""
                print(f"{rows:>11,} {side:<8}{wall:>9.1f}{rows / wall:>12,.0f}{rss / GIB:>8.2f} GiB  {ratio}", flush=True)
            print(f"{'':>11} target: kadence within {TARGET_RATIO}x of the floor "
                  f"({'met' if kadence_wall <= TARGET_RATIO * floor_wall else 'MISSED'})", flush=True)
    finally:
        proc = record.process()
        if proc is not None:
            from kadence.sandbox import supervisor

            supervisor.stop_processes([proc], timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
