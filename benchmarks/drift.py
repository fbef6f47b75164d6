"""Drift detection: Kadence against Evidently's DataDriftPreset on the same data, same run.

Reference and current windows of 100,000 rows x 20 numeric features (standard normal,
seeded); the current window is shifted by +0.5 sigma in 5 features. Both sides read the
same Parquet files (written once under benchmarks/.cache/drift/). Evidently 0.7 needs
pandas<3, so it runs in its own virtualenv (benchmarks/.venvs/evidently, created on first
use with pip) in a subprocess; only `Report.run` is timed there, only the drift evaluation
here (reference built from the raw sample, then every feature judged). Both must flag the
same 5 features.

    .venv/bin/python benchmarks/drift.py [--repeats 3] [--rounds 2]

Kadence "full" runs every numeric method a policy can enable (psi, ks, wasserstein,
jensenshannon), each over all features, building the reference and preparing the window
once (so each column is sorted once); "full, one thread" is the same with the columns judged
one after another (what the algorithm gives apart from threads); "default" is what a policy
with no method runs (psi). The data has no categorical column, so chi-squared is not timed.

The machine is shared and noisy: each round times Kadence then Evidently back to back and
prints the load average before and after; ratios are taken within a round, and the verdict
uses the medians over rounds. Targets: the full evaluation under 1 s and at least 10x faster
than Evidently, both flagging exactly the shifted features. Exit status 1 when one is missed.
"""

from __future__ import annotations

import argparse
import json
import os
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


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f} (1 min) {five:.2f} (5 min) on {os.cpu_count()} cores"


class Kadence:
    def __init__(self, reference_path: Path, current_path: Path):
        import pandas as pd

        sys.path.insert(0, str(HERE.parent / "operator"))
        from kadence.domain.monitoring import drift

        self.drift = drift
        self.reference_frame = pd.read_parquet(reference_path)
        self.current_frame = pd.read_parquet(current_path)
        # warm up: imports (scipy.stats) and first-call costs are not part of an evaluation
        warm = drift.reference_from_sample(self.reference_frame.head(1000))
        for method in NUMERIC_METHODS:
            drift.evaluate_drift(warm, self.current_frame.head(1000), drift.DriftSettings(method=method))

    def threads(self) -> int:
        return min(self.drift._available_cpus(), self.drift.MAX_THREADS)

    def full(self) -> dict[str, list[str]]:
        """Every numeric method over every feature: the reference built and the window prepared
        once (each column sorted once), then one evaluation per method."""
        drift = self.drift
        reference = drift.reference_from_sample(self.reference_frame)
        window = drift.CurrentWindow(self.current_frame)
        return {method: drift.evaluate_drift(reference, window, drift.DriftSettings(method=method)).drifted_features
                for method in NUMERIC_METHODS}

    def default(self) -> list[str]:
        drift = self.drift
        reference = drift.reference_from_sample(self.reference_frame)
        return drift.evaluate_drift(reference, self.current_frame, drift.DriftSettings()).drifted_features

    def run(self, repeats: int) -> dict:
        seconds: dict[str, list[float]] = {"full": [], "full, one thread": [], "default": []}
        flagged = {}
        single = self.drift.PARALLEL_MIN_VALUES
        for _ in range(repeats):
            started = time.perf_counter()
            flagged = self.full()
            seconds["full"].append(time.perf_counter() - started)

            self.drift.PARALLEL_MIN_VALUES = 10**18
            try:
                started = time.perf_counter()
                self.full()
                seconds["full, one thread"].append(time.perf_counter() - started)
            finally:
                self.drift.PARALLEL_MIN_VALUES = single

            started = time.perf_counter()
            default = self.default()
            seconds["default"].append(time.perf_counter() - started)
        return {"seconds": seconds, "flagged_by_method": flagged, "default_flagged": default}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--shifted", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each side per round")
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds of Kadence then Evidently (at least 2: the machine is shared and noisy)")
    args = parser.parse_args(argv)
    if args.rounds < 2 or args.repeats < 1:
        parser.error("measure at least two rounds of at least one run each")

    reference_path, current_path = make_data(args.rows, args.features, args.shifted, args.seed)
    expected = [f"f{i:02d}" for i in range(args.shifted)]
    kadence = Kadence(reference_path, current_path)
    ensure_evidently()
    print(f"drift: {args.rows:,} reference vs {args.rows:,} current rows x {args.features} numeric features, "
          f"+0.5 sigma shift in {args.shifted}; {args.rounds} rounds, median of {args.repeats} runs per side "
          f"per round; Kadence judges columns on {kadence.threads()} threads")

    problems: list[str] = []
    ratios, fulls = [], []
    for round_number in range(1, args.rounds + 1):
        before = load()
        ours = kadence.run(args.repeats)
        theirs = run_evidently(reference_path, current_path, args.repeats)
        after = load()
        medians = {name: statistics.median(values) for name, values in ours["seconds"].items()}
        rival = statistics.median(theirs["seconds"])
        full = medians["full"]
        ratios.append(rival / full)
        fulls.append(full)
        print(f"\nround {round_number}: {before} before, {after} after")
        print(f"  {'':52} {'seconds':>8}  {'vs Evidently':>12}  flagged")
        rows = [(f"Kadence full ({', '.join(NUMERIC_METHODS)})", full,
                 "; ".join(f"{m}: {','.join(f)}" for m, f in ours["flagged_by_method"].items())),
                ("Kadence full, one thread", medians["full, one thread"], "(same)"),
                ("Kadence default (psi)", medians["default"], ",".join(ours["default_flagged"])),
                (f"Evidently {theirs['version']} DataDriftPreset", rival,
                 f"{','.join(theirs['flagged'])} [{', '.join(theirs['methods'])}]")]
        for name, seconds, flagged in rows:
            print(f"  {name:52} {seconds:8.3f}  {rival / seconds:11.1f}x  {flagged}")
        for method, flagged in ours["flagged_by_method"].items():
            if flagged != expected:
                problems.append(f"round {round_number}: Kadence {method} flagged {flagged}, expected {expected}")
        if ours["default_flagged"] != expected:
            problems.append(f"round {round_number}: Kadence psi flagged {ours['default_flagged']}, expected {expected}")
        if theirs["flagged"] != expected:
            problems.append(f"round {round_number}: Evidently flagged {theirs['flagged']}, expected {expected}")

    full, ratio = statistics.median(fulls), statistics.median(ratios)
    same = not any("flagged" in p for p in problems)
    print(f"\nKadence full evaluation, median over rounds: {full:.3f} s; {ratio:.1f}x faster than Evidently")
    print(f"target < 1 s for the full evaluation: {'met' if full < 1.0 else 'MISSED'} ({full:.3f} s)")
    print(f"target >= 10x faster than Evidently: {'met' if ratio >= 10 else 'MISSED'} ({ratio:.1f}x)")
    print(f"both flag exactly the {args.shifted} shifted features ({','.join(expected)}): "
          f"{'yes' if same else 'NO'}")
    if full >= 1.0:
        problems.append(f"Kadence full evaluation took {full:.2f} s (target < 1 s)")
    if ratio < 10:
        problems.append(f"Kadence full evaluation is only {ratio:.1f}x faster than Evidently (target 10x)")
    for problem in problems:
        print(f"MISSED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
