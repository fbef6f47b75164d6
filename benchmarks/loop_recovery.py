"""Loop recovery with labels that come back late (issue 15): the demo's churn stream with its
relationship drifting and each month's ground truth sent one month after its predictions,
12 months through the sandbox, for the base commit (a `git worktree` of 9672e38, today's main
when the issue was filed) and for this checkout, in the same invocation, beside an offline
ceiling: a model retrained every month on the labels of the three months before it.

Each side is `kadence demo`'s own driver (kadence.demo.loop) in a child process whose
PYTHONPATH selects the code: the sandbox, the operator, the Jobs and the model servers all run
that side's Kadence. The base has no --label-delay, so its child wraps the base driver: the
same seeded stream (this checkout's kadence/demo/scenario.py, loaded by path) and the same
feedback timing (the ground truth of month m is sent as month m+1 begins). Each child writes
every row it got an answer for to served.csv (inputs, label, prediction, answering version);
served F1 and the ceiling are computed from those very rows.

Months are compressed: a real month of loans outlasts a retrain, a verdict, a canary and a
rollout by orders of magnitude, a month here lasts under a minute of traffic. With a label
delay the new driver keeps a month open while the loop's step is in flight (a retrain decided
or running, a candidate awaiting its verdict, a canary, a rollout; at most 10 minutes more;
kadence.demo.loop.Runner._held_open), and its traffic goes on meanwhile. The base driver holds
nothing. The table shows each month's wall seconds and the seconds it was held open, so the
compression is visible.

Printed per month: the new segment's share, the ceiling's F1 and a depth-2 tree's (how
separable the stream is), the served F1 of each side, each side's month seconds, held seconds,
rows and answering versions; then per side the retrains started (month), the retrains on
nothing new (a retrained ModelVersion whose Dataset and FeatureSet versions equal an earlier
version's), the retrain decisions held for having nothing new, the first breach and promotion
and the time between them, and the mean served F1 over the months after the first breach
against the ceiling's on the same rows. Target: within 0.05 of the ceiling; zero retrains on
nothing new.

    .venv/bin/python benchmarks/loop_recovery.py [--months 12] [--interval 15s] [--only new|base]

Takes 10-20 minutes a side on 2 cores (setup, 12 months of one monitor interval plus the log
flush each, the held time); the worktree and the outputs stay in --workdir (default
/tmp/kadence-loop-recovery).
"""

from __future__ import annotations

import argparse
import csv
import functools
import importlib.util
import io
import json
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
NEW_TIMEOUT_S = 2700.0  # this checkout's month loop, held months included
INPUT_COLUMNS = ("tenure_months", "monthly_charges", "support_calls", "contract")
TARGET_COLUMN = "churned"


def load_stream():
    """This checkout's scenario module, standalone (it needs numpy and pandas only)."""
    spec = importlib.util.spec_from_file_location("kadence_stream", REPO / "operator/kadence/demo/scenario.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["kadence_stream"] = module
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- one side, in its own process


def wrap_base(loop) -> None:
    """Give the base driver the delayed-label drifting stream and this benchmark's feedback timing."""
    stream = load_stream()
    loop.Scenario = functools.partial(stream.Scenario, concept_drift=True)

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


def record_rows(loop, report, out: Path) -> None:
    """Write every answered row (month, inputs, label, prediction, answering version, whether its
    month was held open by then) to served.csv, and each month's wall seconds and seconds held
    open to months.json, by wrapping the side's own driver (both versions have
    Runner._send(month, rows, original), Runner.run_month(index) and Month.record(labels,
    predictions, version)). Served F1 and the ceiling are computed on exactly these rows."""
    served = (out / "served.csv").open("w", newline="")
    writer = csv.writer(served)
    writer.writerow(["month", *INPUT_COLUMNS, "label", "prediction", "version", "held"])
    months: list[dict] = []
    holds: dict[int, float] = {}  # month -> when the driver first held it open
    answered: list[tuple[list[int], str]] = []  # what Month.record got during one _send
    send, run_month, record = loop.Runner._send, loop.Runner.run_month, report.Month.record
    held_open = getattr(loop.Runner, "_held_open", None)  # the base has none: its months are never held

    def recording(self, labels, predictions, version):
        answered.append((predictions, version))
        record(self, labels, predictions, version)

    def sending(self, month, rows, original):
        answered.clear()
        send(self, month, rows, original)
        for predictions, version in answered:  # nothing when the request failed
            for (_, row), prediction in zip(rows.iterrows(), predictions):
                writer.writerow([month.month, *(row[c] for c in INPUT_COLUMNS), int(row[TARGET_COLUMN]),
                                 int(prediction), version, int(month.month in holds)])

    def running_month(self, index):
        started = time.monotonic()
        month = run_month(self, index)
        ended = time.monotonic()
        held_at = holds.get(index)
        months.append({"month": index, "seconds": round(ended - started, 1),
                       "heldSeconds": round(ended - held_at, 1) if held_at is not None else 0.0,
                       "rows": month.rows})
        served.flush()
        (out / "months.json").write_text(json.dumps(months, indent=1))
        return month

    def holding(self, month, *args, **kwargs):
        busy = held_open(self, month, *args, **kwargs)
        if busy and month.month not in holds:
            holds[month.month] = time.monotonic()
        return busy

    report.Month.record, loop.Runner._send, loop.Runner.run_month = recording, sending, running_month
    if held_open is not None:
        loop.Runner._held_open = holding


def kubectl_json(state: Path, *args: str) -> dict:
    kubectl = Path(sys.executable).parent / "kubectl"
    done = subprocess.run([str(kubectl), *args, "-n", "kadence-demo", "-o", "json"], capture_output=True, text=True,
                          env={**os.environ, "KUBECONFIG": str(state / "kubeconfig")}, timeout=120)
    return json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr}


