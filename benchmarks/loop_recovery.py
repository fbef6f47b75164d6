"""Loop recovery with labels that come back late (issue 15): the demo's churn stream with its
relationship drifting and each month's ground truth sent one month after its predictions,
12 months through the sandbox, for the base commit (a `git worktree` of 9672e38, today's main
when the issue was filed) and for this checkout, in the same invocation, beside an offline
ceiling: a model retrained every month on the labels of the three months before it.

Each side is `kadence demo`'s own driver (kadence.demo.loop) in a child process whose
PYTHONPATH selects the code: the sandbox, the operator, the Jobs and the model servers all run
that side's Kadence. The base has no --label-delay, so its child wraps the base driver: the
same seeded stream (this checkout's kadence/demo/scenario.py, loaded by path) and the same
feedback timing (the ground truth of month m is sent as month m+1 begins). Both sides send
exactly the same rows; the served answers go to answers.csv and F1 is computed here.

Printed per month: the new segment's share, the served F1 of the ceiling, the base and the
new code; then per side the retrains started (month), the retrains on nothing new (a retrained
ModelVersion whose Dataset and FeatureSet versions equal an earlier version's), the retrain
decisions held for having nothing new (new code), the first breach and promotion and the time
between them, and the mean served F1 over the months after the first breach against the
ceiling's. Target: within 0.05 of the ceiling; zero retrains on nothing new.

    .venv/bin/python benchmarks/loop_recovery.py [--months 12] [--interval 15s] [--only new|base]

Takes about 10 minutes a side on 2 cores (setup, 12 months of one monitor interval plus the
log flush each); the worktree and the outputs stay in --workdir (default /tmp/kadence-loop-recovery).
"""

from __future__ import annotations

import argparse
import csv
import functools
import importlib.util
import io
import json
import math
import os
import subprocess
import sys
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASE_COMMIT = "9672e38"
DELAY = 1
WINDOW_MONTHS = 3  # the ceiling's training window
PART_ROWS = 40  # kadence.demo.loop.PART_ROWS in both versions: the stream is drawn in parts of 40 rows


def load_stream():
    """This checkout's scenario module, standalone (it needs numpy and pandas only)."""
    spec = importlib.util.spec_from_file_location("kadence_stream", REPO / "operator/kadence/demo/scenario.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["kadence_stream"] = module
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- one side, in its own process


def wrap_base(loop, report) -> list[tuple]:
    """Give the base driver the delayed-label drifting stream; returns the list answers go to."""
    stream = load_stream()
    loop.Scenario = functools.partial(stream.Scenario, concept_drift=True)
    answers: list[tuple] = []
    record = report.Month.record

    def recording(month, labels, predictions, version):
        answers.extend((month.month, "", label, prediction, version) for label, prediction in zip(labels, predictions))
        record(month, labels, predictions, version)

    report.Month.record = recording

    def send_feedback(self, month):
        held = self.__dict__.setdefault("_held", [])
        held += [(month.month, item) for item in self._feedback]
        self._feedback = []
        due = [item for predicted, item in held if predicted <= month.month - DELAY]
        if not due:
            return
        try:
            for start in range(0, len(due), 500):
                self.traffic.feedback(due[start:start + 500])
        except Exception:  # noqa: BLE001 - the base driver counts a failed post as an error and retries
            month.errors += 1
            return
        self._held = [(predicted, item) for predicted, item in held if predicted > month.month - DELAY]

    loop.Runner._send_feedback = send_feedback
    return answers


def kubectl_json(state: Path, *args: str) -> dict:
    kubectl = Path(sys.executable).parent / "kubectl"
    done = subprocess.run([str(kubectl), *args, "-n", "kadence-demo", "-o", "json"], capture_output=True, text=True,
                          env={**os.environ, "KUBECONFIG": str(state / "kubeconfig")}, timeout=120)
    return json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr}


