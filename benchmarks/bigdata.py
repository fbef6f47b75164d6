"""Benchmark: a Dataset ingest (fetch + type + validate + profile + hash + store the snapshot) of
a 20-column Parquet table in S3, on each engine, beside the pyarrow floor and the base commit.

Generates ROWS x 20 columns (8 floats with 2 % missing, 4 ints, 2 bools, 4 categories, a string
id, a timestamp) as FILES Parquet objects in a SeaweedFS S3 started for the run (as the sandbox
starts it), starts a Ray head as `kadence sandbox up --ray` does (2 CPUs, 256 MiB object store),
then runs, each in its own subprocess and one after the other:

- pyarrow floor: download each object and read it batch by batch with pyarrow, computing the
  same per-column statistics (count, missing, min, max, mean, std, value counts of categories);
  no validation, no hashing, no snapshot;
- local: `kadence ingest --task FILE` of this checkout with `engine: local`;
- ray: the same with `engine: ray` (the Job process is the driver; Ray tasks do the work);
- base: `kadence ingest` of the base commit (exported with `git archive`), the local path
  before this change.

It prints each side's wall time (interpreter start and imports included), the driver's peak RSS
(wait4) and, for ray, the peak RSS of the largest Ray worker and of the whole Ray head process
tree (sampled every 0.2 s), and checks that every side stored the same version id.

FeatureSet materialization and MonitorPolicy drift evaluation (engine: ray runs each as one Ray
task of the local function) are not measured here.

Usage: python benchmarks/bigdata.py [--rows 1000000 ...] [--files 4] [--base COMMIT]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_BASE = "ff7bc40"  # the commit before the ray engine
GIB = 1 << 30

FLOOR = r"""
import sys, json, tempfile, numpy as np, pyarrow as pa, pyarrow.compute as pc, pyarrow.parquet as pq
from kadence.storage import ObjectStore
store = ObjectStore.from_env()
keys = json.loads(sys.argv[1]); stats = {}
work = tempfile.mkdtemp()
for i, key in enumerate(keys):
    path = f"{work}/{i}.parquet"; store.get_file(key, path)
    for batch in pq.ParquetFile(path).iter_batches(batch_size=262144):
        for name, column in zip(batch.schema.names, batch.columns):
            s = stats.setdefault(name, {"n": 0, "missing": 0, "sum": 0.0, "sq": 0.0, "min": None, "max": None,
                                        "counts": {}})
            s["missing"] += column.null_count; s["n"] += len(column) - column.null_count
            if pa.types.is_string(column.type) or pa.types.is_boolean(column.type):
                for item in pc.value_counts(column).to_pylist():
                    s["counts"][str(item["values"])] = s["counts"].get(str(item["values"]), 0) + item["counts"]
                continue
            values = column.cast(pa.float64()) if not pa.types.is_timestamp(column.type) else column
            mm = pc.min_max(values).as_py()
            s["min"] = mm["min"] if s["min"] is None else min(s["min"], mm["min"])
            s["max"] = mm["max"] if s["max"] is None else max(s["max"], mm["max"])
            if not pa.types.is_timestamp(column.type):
                s["sum"] += pc.sum(values).as_py() or 0.0; s["sq"] += pc.sum(pc.multiply(values, values)).as_py() or 0.0