def side(args) -> int:
    from kadence.demo import loop, report
    from kadence.sandbox.cli import stop_all

    out, state = Path(args.out), Path(args.state)
    if args.side == "base":
        wrap_base(loop)
    record_rows(loop, report, out)
    # The base's --timeout bounds only the months after the last (1 s: none); this checkout's bounds
    # the whole month loop, held months included (the months after the last are not compared).
    options = {"label_delay": DELAY, "timeout_s": NEW_TIMEOUT_S} if args.side == "new" else {"timeout_s": 1.0}
    settings = loop.Settings(months=args.months, interval_s=args.interval, seed=args.seed, output_dir=out,
                             keep_running=True, state_dir=state, **options)
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


def served_rows(out: Path):
    """The rows one side answered (served.csv), in the order it sent them."""
    import pandas as pd

    path = out / "served.csv"
    return pd.read_csv(path) if path.exists() else None


def served_f1(rows) -> dict[int, tuple[float, int]]:
    """{month: (F1 of the served answers, rows)}."""
    from sklearn.metrics import f1_score

    return {int(m): (float(f1_score(g["label"], g["prediction"], zero_division=0.0)), len(g))
            for m, g in rows.groupby("month")}


def ceiling(rows, months: int) -> dict[str, dict[int, float]]:
    """F1 per month of offline references, trained and scored on the very rows the side served
    (their labels, without the loop's delay or any verification):
    - ceiling: a random forest retrained every month on the labels of the three months before;
    - verified: the ceiling's model served a month later (month p gets the model of months p-4
      to p-2): the price of scoring each model on labels its training did not see before it
      serves (issue 15.4) when labels come in monthly batches;
    - depth-2 tree: the ceiling's window with a depth-2 decision tree, to show how separable the
      stream is."""
    from sklearn.compose import make_column_transformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import f1_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder
    from sklearn.tree import DecisionTreeClassifier

    forest = lambda: RandomForestClassifier(n_estimators=100, max_depth=8, random_state=0, n_jobs=1)  # noqa: E731
    references = {"ceiling": (forest, 0), "verified": (forest, 1),
                  "depth-2 tree": (lambda: DecisionTreeClassifier(max_depth=2, random_state=0), 0)}
    scores: dict[str, dict[int, float]] = {name: {} for name in references}
    inputs = list(INPUT_COLUMNS)
    for month in range(1, months):
        test = rows[rows["month"] == month]
        for name, (learner, lag) in references.items():
            end = month - lag
            train = rows[(rows["month"] >= end - WINDOW_MONTHS) & (rows["month"] < end)]
            if train.empty or test.empty or train["label"].nunique() < 2:
                continue
            model = make_pipeline(make_column_transformer((OneHotEncoder(handle_unknown="ignore"), ["contract"]),
                                                          remainder="passthrough"), learner())
            model.fit(train[inputs], train["label"])
            scores[name][month] = float(f1_score(test["label"], model.predict(test[inputs]), zero_division=0.0))
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