def side(args) -> int:
    from kadence.demo import loop, report
    from kadence.sandbox.cli import stop_all

    out, state = Path(args.out), Path(args.state)
    answers = wrap_base(loop, report) if args.side == "base" else None
    options = {"label_delay": DELAY} if args.side == "new" else {}
    # timeout 1 s: no extra months after the last one, whatever the loop did.
    settings = loop.Settings(months=args.months, interval_s=args.interval, seed=args.seed, output_dir=out,
                             keep_running=True, state_dir=state, timeout_s=1.0, **options)
    started = time.time()
    try:
        code = loop.run_demo(settings)
    except loop.DemoError as error:
        print(f"{args.side}: {error}", file=sys.stderr)
        code = 1
    finally:
        cluster = {kind: kubectl_json(state, "get", kind) for kind in ("trainingruns", "modelversions",
                                                                        "monitorpolicies", "datasets")}
        (out / "cluster.json").write_text(json.dumps(cluster, indent=1))
        stop_all(state, out=io.StringIO())
    if answers is not None:
        (out / "answers.csv").write_text(report.answers_csv(answers) if hasattr(report, "answers_csv") else
                                         "month,row_id,label,prediction,version\n"
                                         + "".join(",".join(map(str, a)) + "\n" for a in answers))
    (out / "side.json").write_text(json.dumps({"side": args.side, "exit": code, "seconds": time.time() - started}))
    return 0


# ---------------------------------------------------------------- the parent: run both, compare


def worktree(path: Path) -> Path:
    if not (path / "operator" / "kadence").is_dir():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), BASE_COMMIT], check=True,
                       capture_output=True)
    return path


def run_side(name: str, code_root: Path, workdir: Path, args) -> Path:
    out, state = workdir / f"{name}-out", workdir / f"{name}-state"
    subprocess.run(["rm", "-rf", str(out), str(state)], check=True)
    out.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(code_root / "operator"), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, str(Path(__file__).resolve()), "--side", name, "--out", str(out), "--state", str(state),
               "--months", str(args.months), "--interval", f"{args.interval}s", "--seed", str(args.seed)]
    print(f"== {name}: {code_root} (load {os.getloadavg()[0]:.1f}) ...", flush=True)
    with (workdir / f"{name}.log").open("w") as log:
        subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=workdir, timeout=3600)
    print(f"   done (load {os.getloadavg()[0]:.1f}); log {workdir / f'{name}.log'}", flush=True)
    return out


def served_f1(out: Path) -> dict[int, tuple[float, int]]:
    """{month: (F1 of the served answers, rows)} from answers.csv."""
    from sklearn.metrics import f1_score

    labels, predictions = defaultdict(list), defaultdict(list)
    path = out / "answers.csv"
    if not path.exists():
        return {}
    with path.open() as handle:
        for row in csv.DictReader(handle):
            labels[int(row["month"])].append(int(row["label"]))
            predictions[int(row["month"])].append(int(row["prediction"]))
    return {m: (float(f1_score(labels[m], predictions[m], zero_division=0.0)), len(labels[m])) for m in labels}


def month_rows(stream, scenario, month: int, rows: int):
    """The rows the demo sent in `month`: its parts of PART_ROWS, in order, cut at `rows`."""
    import pandas as pd

    parts = [scenario.month(month, PART_ROWS, part) for part in range(math.ceil(rows / PART_ROWS))]
    return pd.concat(parts, ignore_index=True).iloc[:rows] if parts else None


def ceiling(stream, months: int, seed: int, rows: dict[int, int]) -> dict[int, float]:
    """F1 per month of a model retrained every month on the labels of the three months before."""
    import pandas as pd
    from sklearn.compose import make_column_transformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import f1_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    scenario = stream.Scenario(months=months, seed=seed, concept_drift=True)
    frames = {m: month_rows(stream, scenario, m, rows.get(m, 300) or 300) for m in range(months)}
    scores = {}
    for month in range(1, months):
        train = pd.concat([frames[m] for m in range(max(0, month - WINDOW_MONTHS), month)], ignore_index=True)
        model = make_pipeline(make_column_transformer((OneHotEncoder(handle_unknown="ignore"), ["contract"]),
                                                      remainder="passthrough"),
                              RandomForestClassifier(n_estimators=100, max_depth=8, random_state=0, n_jobs=1))
        model.fit(train.drop(columns=[stream.TARGET]), train[stream.TARGET])
        test = frames[month]
        scores[month] = float(f1_score(test[stream.TARGET], model.predict(test.drop(columns=[stream.TARGET]))))
    return scores


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    parse = lambda t: datetime.fromisoformat(t.replace("Z", "+00:00"))  # noqa: E731
    return (parse(end) - parse(start)).total_seconds()


