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
- base: `kadence ingest` of the base commit, the local path before issue 18.

Then, on the snapshot the local side stored (the same version id on every side):

- materialize: `kadence materialize --task FILE` of a 16-feature FeatureSet (standardScale x8,
  oneHot x4, bucketize, two expressions, datePart) on local, ray (`spec.engine`) and base;
- drift: `kadence monitor --task FILE` of a MonitorPolicy-shaped task (psi, the snapshot's
  profile.json as the reference) over PREDICTIONS logged predictions (Parquet batches under
  predictions/<ns>/<isvc>/..., 18 logged inputs of the same generator, 3 of them shifted by
  half a sigma) on local, ray and base;
- evidently: `DataDriftPreset` of Evidently (its own venv, /work/rivals/evidently, created by
  `--setup` or on first use) on the same 1M inputs against the snapshot's rows, killed after
  --evidently-timeout seconds.

It prints each side's wall time (interpreter start and imports included), the driver's peak RSS
(wait4) and, for ray, the peak RSS of the largest Ray process and of the whole Ray head process
tree (sampled every 0.2 s), and checks that every side stored the same version id. `base` is the
commit the issue was filed against (9672e38), as a `git worktree` (--base-dir).

--csv-rows N also runs the whole sequence on the same table written as FILES CSV objects.
Each part and side can be left out: --parts ingest materialize drift, --skip floor local ray base
evidently. Materialize and drift need the local side's snapshot: without the local ingest side they
run it first, printed in parentheses. --side-timeout kills a Kadence side that runs longer (printed
as did not finish, with its peak RSS), --evidently-timeout Evidently's.

Usage: python benchmarks/bigdata.py [--rows 1000000 ...] [--csv-rows 10000000] [--files 4]
       [--parts ingest materialize drift] [--skip ...] [--predictions 1000000] [--setup]
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
DEFAULT_BASE = "9672e38"  # main when issue 18 was filed
GIB = 1 << 30
RIVALS = Path(os.environ.get("KADENCE_RIVALS", "/work/rivals"))
EVIDENTLY_VENV = RIVALS / "evidently"
EVIDENTLY_REQUIREMENTS = ["evidently>=0.7.23,<0.8", "pandas<3", "pyarrow"]
INPUTS = [f"f{i}" for i in range(8)] + [f"n{i}" for i in range(4)] + ["active", "mobile"] + [f"c{i}" for i in range(4)]
SHIFTED = ["f0", "f1", "f2"]  # half a sigma up in the predictions

FLOOR = r"""
import sys, json, tempfile, numpy as np, pyarrow as pa, pyarrow.compute as pc, pyarrow.csv as pcsv, pyarrow.parquet as pq
from kadence.storage import ObjectStore
store = ObjectStore.from_env()
keys = json.loads(sys.argv[1]); stats = {}
work = tempfile.mkdtemp()
def batches(path):
    if path.endswith(".csv"):
        yield from pcsv.open_csv(path)
    else:
        yield from pq.ParquetFile(path).iter_batches(batch_size=262144)
for i, key in enumerate(keys):
    path = f"{work}/{i}" + key[key.rindex("."):]; store.get_file(key, path)
    for batch in batches(path):
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
    import os; os.unlink(path)
print(json.dumps({"columns": len(stats), "rows": stats["id"]["n"]}))
"""

EVIDENTLY = r"""
import json, sys, time
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
columns = json.loads(sys.argv[3])
reference = pd.read_parquet(sys.argv[1], columns=columns)
current = pd.read_parquet(sys.argv[2], columns=columns)
started = time.perf_counter()
snapshot = Report([DataDriftPreset()]).run(current, reference)
seconds = time.perf_counter() - started
drifted = []
for metric in snapshot.dict()["metrics"]:
    config = metric["config"]
    if config["type"].endswith("ValueDrift") and metric["value"] >= config.get("threshold", 0.1):
        drifted.append(config["column"])
print(json.dumps({"run_seconds": seconds, "drifted": sorted(drifted)}))
"""


