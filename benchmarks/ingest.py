"""Benchmark: `kadence ingest` against pandas' own read_csv + describe on the same CSV.

Generates ROWS x 20 columns of CSV in a temporary directory (12 float columns with 2% missing,
an id, 3 small ints, 2 categories, a bool and an ISO-8601 timestamp), then runs each side in
its own subprocess so that peak RSS (from wait4) belongs to that side alone:

- kadence: the ingest code path of the Job (`kadence.workloads.ingest_run.ingest`, what
  `kadence ingest --no-store --output DIR` runs) — read the file:// source with pyarrow, check
  the schema and quality rules (nullable, min/max, allowed values, min rows, missing fractions,
  duplicates), compute the profile (two passes: moments/sample/counts, then histograms),
  hash the content and write the Parquet snapshot with its profile and manifest to a local
  directory: a file target, no S3 upload.
- pandas: `pd.read_csv(path)` then `frame.describe()` (numeric columns), the floor we compare with.

Time is the child's wall time including interpreter start and imports (both sides pay
them), the median of --repeat interleaved runs; CPU seconds (user + system of all threads)
are printed too, as they depend less on other work running on the machine. Targets: kadence within 2x of pandas' time and under 2 GiB peak RSS.

Usage: python benchmarks/ingest.py [--rows N]
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

TARGET_TIME_RATIO = 2.0
TARGET_RSS_BYTES = 2 << 30


def generate(path: Path, rows: int, seed: int = 1) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    columns: dict[str, object] = {"id": np.arange(rows, dtype=np.int64)}
    for i in range(12):
        values = rng.normal(100 * i, 10 + i, rows).round(4)
        mask = rng.random(rows) < 0.02
        columns[f"f{i}"] = pa.array(values, mask=mask)
    for i in range(3):
        columns[f"n{i}"] = rng.integers(0, 1000 * (i + 1), rows)
    columns["plan"] = pa.array(rng.choice(["basic", "pro", "team", "enterprise"], rows)).dictionary_encode().cast(pa.string())
    columns["country"] = rng.choice([f"c{i:02d}" for i in range(40)], rows)
    columns["active"] = rng.random(rows) < 0.4
    start = np.datetime64("2023-01-01T00:00:00")
    stamps = start + rng.integers(0, 3 * 365 * 86400, rows).astype("timedelta64[s]")
    columns["signup"] = pa.array(np.datetime_as_string(stamps, unit="s"))
    pacsv.write_csv(pa.table(columns), str(path))


def schema_task(path: Path, rows: int) -> dict:
    columns = [{"name": "id", "type": "int", "nullable": False, "min": 0}]
    columns += [{"name": f"f{i}", "type": "float"} for i in range(12)]
    columns += [{"name": f"n{i}", "type": "int", "min": 0, "max": 1000 * (i + 1)} for i in range(3)]
    columns += [{"name": "plan", "type": "category", "allowedValues": ["basic", "pro", "team", "enterprise"]},
                {"name": "country", "type": "category"}, {"name": "active", "type": "bool"},
                {"name": "signup", "type": "datetime"}]
    return {"namespace": "bench", "name": "ingest", "spec": {
        "source": {"uri": path.as_uri()}, "format": "csv",
        "schema": {"columns": columns, "entityColumn": "id"},
        "quality": {"minRows": rows, "maxMissingFraction": 0.05, "maxDuplicateFraction": 0.0}}}


def child_pandas(path: str) -> None:
    import pandas as pd

    frame = pd.read_csv(path)
    summary = frame.describe()
    print(json.dumps({"rows": len(frame), "summarized": len(summary.columns)}))


def child_kadence(task_path: str, output: str) -> None:
    """What `kadence ingest --task T --no-store --output DIR` runs, without the CLI's start-up
    (argparse and the other subcommands' modules)."""
    from kadence.workloads.data_tasks import IngestTask
    from kadence.workloads.ingest_run import ingest

    task = IngestTask.model_validate(json.loads(Path(task_path).read_text()))
    result = ingest(task, None, write=False, output_dir=Path(output))
    print(json.dumps(result.model_dump(by_alias=True, mode="json")))


def measure(argv: list[str]) -> tuple[float, float, int, str]:
    """(wall seconds, CPU seconds (user + system, all threads), peak RSS bytes, stdout) of one child."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    if process.returncode != 0:
        raise SystemExit(f"{argv} failed with {process.returncode}:\n{text[-3000:]}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024, text  # ru_maxrss: KiB on Linux


def median_run(runs: list[tuple]) -> tuple:
    """The run with the median wall time; peak RSS is the largest of all runs."""
    ordered = sorted(runs, key=lambda run: run[0])
    wall, cpu, _, text = ordered[len(ordered) // 2]
    return wall, cpu, max(run[2] for run in runs), text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="Runs per side; the median wall time counts.")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        child_pandas(*rest) if kind == "pandas" else child_kadence(*rest)
        return 0

    with tempfile.TemporaryDirectory(prefix="kadence-bench-") as tmp:
        tmp_path = Path(tmp)
        data = tmp_path / "data.csv"
        started = time.perf_counter()
        generate(data, args.rows)
        print(f"generated {args.rows:,} rows x 20 columns, {data.stat().st_size / 2**20:.0f} MiB of CSV "
              f"in {time.perf_counter() - started:.1f} s")
        task = tmp_path / "task.json"
        task.write_text(json.dumps(schema_task(data, args.rows)))
        me = [sys.executable, __file__, "--child"]
        load_before = os.getloadavg()[0]
        pandas_runs, kadence_runs = [], []
        for _ in range(args.repeat):  # interleaved, so load from other work hits both sides alike
            pandas_runs.append(measure(me + ["pandas", str(data)]))
            kadence_runs.append(measure(me + ["kadence", str(task), str(tmp_path / "snapshot")]))
        pandas_time, pandas_cpu, pandas_rss, _ = median_run(pandas_runs)
        kadence_time, kadence_cpu, kadence_rss, output = median_run(kadence_runs)
        result = json.loads(output.strip().splitlines()[-1])
        if result.get("outcome") != "Valid" or result.get("rows") != args.rows:
            raise SystemExit(f"kadence ingest did not succeed: {result.get('message')}")
        snapshot = sum(p.stat().st_size for p in (tmp_path / "snapshot").iterdir())

    print(f"{'side':<44}{'seconds':>9}{'rows/s':>13}{'CPU s':>8}{'peak RSS':>12}")
    for name, seconds, cpu, rss in (
            ("pandas read_csv + describe", pandas_time, pandas_cpu, pandas_rss),
            ("kadence ingest (validate, profile, snapshot)", kadence_time, kadence_cpu, kadence_rss)):
        print(f"{name:<44}{seconds:>9.2f}{args.rows / seconds:>13,.0f}{cpu:>8.2f}{rss / 2**20:>9.0f} MiB")
    print(f"median of {args.repeat} interleaved runs per side; machine: {os.cpu_count()} CPUs, "
          f"load average {load_before:.1f} before the runs "
          "(other work on the machine slows both sides; compare CPU seconds as well)")
    print(f"kadence: version {result['version']}, {len(result['ruleResults'])} rules passed, "
          f"snapshot {snapshot / 2**20:.0f} MiB (local file target, no S3 upload)")
    ratio = kadence_time / pandas_time
    time_ok, rss_ok = ratio <= TARGET_TIME_RATIO, kadence_rss <= TARGET_RSS_BYTES
    print(f"time: {ratio:.2f}x pandas (target <= {TARGET_TIME_RATIO}x) {'PASS' if time_ok else 'FAIL'}; "
          f"peak RSS: {kadence_rss / 2**30:.2f} GiB (target < 2 GiB) {'PASS' if rss_ok else 'FAIL'}")
    print("verdict:", "PASS" if time_ok and rss_ok else "FAIL")
    return 0 if time_ok and rss_ok else 1


if __name__ == "__main__":
    sys.exit(main())