def facts(out: Path) -> dict:
    """What one side did: retrains, retrains on nothing new, breach, promotion."""
    record = json.loads((out / "demo.json").read_text()) if (out / "demo.json").exists() else {}
    cluster = json.loads((out / "cluster.json").read_text()) if (out / "cluster.json").exists() else {}
    events = record.get("events") or []
    retrain_months = [e["month"] for e in events if e["kind"] == "RetrainStarted"]
    held = [e["month"] for e in events if e["kind"] == "NothingNewToLearn"]
    versions = sorted((cluster.get("modelversions") or {}).get("items") or [],
                      key=lambda v: v["spec"].get("version", 0))
    seen, nothing_new = set(), 0
    for version in versions:
        lineage = version["spec"].get("lineage") or {}
        inputs = (lineage.get("datasetVersion"), lineage.get("featureSetVersion"))
        if version["spec"].get("version", 0) > 1 and inputs in seen:
            nothing_new += 1
        seen.add(inputs)
    breach, promotion = record.get("breach"), record.get("promotion")
    return {"retrains": retrain_months, "nothing_new": nothing_new, "held": held,
            "breach": breach and breach["month"], "promotion": promotion and promotion["month"],
            "breach_to_promotion_s": _seconds(breach and breach["time"], promotion and promotion["time"]),
            "closed": record.get("closed"), "message": record.get("message", "no demo.json (see the log)")}


def compare(workdir: Path, months: int, seed: int, sides: list[str]) -> None:
    stream = load_stream()
    served = {name: served_f1(workdir / f"{name}-out") for name in sides}
    rows = {m: n for m, (_, n) in (served.get("new") or served.get(sides[0]) or {}).items()}
    best = ceiling(stream, months, seed, rows)
    found = {name: facts(workdir / f"{name}-out") for name in sides}
    scenario = stream.Scenario(months=months, seed=seed, concept_drift=True)
    header = f"{'month':>5} {'segment':>7} {'ceiling':>8}" + "".join(f" {name:>8}" for name in sides)
    print("\nserved F1 per month (labels one month late, churn's rule drifting until the crossing):")
    print(header)
    for month in range(months):
        cells = "".join(f" {served[name][month][0]:8.3f}" if month in served[name] else f" {'-':>8}"
                        for name in sides)
        top = f"{best[month]:8.3f}" if month in best else f"{'-':>8}"
        print(f"{month:>5} {scenario.share(month):7.0%} {top}{cells}")
    reference = next((found[n]["breach"] for n in ("new", *sides) if n in found and found[n]["breach"] is not None),
                     scenario.crossing + DELAY)
    after = [m for m in range(reference + 1, months)]
    print(f"\nmean served F1 over months {after[0]}-{after[-1]} (after the first breach, month {reference}):")
    ceiling_mean = sum(best[m] for m in after) / len(after)
    print(f"  ceiling  {ceiling_mean:.3f}")
    for name in sides:
        values = [served[name][m][0] for m in after if m in served[name]]
        mean = sum(values) / len(values) if values else float("nan")
        verdict = "met" if values and mean >= ceiling_mean - 0.05 else "MISSED"
        print(f"  {name:<8} {mean:.3f}  ({mean - ceiling_mean:+.3f} vs the ceiling; target within 0.05: {verdict})")
    print("\nper side:")
    for name in sides:
        f = found[name]
        gap = "-" if f["breach_to_promotion_s"] is None else f"{f['breach_to_promotion_s']:.0f} s"
        print(f"  {name}: retrains started in months {f['retrains'] or '-'}; retrains on nothing new: "
              f"{f['nothing_new']}; decisions held for nothing new: {len(f['held'])}; first breach month "
              f"{f['breach']}, promotion month {f['promotion']}, breach to promotion {gap}; "
              f"loop closed: {f['closed']} ({f['message']})")
    print(f"\nload average now: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--interval", default="15s", help="The MonitorPolicy's interval, in seconds (15s).")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/kadence-loop-recovery"))
    parser.add_argument("--only", choices=("base", "new"), help="Run one side only (the other's output is reused "
                                                                "if present).")
    parser.add_argument("--compare-only", action="store_true", help="Only print the table from earlier outputs.")
    parser.add_argument("--side", choices=("base", "new"), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--state", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.interval = int(str(args.interval).rstrip("s"))
    if args.side:
        return side(args)
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"loop recovery: {args.months} months, labels {DELAY} month late, interval {args.interval}s, seed "
          f"{args.seed}; base {BASE_COMMIT} vs this checkout; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    if not args.compare_only:
        if args.only != "new":
            run_side("base", worktree(args.workdir / "base-worktree"), args.workdir, args)
        if args.only != "base":
            run_side("new", REPO, args.workdir, args)
    sides = [name for name in ("base", "new") if (args.workdir / f"{name}-out" / "answers.csv").exists()]
    if not sides:
        print("no side produced answers; see the logs in", args.workdir)
        return 1
    compare(args.workdir, args.months, args.seed, sides)
    return 0


if __name__ == "__main__":
    sys.exit(main())