def mean_of(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def month_times(out: Path) -> dict[int, dict]:
    path = out / "months.json"
    return {m["month"]: m for m in json.loads(path.read_text())} if path.exists() else {}


def compare(workdir: Path, months: int, seed: int, sides: list[str]) -> None:
    stream = load_stream()
    rows = {name: served_rows(workdir / f"{name}-out") for name in sides}
    served = {name: served_f1(rows[name]) for name in sides}
    reference_side = "new" if "new" in sides else sides[0]
    bests = {name: ceiling(rows[name], months) for name in sides}
    times = {name: month_times(workdir / f"{name}-out") for name in sides}
    found = {name: facts(workdir / f"{name}-out") for name in sides}
    scenario = stream.Scenario(months=months, seed=seed, concept_drift=True)
    print(f"\nserved F1 per month (labels one month late, churn's rule drifting until the crossing); the ceiling, "
          f"verified and depth-2 references on the {reference_side} side's rows; s: the month's wall seconds, held: "
          f"the seconds it was held open while the loop's step (retrain, verdict, canary, rollout) was in flight:")
    header = f"{'month':>5} {'segment':>7} {'ceiling':>8} {'verified':>8} {'depth-2':>8}"
    header += "".join(f" {name:>8}" for name in sides)
    header += "".join(f" {name + ' s':>7} {'held':>6} {'rows':>5} {'versions':<18}" for name in sides)
    print(header)
    for month in range(months):
        cells = "".join(f" {served[name][month][0]:8.3f}" if month in served[name] else f" {'-':>8}"
                        for name in sides)
        top = "".join(f" {bests[reference_side][k][month]:8.3f}" if month in bests[reference_side][k]
                      else f" {'-':>8}" for k in ("ceiling", "verified", "depth-2 tree"))
        for name in sides:
            t = times[name].get(month, {})
            answering = rows[name][rows[name]["month"] == month]["version"].value_counts().sort_index()
            versions = ", ".join(f"v{v}:{n}" for v, n in answering.items())
            cells += f" {t.get('seconds', 0):7.0f} {t.get('heldSeconds', 0):6.0f} {t.get('rows', 0):5d} {versions:<18}"
        print(f"{month:>5} {scenario.share(month):7.0%}{top}{cells}")
    reference = next((found[n]["breach"] for n in ("new", *sides) if n in found and found[n]["breach"] is not None),
                     scenario.crossing + DELAY)
    after = [m for m in range(reference + 1, months)]
    print(f"\nmean served F1 over months {after[0]}-{after[-1]} (after the first breach, month {reference}):")
    for name in sides:
        means = {k: mean_of([v[m] for m in after if m in v]) for k, v in bests[name].items()}
        mean = mean_of([served[name][m][0] for m in after if m in served[name]])
        verdict = "met" if mean >= means["ceiling"] - 0.05 else "MISSED"
        print(f"  {name:<5} {mean:.3f}; on its rows: ceiling {means['ceiling']:.3f}, verified "
              f"{means['verified']:.3f}, depth-2 tree {means['depth-2 tree']:.3f}; "
              f"{mean - means['ceiling']:+.3f} vs the ceiling, target within 0.05: {verdict}")
    print("\nper side:")
    for name in sides:
        f = found[name]
        gap = "-" if f["breach_to_promotion_s"] is None else f"{f['breach_to_promotion_s']:.0f} s"
        held = sum(t.get("heldSeconds", 0) for t in times[name].values())
        total = sum(t.get("seconds", 0) for t in times[name].values())
        print(f"  {name}: retrains started in months {f['retrains'] or '-'}; retrains on nothing new: "
              f"{f['nothing_new']}; decisions held for nothing new: {len(f['held'])}; first breach month "
              f"{f['breach']}, promotion month {f['promotion']}, breach to promotion {gap}; months held open "
              f"{held:.0f} s of {total:.0f} s; loop closed: {f['closed']} ({f['message']})")
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
    sides = [name for name in ("base", "new") if (args.workdir / f"{name}-out" / "served.csv").exists()]
    if not sides:
        print("no side produced answers; see the logs in", args.workdir)
        return 1
    compare(args.workdir, args.months, args.seed, sides)
    return 0


if __name__ == "__main__":
    sys.exit(main())