print(json.dumps({"columns": len(stats), "rows": stats["id"]["n"]}))
"""


def generate(store, prefix: str, rows: int, files: int, seed: int = 1) -> list[str]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    keys, per_file = [], -(-rows // files)
    work = Path(tempfile.mkdtemp(prefix="bigdata-"))
    for index in range(files):
        start, n = index * per_file, min(per_file, rows - index * per_file)
        columns: dict = {"id": pa.array([f"u{i:09d}" for i in range(start, start + n)])}
        for i in range(8):
            columns[f"f{i}"] = pa.array(rng.normal(100 * i, 10 + i, n).round(4), mask=rng.random(n) < 0.02)
        for i in range(4):
            columns[f"n{i}"] = rng.integers(0, 1000 * (i + 1), n)
        columns["active"] = rng.random(n) < 0.4
        columns["mobile"] = rng.random(n) < 0.6
        for i, size in enumerate((4, 12, 40, 200)):
            columns[f"c{i}"] = pa.array(rng.choice([f"v{j:03d}" for j in range(size)], n))
        columns["seen"] = pa.array(np.datetime64("2023-01-01T00:00:00", "us")
                                   + rng.integers(0, 3 * 365 * 86400, n).astype("timedelta64[s]")).cast(
            pa.timestamp("us", tz="UTC"))
        path = work / f"part-{index}.parquet"
        pq.write_table(pa.table(columns), str(path), row_group_size=262_144)
        key = f"{prefix}part-{index:03d}.parquet"
        store.put_file(key, str(path), "application/vnd.apache.parquet")
        path.unlink()
        keys.append(key)
    return keys


def spec(bucket: str, prefix: str, rows: int) -> dict:
    columns = [{"name": "id", "type": "string", "nullable": False, "regex": "u[0-9]{9}"}]
    columns += [{"name": f"f{i}", "type": "float", "min": -1e6, "max": 1e6} for i in range(8)]
    columns += [{"name": f"n{i}", "type": "int", "min": 0} for i in range(4)]
    columns += [{"name": "active", "type": "bool"}, {"name": "mobile", "type": "bool"}]
    columns += [{"name": f"c{i}", "type": "category"} for i in range(4)]
    columns += [{"name": "seen", "type": "datetime"}]
    return {"source": {"uri": f"s3://{bucket}/{prefix}"}, "format": "parquet", "schema": {"columns": columns},
            "quality": {"minRows": rows // 2, "maxMissingFraction": 0.05, "maxDuplicateFraction": 0.0}}


class TreeSampler:
    """Peak RSS per process of a process tree, sampled in the background."""

    def __init__(self, pid: int):
        import psutil

        self.root = psutil.Process(pid)
        self.peak: dict[int, int] = {}
        self.total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            total = 0
            try:
                for proc in [self.root, *self.root.children(recursive=True)]:
                    try:
                        rss = proc.memory_info().rss
                    except psutil.Error:
                        continue
                    total += rss
                    self.peak[proc.pid] = max(self.peak.get(proc.pid, 0), rss)
            except psutil.Error:
                pass
            self.total = max(self.total, total)
            self._stop.wait(0.2)

    def __enter__(self) -> "TreeSampler":
        self.peak.clear()
        self.total = 0
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run(argv: list[str], env: dict, cwd: Path) -> tuple[float, int, str]:
    """(wall seconds, peak RSS bytes of the process, its last output line)."""
    began = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out_lines: list[str] = []
    reader = threading.Thread(target=lambda: out_lines.extend(proc.stdout), daemon=True)
    reader.start()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join()
    wall = time.perf_counter() - began
    if proc.returncode not in (0, 3):
        raise RuntimeError(f"{argv} failed ({proc.returncode}):\n{''.join(out_lines[-30:])}")
    return wall, usage.ru_maxrss * 1024, (out_lines or [""])[-1].strip()


def export_base(commit: str) -> Path:
    target = Path(tempfile.mkdtemp(prefix="bigdata-base-"))
    archive = subprocess.run(["git", "archive", commit], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    # compiled once here, so that its runs do not pay the bytecode compilation this checkout's already paid
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(target / "operator")], check=True)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--base", default=DEFAULT_BASE)
    parser.add_argument("--skip", nargs="*", default=[], choices=["floor", "local", "ray", "base"])
    args = parser.parse_args()

    from kadence.sandbox import ray as sandbox_ray
    from kadence.sandbox import s3, supervisor
    from kadence.storage import ObjectStore

    state = Path(tempfile.mkdtemp(prefix="bigdata-state-"))
    settings = s3.load_or_create_settings(state)
    records = [s3.start(state, settings, die_with_parent=True)]
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
           **settings.storage_config().as_env()}
    try:
        head = sandbox_ray.start(state, env, die_with_parent=True)
        records.append(head)
        env["KADENCE_RAY_ADDRESS"] = sandbox_ray.address(head.port)
        store = ObjectStore(settings.storage_config())
        base = export_base(args.base) if "base" not in args.skip else None
        load = os.getloadavg()
        print(f"bigdata: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load {load[0]:.2f} {load[1]:.2f} "
              f"{load[2]:.2f}, {os.cpu_count()} CPUs, base {args.base}; Ray head {sandbox_ray.NUM_CPUS} CPUs")
        for rows in args.rows:
            prefix = f"bench/bigdata-{rows}/"
            began = time.perf_counter()
            keys = generate(store, prefix, rows, args.files)
            print(f"\n{rows:,} rows x 20 columns in {args.files} Parquet objects (generated in "
                  f"{time.perf_counter() - began:.0f} s)")
            print(f"{'side':<8}{'wall s':>9}{'driver peak RSS':>17}{'largest Ray process':>20}{'Ray tree peak':>15}"
                  "  version")
            task_dir = Path(tempfile.mkdtemp(prefix="bigdata-task-"))
            walls: dict[str, float] = {}
            for side in ("floor", "local", "ray", "base"):
                if side in args.skip:
                    continue
                worker, tree = "", ""
                if side == "floor":
                    wall, rss, last = run([sys.executable, "-c", FLOOR, json.dumps(keys)], env, REPO)
                    version = "-"
                else:
                    body = spec(store.bucket, prefix, rows)
                    if side in ("local", "ray"):
                        body["engine"] = side
                    task = {"namespace": "bench", "name": f"big-{side}-{rows}", "runId": "r1", "spec": body}
                    path = task_dir / f"{side}.json"
                    path.write_text(json.dumps(task))
                    side_env = dict(env)
                    if side == "base":
                        side_env["PYTHONPATH"] = str(base / "operator")
                    sampler = TreeSampler(head.pid)
                    with sampler:
                        wall, rss, last = run([sys.executable, "-m", "kadence", "ingest", "--task", str(path)],
                                              side_env, base if side == "base" else REPO)
                    result = json.loads(last)
                    version = f"{result.get('version')} ({result['outcome']})"
                    if side == "ray":
                        worker = f"{max(sampler.peak.values()) / GIB:.2f} GiB"
                        tree = f"{sampler.total / GIB:.2f} GiB"
                walls[side] = wall
                print(f"{side:<8}{wall:>9.1f}{rss / GIB:>13.2f} GiB{worker:>20}{tree:>15}  {version}", flush=True)
            if "floor" in walls:
                print("vs the pyarrow floor: " + ", ".join(f"{side} {wall / walls['floor']:.1f}x" for side, wall in
                                                        walls.items() if side != "floor") + " (target: ray <= 2.5x)")
            store.delete_prefix(prefix)
            store.delete_prefix("datasets/bench/")
    finally:
        for record in reversed(records):
            proc = record.process()
            if proc is not None:
                supervisor.stop_processes([proc], timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