def frame_columns(rng, start: int, n: int, shift: float = 0.0) -> dict:
    """One chunk of the 20 columns (`shift` sigmas added to SHIFTED)."""
    import numpy as np
    import pyarrow as pa

    columns: dict = {"id": pa.array([f"u{i:09d}" for i in range(start, start + n)])}
    for i in range(8):
        sigma = 10 + i
        mean = 100 * i + (shift * sigma if f"f{i}" in SHIFTED else 0.0)
        columns[f"f{i}"] = pa.array(rng.normal(mean, sigma, n).round(4), mask=rng.random(n) < 0.02)
    for i in range(4):
        columns[f"n{i}"] = rng.integers(0, 1000 * (i + 1), n)
    columns["active"] = rng.random(n) < 0.4
    columns["mobile"] = rng.random(n) < 0.6
    for i, size in enumerate((4, 12, 40, 200)):
        columns[f"c{i}"] = pa.array(rng.choice([f"v{j:03d}" for j in range(size)], n))
    columns["seen"] = pa.array(np.datetime64("2023-01-01T00:00:00", "us")
                               + rng.integers(0, 3 * 365 * 86400, n).astype("timedelta64[s]")).cast(
        pa.timestamp("us", tz="UTC"))
    return columns


def generate(store, prefix: str, rows: int, files: int, fmt: str, seed: int = 1) -> list[str]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    keys, per_file = [], -(-rows // files)
    work = Path(tempfile.mkdtemp(prefix="bigdata-"))
    for index in range(files):
        start, n = index * per_file, min(per_file, rows - index * per_file)
        table = pa.table(frame_columns(rng, start, n))
        path = work / f"part-{index}.{fmt}"
        if fmt == "csv":
            pcsv.write_csv(table, str(path))
        else:
            pq.write_table(table, str(path), row_group_size=262_144)
        key = f"{prefix}part-{index:03d}.{fmt}"
        store.put_file(key, str(path), "text/csv" if fmt == "csv" else "application/vnd.apache.parquet")
        path.unlink()
        keys.append(key)
    return keys


def generate_predictions(store, namespace: str, isvc: str, count: int, batches: int = 10,
                         seed: int = 2) -> tuple[Path, str]:
    """`count` logged predictions as Parquet batches in the log layout, one second apart from
    2026-12-01T00:00Z (model version 1); also kept locally (inputs only) for Evidently. Returns
    (that local file, the evaluation time)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from kadence.domain.monitoring.logformat import predictions_prefix

    rng = np.random.default_rng(seed)
    local = Path(tempfile.mkdtemp(prefix="bigdata-pred-")) / "current.parquet"
    writer = None
    began = np.datetime64("2026-12-01T00:00:00", "ms")
    per = -(-count // batches)
    for index in range(batches):
        start, n = index * per, min(per, count - index * per)
        columns = frame_columns(rng, start, n, shift=0.5)
        inputs = pa.table({name: columns[name] for name in INPUTS})
        writer = writer or pq.ParquetWriter(str(local), inputs.schema)
        writer.write_table(inputs)
        times = began + (np.arange(start, start + n) * 1000).astype("timedelta64[ms]")
        prediction = (rng.random(n) < 0.3).astype("int64")
        batch = pa.table({
            "requestId": pa.array([f"r{i:09d}" for i in range(start, start + n)]),
            "time": pa.array(times).cast(pa.timestamp("ms", tz="UTC")),
            "modelVersion": pa.array(["1"] * n),
            "inputs": pa.StructArray.from_arrays([c.combine_chunks() for c in inputs.columns], INPUTS),
            "outputs": pa.StructArray.from_arrays([pa.array(prediction)], ["prediction"]),
        })
        first = str(times[0].astype("datetime64[ms]"))
        stamp = first.replace("-", "").replace(":", "").replace(".", "")
        day = first[:10].replace("-", "/")
        key = f"{predictions_prefix(namespace, isvc)}1/{day}/{stamp}Z-{index:08x}.parquet"
        buffer = pa.BufferOutputStream()
        pq.write_table(batch, buffer)
        store.put_bytes(key, buffer.getvalue().to_pybytes(), "application/vnd.apache.parquet")
    writer.close()
    end = began + np.timedelta64(count * 1000 + 1000, "ms")
    return local, str(end) + "Z"


def spec(bucket: str, prefix: str, rows: int, fmt: str) -> dict:
    columns = [{"name": "id", "type": "string", "nullable": False, "regex": "u[0-9]{9}"}]
    columns += [{"name": f"f{i}", "type": "float", "min": -1e6, "max": 1e6} for i in range(8)]
    columns += [{"name": f"n{i}", "type": "int", "min": 0} for i in range(4)]
    columns += [{"name": "active", "type": "bool"}, {"name": "mobile", "type": "bool"}]
    columns += [{"name": f"c{i}", "type": "category"} for i in range(4)]
    columns += [{"name": "seen", "type": "datetime"}]
    return {"source": {"uri": f"s3://{bucket}/{prefix}"}, "format": fmt, "schema": {"columns": columns},
            "quality": {"minRows": rows // 2, "maxMissingFraction": 0.05, "maxDuplicateFraction": 0.0}}


def featureset_spec() -> dict:
    features = [{"name": f"z{i}", "transform": {"type": "standardScale", "column": f"f{i}"}} for i in range(8)]
    features += [{"name": f"c{i}", "transform": {"type": "oneHot", "column": f"c{i}", "maxCategories": 20}}
                 for i in range(4)]
    features += [{"name": "n0_band", "transform": {"type": "bucketize", "column": "n0", "boundaries": [100, 500, 900]}},
                 {"name": "ratio", "expression": "f1 / (n1 + 1)"},
                 {"name": "active_mobile", "expression": "where(active, 1, 0) + where(mobile, 1, 0)"},
                 {"name": "seen_month", "transform": {"type": "datePart", "column": "seen", "part": "month"}}]
    return {"datasetRef": {"name": "big"}, "entityColumn": "id", "features": features}


def monitor_task(side: str, time_iso: str, count: int, reference_uri: str, isvc: str) -> dict:
    task = {"namespace": "bench", "policy": f"drift-{side}", "inferenceService": isvc, "time": time_iso,
            "window": {"lastPredictions": count}, "drift": {"method": "psi", "minSamples": 100},
            "referenceUri": reference_uri, "features": INPUTS, "history": 0}
    if side in ("local", "ray"):
        task["engine"] = side
    return task


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


def run(argv: list[str], env: dict, cwd: Path, timeout: float | None = None,
        ok: tuple[int, ...] = (0, 3)) -> tuple[float, int, str]:
    """(wall seconds, peak RSS bytes of the process, its last output line); TimeoutError past `timeout`."""
    began = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out_lines: list[str] = []
    reader = threading.Thread(target=lambda: out_lines.extend(proc.stdout), daemon=True)
    reader.start()
    timer = threading.Timer(timeout, proc.kill) if timeout else None
    if timer:
        timer.start()
    _, status, usage = os.wait4(proc.pid, 0)
    if timer:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join()
    wall = time.perf_counter() - began
    if timeout and wall >= timeout and proc.returncode < 0:
        raise TimeoutError(f"killed after {timeout:.0f} s (peak RSS {usage.ru_maxrss / (1 << 20):.2f} GiB)")
    if proc.returncode not in ok:
        raise RuntimeError(f"{argv[:4]} failed ({proc.returncode}):\n{''.join(out_lines[-30:])}")
    return wall, usage.ru_maxrss * 1024, (out_lines or [""])[-1].strip()


def base_worktree(commit: str, path: Path) -> Path:
    """A `git worktree` of the base commit, byte-compiled so its runs do not pay compiling."""
    if not (path / "operator" / "kadence").is_dir():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), commit], check=True,
                       capture_output=True)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(path / "operator")], check=True)
    return path


def ensure_evidently() -> Path:
    python = EVIDENTLY_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(EVIDENTLY_VENV)], check=True)
    if subprocess.run([str(python), "-c", "import evidently, pandas"], capture_output=True).returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *EVIDENTLY_REQUIREMENTS], check=True)
    return python


HEADER = f"{'side':<10}{'wall s':>9}{'driver peak RSS':>17}{'largest Ray process':>20}{'Ray tree peak':>15}  result"


def row(side: str, wall: float, rss: int, sampler: "TreeSampler | None", result: str) -> str:
    worker = f"{max(sampler.peak.values()) / GIB:.2f} GiB" if sampler and sampler.peak else ""
    tree = f"{sampler.total / GIB:.2f} GiB" if sampler and sampler.peak else ""
    return f"{side:<10}{wall:>9.1f}{rss / GIB:>13.2f} GiB{worker:>20}{tree:>15}  {result}"


class Bench:
    def __init__(self, args, env: dict, head, store, base: Path | None):
        self.args, self.env, self.head, self.store, self.base = args, env, head, store, base
        self.task_dir = Path(tempfile.mkdtemp(prefix="bigdata-task-"))

    def kadence(self, command: str, side: str, task: dict) -> tuple[str, dict]:
        """Run `kadence <command> --task` for one side; (its printed row, its result JSON)."""
        path = self.task_dir / f"{command}-{side}.json"
        path.write_text(json.dumps(task))
        env = dict(self.env)
        cwd = REPO
        if side == "base":
            env["PYTHONPATH"] = str(self.base / "operator")
            cwd = self.base
        sampler = TreeSampler(self.head.pid)
        try:
            with sampler:
                wall, rss, last = run([sys.executable, "-m", "kadence", command, "--task", str(path)], env, cwd,
                                      timeout=self.args.side_timeout, ok=(0, 2, 3))
            result = json.loads(last)
        except (RuntimeError, TimeoutError, json.JSONDecodeError) as error:
            return f"{side:<10}  did not finish: {str(error).splitlines()[0][:200]}", {}
        return row(side, wall, rss, sampler if side == "ray" else None, self.describe(command, result)), result

    @staticmethod
    def describe(command: str, result: dict) -> str:
        if command != "monitor" and result.get("outcome") == "Error":
            return f"{result.get('outcome')}: {str(result.get('message'))[:160]}"
        if command == "ingest":
            return f"{result.get('version')} ({result['outcome']})"
        if command == "materialize":
            return f"{result.get('version')} ({result['outcome']}, {result.get('rows')} rows, " \
                   f"{len(result.get('featureColumns', []))} columns)"
        if result.get("outcome") != "Evaluated":
            return f"{result.get('outcome')}: {str(result.get('message'))[:160]}"
        return f"{result.get('samples')} predictions, drifted {','.join(sorted(result.get('driftedFeatures', [])))}" \
               f" ({result.get('reason')})"

    def sides(self, with_floor: bool = False) -> list[str]:
        names = (["floor"] if with_floor else []) + ["local", "ray", "base"]
        return [s for s in names if s not in self.args.skip and (s != "base" or self.base is not None)]

    def size(self, rows: int, fmt: str) -> None:
        args, store = self.args, self.store
        prefix = f"bench/bigdata-{fmt}-{rows}/"
        began = time.perf_counter()
        keys = generate(store, prefix, rows, args.files, fmt)
        print(f"\n{rows:,} rows x 20 columns in {args.files} {fmt.upper() if fmt == 'csv' else 'Parquet'} objects "
              f"(generated in {time.perf_counter() - began:.0f} s), load {os.getloadavg()[0]:.2f}", flush=True)
        snapshot = None
        if "ingest" in args.parts:
            print("ingest + validate + profile + snapshot")
            print(HEADER)
            walls: dict[str, float] = {}
            for side in self.sides(with_floor=True):
                if side == "floor":
                    wall, rss, _ = run([sys.executable, "-c", FLOOR, json.dumps(keys)], self.env, REPO)
                    print(row(side, wall, rss, None, "-"), flush=True)
                    walls[side] = wall
                    continue
                line, result = self.ingest(prefix, rows, fmt, side)
                print(line, flush=True)
                if result.get("outcome") in ("Valid", "Invalid"):
                    walls[side] = float(line.split()[1])
                if side == "local" and result.get("uri"):
                    snapshot = result
            if "floor" in walls:
                print("vs the pyarrow floor: " + ", ".join(f"{side} {wall / walls['floor']:.1f}x" for side, wall in
                                                        walls.items() if side != "floor") + " (target: ray <= 2.5x)")
        wants = {"materialize", "drift"} & set(args.parts)
        if wants and snapshot is None:
            line, snapshot = self.ingest(prefix, rows, fmt, "local")
            print(f"(snapshot for materialize/drift: {line.strip()})", flush=True)
        if wants and snapshot.get("uri"):
            if "materialize" in args.parts:
                self.materialize(rows, snapshot["uri"])
            if "drift" in args.parts:
                self.drift(rows, snapshot["uri"])
        store.delete_prefix(prefix)
        for junk in ("datasets/bench/", "features/bench/", "monitoring/bench/"):
            store.delete_prefix(junk)

    def ingest(self, prefix: str, rows: int, fmt: str, side: str) -> tuple[str, dict]:
        body = spec(self.store.bucket, prefix, rows, fmt)
        if side in ("local", "ray"):
            body["engine"] = side
        task = {"namespace": "bench", "name": f"big-{side}-{rows}", "runId": "r1", "spec": body}
        return self.kadence("ingest", side, task)

    def materialize(self, rows: int, dataset_uri: str) -> None:
        print(f"materialize (FeatureSet of {len(featureset_spec()['features'])} features on the {rows:,}-row snapshot)")
        print(HEADER)
        for side in self.sides():
            body = featureset_spec()
            if side in ("local", "ray"):
                body["engine"] = side
            task = {"namespace": "bench", "name": f"fs-{side}-{rows}", "runId": "r1", "spec": body,
                    "datasetUri": dataset_uri}
            print(self.kadence("materialize", side, task)[0], flush=True)

    def drift(self, rows: int, dataset_uri: str) -> None:
        count, isvc = self.args.predictions, f"isvc-{rows}"
        began = time.perf_counter()
        current, end = generate_predictions(self.store, "bench", isvc, count)
        reference_uri = dataset_uri.rstrip("/") + "/profile.json"
        print(f"drift (psi, {count:,} logged predictions x {len(INPUTS)} inputs, {','.join(SHIFTED)} shifted by "
              f"0.5 sigma, against the {rows:,}-row snapshot's profile; logged in "
              f"{time.perf_counter() - began:.0f} s)")
        print(HEADER)
        for side in self.sides():
            print(self.kadence("monitor", side, monitor_task(side, end, count, reference_uri, isvc))[0], flush=True)
        if "evidently" not in self.args.skip:
            print(self.evidently(dataset_uri, current), flush=True)
        self.store.delete_prefix(f"predictions/bench/{isvc}/")
        current.unlink()

    def evidently(self, dataset_uri: str, current: Path) -> str:
        """Evidently's DataDriftPreset on the same inputs against the snapshot's rows (not its profile:
        Evidently needs the reference data)."""
        python = ensure_evidently()
        prefix = self.store.key_of(dataset_uri.rstrip("/") + "/")
        manifest = json.loads(self.store.get_bytes(prefix + "manifest.json"))
        reference = current.parent / "reference.parquet"
        self.store.get_file(prefix + manifest.get("dataFile", "data.parquet"), str(reference))
        try:
            wall, rss, last = run([str(python), "-c", EVIDENTLY, str(reference), str(current), json.dumps(INPUTS)],
                                  {**os.environ, "PYTHONPATH": ""}, REPO, timeout=self.args.evidently_timeout,
                                  ok=(0,))
            result = json.loads(last)
        except (RuntimeError, TimeoutError, json.JSONDecodeError) as error:
            return f"{'evidently':<10}  did not finish: {str(error).splitlines()[0][:200]}"
        finally:
            reference.unlink()
        return row("evidently", wall, rss, None, f"Report.run {result['run_seconds']:.1f} s, drifted "
                                                 f"{','.join(result['drifted']) or 'none'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[1_000_000], help="Parquet sizes")
    parser.add_argument("--csv-rows", type=int, nargs="*", default=[], help="CSV sizes (the issue: 10000000)")
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--base", default=DEFAULT_BASE)
    parser.add_argument("--base-dir", type=Path, default=Path(tempfile.gettempdir()) / "kadence-bigdata-base")
    parser.add_argument("--parts", nargs="+", default=["ingest", "materialize", "drift"],
                        choices=["ingest", "materialize", "drift"])
    parser.add_argument("--skip", nargs="*", default=[], choices=["floor", "local", "ray", "base", "evidently"])
    parser.add_argument("--predictions", type=int, default=1_000_000, help="logged predictions the drift judges")
    parser.add_argument("--evidently-timeout", type=float, default=600)
    parser.add_argument("--side-timeout", type=float, default=None,
                        help="kill a kadence side after this many seconds (printed as did not finish)")
    parser.add_argument("--setup", action="store_true", help="create Evidently's venv and the base worktree, exit")
    args = parser.parse_args()
    if args.setup:
        print(ensure_evidently(), base_worktree(args.base, args.base_dir))
        return 0

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
        base = base_worktree(args.base, args.base_dir) if "base" not in args.skip else None
        load = os.getloadavg()
        print(f"bigdata: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load {load[0]:.2f} {load[1]:.2f} "
              f"{load[2]:.2f}, {os.cpu_count()} CPUs, base {args.base}; Ray head {sandbox_ray.NUM_CPUS} CPUs; "
              f"parts {' '.join(args.parts)}; skipped {' '.join(args.skip) or 'none'}")
        bench = Bench(args, env, head, store, base)
        for rows in args.rows:
            bench.size(rows, "parquet")
        for rows in args.csv_rows:
            bench.size(rows, "csv")
        load = os.getloadavg()
        print(f"\nend {time.strftime('%H:%M UTC', time.gmtime())}, load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    finally:
        for record in reversed(records):
            proc = record.process()
            if proc is not None:
                supervisor.stop_processes([proc], timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
