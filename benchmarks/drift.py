"""Drift detection: Kadence against Evidently's DataDriftPreset on the same data, same run.

Reference and current windows of 100,000 rows x 20 numeric features (standard normal,
seeded); the current window is shifted by +0.5 sigma in 5 features. Both sides read the
same Parquet files (written once under benchmarks/.cache/drift/). Evidently 0.7 needs
pandas<3, so it runs in its own virtualenv (benchmarks/.venvs/evidently, created on first
use with pip) in a subprocess; only `Report.run` is timed there, only the drift evaluation
here (reference built from the raw sample, then every feature judged). Both must flag the
same 5 features.

    .venv/bin/python benchmarks/drift.py [--repeats 3]

Kadence "full" runs every numeric method a policy can enable (psi, ks, wasserstein,
jensenshannon), each over all features, building the reference and preparing the window
once; "default" is what a policy with no method runs (psi). Medians of the repeats; the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache" / "drift"
EVIDENTLY_VENV = HERE / ".venvs" / "evidently"
EVIDENTLY_REQUIREMENTS = ["evidently>=0.7.23,<0.8", "pandas<3", "pyarrow"]
NUMERIC_METHODS = ("psi", "ks", "wasserstein", "jensenshannon")

EVIDENTLY_SCRIPT = r"""
import json, statistics, sys, time
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset

reference = pd.read_parquet(sys.argv[1])
current = pd.read_parquet(sys.argv[2])
repeats = int(sys.argv[3])
seconds = []
for _ in range(repeats):
    started = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(current, reference)
    seconds.append(time.perf_counter() - started)
flagged, methods = [], set()
for metric in snapshot.dict()["metrics"]:
    config = metric["config"]
    if not config["type"].endswith("ValueDrift"):
        continue
    method, threshold, value = config["method"], config["threshold"], metric["value"]
    methods.add(method)
    # p-value methods drift below the threshold, distances at or above it (Evidently's rule)
    is_test = "p_value" in method or "test" in method.lower()
    if (value < threshold) if is_test else (value >= threshold):
        flagged.append(config["column"])
import evidently
print(json.dumps({"seconds": seconds, "flagged": sorted(flagged), "methods": sorted(methods),
                  "version": evidently.__version__, "pandas": pd.__version__}))
"""


def make_data(rows: int, features: int, shifted: int, seed: int) -> tuple[Path, Path]:
    CACHE.mkdir(parents=True, exist_ok=True)
    reference_path = CACHE / f"reference-{rows}x{features}-s{seed}.parquet"
    current_path = CACHE / f"current-{rows}x{features}-{shifted}shifted-s{seed}.parquet"
    if not (reference_path.exists() and current_path.exists()):
        import numpy as np
        import pandas as pd

        rng = np.random.default_rng(seed)
        columns = [f"f{i:02d}" for i in range(features)]
        reference = pd.DataFrame(rng.normal(0, 1, (rows, features)), columns=columns)
        current = pd.DataFrame(rng.normal(0, 1, (rows, features)), columns=columns)
        current.iloc[:, :shifted] += 0.5
        reference.to_parquet(reference_path)
        current.to_parquet(current_path)
    return reference_path, current_path


def ensure_evidently() -> Path:
    python = EVIDENTLY_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {EVIDENTLY_VENV} (once) ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(EVIDENTLY_VENV)], check=True)
    probe = subprocess.run([str(python), "-c", "import evidently, pandas"], capture_output=True)
    if probe.returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *EVIDENTLY_REQUIREMENTS], check=True)
    return python


def run_evidently(reference: Path, current: Path, repeats: int) -> dict:
    python = ensure_evidently()
    done = subprocess.run([str(python), "-c", EVIDENTLY_SCRIPT, str(reference), str(current), str(repeats)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"Evidently failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_kadence(reference_path: Path, current_path: Path, repeats: int) -> dict:
    import pandas as pd

    sys.path.insert(0, str(HERE.parent / "operator"))
    from kadence.domain.monitoring.drift import CurrentWindow, DriftSettings, evaluate_drift, reference_from_sample

    reference_frame = pd.read_parquet(reference_path)
    current_frame = pd.read_parquet(current_path)
    # warm up: imports (scipy.stats) and first-call costs are not part of an evaluation
    warm = reference_from_sample(reference_frame.head(1000))
    for method in NUMERIC_METHODS:
        evaluate_drift(warm, current_frame.head(1000), DriftSettings(method=method))

    full_seconds, default_seconds = [], []
    flagged_by_method: dict[str, list[str]] = {}
    for _ in range(repeats):
        started = time.perf_counter()
        reference = reference_from_sample(reference_frame)
        window = CurrentWindow(current_frame)  # each column sorted once for all methods
        for method in NUMERIC_METHODS:
            result = evaluate_drift(reference, window, DriftSettings(method=method))
            flagged_by_method[method] = result.drifted_features
        full_seconds.append(time.perf_counter() - started)

        started = time.perf_counter()
        reference = reference_from_sample(reference_frame)
        default = evaluate_drift(reference, current_frame, DriftSettings())
        default_seconds.append(time.perf_counter() - started)
    return {"full": full_seconds, "default": default_seconds, "flagged_by_method": flagged_by_method,
            "default_flagged": default.drifted_features}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--shifted", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    reference_path, current_path = make_data(args.rows, args.features, args.shifted, args.seed)
    expected = [f"f{i:02d}" for i in range(args.shifted)]
    kadence = run_kadence(reference_path, current_path, args.repeats)
    evidently = run_evidently(reference_path, current_path, args.repeats)

    full = statistics.median(kadence["full"])
    default = statistics.median(kadence["default"])
    rival = statistics.median(evidently["seconds"])
    print(f"drift: {args.rows:,} reference vs {args.rows:,} current rows x {args.features} numeric features, "
          f"+0.5 sigma shift in {args.shifted}; median of {args.repeats}")
    print(f"{'':38} {'seconds':>8}  flagged")
    rows = [(f"Kadence full ({', '.join(NUMERIC_METHODS)})", full,
             "; ".join(f"{m}: {','.join(f)}" for m, f in kadence["flagged_by_method"].items())),
            ("Kadence default (psi)", default, ",".join(kadence["default_flagged"])),
            (f"Evidently {evidently['version']} DataDriftPreset", rival,
             f"{','.join(evidently['flagged'])} [{', '.join(evidently['methods'])}]")]
    for name, seconds, flagged in rows:
        print(f"{name:38} {seconds:8.3f}  {flagged}")
    print(f"speed-up vs Evidently: full {rival / full:.1f}x, default {rival / default:.1f}x")

    problems = []
    for method, flagged in kadence["flagged_by_method"].items():
        if flagged != expected:
            problems.append(f"Kadence {method} flagged {flagged}, expected {expected}")
    if evidently["flagged"] != expected:
        problems.append(f"Evidently flagged {evidently['flagged']}, expected {expected}")
    if full >= 1.0:
        problems.append(f"Kadence full evaluation took {full:.2f} s (target < 1 s)")
    if rival / full < 10:
        problems.append(f"Kadence full evaluation is only {rival / full:.1f}x faster than Evidently (target 10x)")
    for problem in problems:
        print(f"MISSED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
