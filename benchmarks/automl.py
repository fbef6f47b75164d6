"""AutoML against real AutoML: Kadence's search beside FLAML and AutoGluon Tabular, GridSearchCV
as a third column.

Rivals in their own virtual environments (created by `--setup`, never in Kadence's):
- FLAML (`pip install "flaml[automl]"`): `AutoML().fit(X, y, task=..., time_budget=B, metric=...,
  n_jobs=THREADS, seed=SEED)`, its defaults otherwise;
- AutoGluon Tabular (`pip install "autogluon.tabular[lightgbm,xgboost,catboost]"`):
  `TabularPredictor(label, problem_type, eval_metric).fit(train, time_limit=B,
  presets="medium_quality", hyperparameters={"GBM": {}, "XGB": {}, "CAT": {}}, num_cpus=THREADS)` —
  the boosting models only, as issue 19 asks, its weighted ensemble on top as its default.

Kadence runs what a TrainingRun runs, in this process: the Dataset route's preprocessing, 5-fold
CV, the tpe search over its default families (LightGBM, XGBoost and CatBoost included) with
parallelism = THREADS (one thread per trial) and a timeout of `SEARCH_SHARE` of the budget (the
rest is for the ensemble selection and the refit, which FLAML's and AutoGluon's budgets include
too), then greedy ensemble selection and the refit on the whole training split.

GridSearchCV (scikit-learn, n_jobs=THREADS, 3-fold) searches a 3 x 3 grid of
HistGradientBoosting (learning rate x leaves) on the same preprocessed features, without a
budget: its time is printed.

Datasets (`DATASETS`): scikit-learn's built-ins that ship with it (breast cancer, digits) and
generated ones with the structure that makes tabular data hard — 1:20 class imbalance,
high-cardinality categoricals, missing values, interactions — binary, multiclass and regression,
569 to 200,000 rows. Every tool gets the same 75/25 split (stratified for classification, seeded
by the run's seed), the same budget, the same THREADS, and is scored here by the same
scikit-learn metric on the same hold-out rows: ROC AUC (binary), accuracy (multiclass), RMSE
(regression).

Per dataset it prints each tool's hold-out score (mean ± sd over the seeds), Kadence's time to
first reach FLAML's final hold-out score (every incumbent of Kadence's search — each trial that
improved the best CV score — is refitted after the run and scored on the hold-out, untimed; the
time is when that trial finished), and wins/ties/losses against each rival (a tie = within one
sd of the two).

    .venv/bin/python benchmarks/automl.py --setup           # the rivals' venvs under /work/rivals
    .venv/bin/python benchmarks/automl.py --budgets 60 300 --seeds 0 1 2
    .venv/bin/python benchmarks/automl.py --budgets 30 --seeds 0 --datasets breast_cancer digits

Results and what was run: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

RIVALS = Path(os.environ.get("KADENCE_RIVALS", "/work/rivals"))
THREADS = 2
SEARCH_SHARE = 0.75
FOLDS = 5
GRID_FOLDS = 3  # the grid's 9 points x 5 folds took 448 s on digits at load 10: 3 folds keep it a side column
RIVAL_PACKAGES = {
    "flaml": ["flaml[automl]", "pandas", "pyarrow", "scikit-learn"],
    "autogluon": ["autogluon.tabular[lightgbm,xgboost,catboost]"],
}

# ------------------------------------------------------------------ data


@dataclass(frozen=True)
class Data:
    name: str
    task: str  # binary, multiclass, regression
    frame: pd.DataFrame  # features and "target"
    categorical: tuple[str, ...] = ()


def _breast_cancer(seed: int) -> Data:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.rename(columns={"target": "target"})
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    return Data("breast_cancer", "binary", frame)


def _digits(seed: int) -> Data:
    from sklearn.datasets import load_digits

    frame = load_digits(as_frame=True).frame
    frame.columns = [str(c) for c in frame.columns]
    return Data("digits", "multiclass", frame)


def _imbalanced(seed: int) -> Data:
    from sklearn.datasets import make_classification

    X, y = make_classification(8_000, 20, n_informative=8, weights=[0.95, 0.05], flip_y=0.01, class_sep=0.8,
                               random_state=100)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    frame["target"] = y
    return Data("imbalanced_1to20", "binary", frame)


def _high_cardinality(seed: int) -> Data:
    rng = np.random.default_rng(101)
    n, levels = 20_000, 1_000
    city = rng.integers(0, levels, n)
    effect = rng.normal(scale=1.5, size=levels)
    numeric = rng.normal(size=(n, 5))
    logit = effect[city] + numeric[:, 0] - 0.5 * numeric[:, 1] - 1.0
    frame = pd.DataFrame(numeric, columns=[f"x{i}" for i in range(5)])
    frame["city"] = pd.Series([f"c{c}" for c in city], dtype="object")
    frame["shop"] = pd.Series([f"s{c}" for c in rng.integers(0, 300, n)], dtype="object")  # noise
    frame["target"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return Data("high_cardinality", "binary", frame, ("city", "shop"))


def _missing(seed: int) -> Data:
    from sklearn.datasets import make_classification

    X, y = make_classification(6_000, 15, n_informative=8, n_classes=4, n_clusters_per_class=1, random_state=102)
    rng = np.random.default_rng(102)
    X[rng.random(X.shape) < 0.25] = np.nan
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    frame["target"] = y
    return Data("missing_values", "multiclass", frame)


def _friedman(seed: int) -> Data:
    from sklearn.datasets import make_friedman1

    X, y = make_friedman1(5_000, 10, noise=1.0, random_state=103)  # sin(x0 x1), (x2 - .5)^2: interactions
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    frame["target"] = y
    return Data("interactions", "regression", frame)


def _mixed_regression(seed: int) -> Data:
    rng = np.random.default_rng(104)
    n = 10_000
    numeric = rng.normal(size=(n, 6))
    brand = rng.integers(0, 200, n)
    brand_effect = rng.normal(scale=2.0, size=200)
    y = brand_effect[brand] + 2 * numeric[:, 0] * numeric[:, 1] + np.abs(numeric[:, 2]) + rng.normal(scale=0.5, size=n)
    numeric[rng.random(numeric.shape) < 0.15] = np.nan
    frame = pd.DataFrame(numeric, columns=[f"x{i}" for i in range(6)])
    frame["brand"] = pd.Series([f"b{b}" for b in brand], dtype="object")
    frame["target"] = y
    return Data("mixed_regression", "regression", frame, ("brand",))


def _large(seed: int) -> Data:
    from sklearn.datasets import make_classification

    X, y = make_classification(200_000, 20, n_informative=10, flip_y=0.03, class_sep=0.8, random_state=105)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    frame["target"] = y
    return Data("large_200k", "binary", frame)


DATASETS: dict[str, Callable[[int], Data]] = {
    "breast_cancer": _breast_cancer, "digits": _digits, "imbalanced_1to20": _imbalanced,
    "high_cardinality": _high_cardinality, "missing_values": _missing, "interactions": _friedman,
    "mixed_regression": _mixed_regression, "large_200k": _large,
}
METRIC = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "rmse"}


def split(data: Data, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    stratify = data.frame["target"] if data.task != "regression" else None
    return train_test_split(data.frame, test_size=0.25, random_state=seed, stratify=stratify)


def hold_out_score(task: str, y_true, output) -> float:
    """ROC AUC from the positive class's probability, accuracy from labels, RMSE from values."""
    from sklearn.metrics import accuracy_score, roc_auc_score, root_mean_squared_error

    if task == "binary":
        return float(roc_auc_score(y_true, output))
    if task == "multiclass":
        return float(accuracy_score(np.asarray(y_true).astype(str), np.asarray(output).astype(str)))
    return float(root_mean_squared_error(y_true, output))


def better(task: str, a: float, b: float) -> bool:
    return a < b if task == "regression" else a > b


# ------------------------------------------------------------------ Kadence


def kadence_run(data: Data, train: pd.DataFrame, test: pd.DataFrame, budget: float, seed: int) -> dict:
    import warnings

    from sklearn.model_selection import KFold, StratifiedKFold

    from kadence.domain.training import ensemble as ens
    from kadence.domain.training import families as fam
    from kadence.domain.training.metrics import make_metric_scorer
    from kadence.domain.training.preprocessing import ColumnSpec, raw_preprocessor
    from kadence.domain.training.search import Fold, SearchSettings, fit_weighted, run_search

    warnings.simplefilter("ignore")
    began = time.monotonic()
    task = "regression" if data.task == "regression" else "classification"
    metric = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "rmse"}[data.task]
    features = [c for c in train.columns if c != "target"]
    columns = [ColumnSpec(c, "category" if c in data.categorical else "float") for c in features]
    X_train, y_train = train[features], train["target"].to_numpy()
    classes = sorted(pd.unique(y_train).tolist()) if task == "classification" else None
    splitter = (StratifiedKFold if task == "classification" else KFold)(FOLDS, shuffle=True, random_state=seed)
    preprocessor = raw_preprocessor(columns)
    folds = []
    for a, b in splitter.split(X_train, y_train):
        fitted = preprocessor.fit(X_train.iloc[a])
        folds.append(Fold(fitted.transform(X_train.iloc[a]), y_train[a], fitted.transform(X_train.iloc[b]), y_train[b]))
    chosen, _ = fam.default_families(task, metric, len(classes or ()), len(X_train))
    settings = SearchSettings(task=task, metric=metric, strategy="tpe",
                              spaces={n: fam.resolve_space(n, task) for n in chosen}, max_trials=10_000, seed=seed,
                              timeout_s=max(1.0, SEARCH_SHARE * budget - (time.monotonic() - began)),
                              parallelism=THREADS, threads_per_trial=1, n_classes=max(2, len(classes or ())),
                              keep_predictions=ens.CANDIDATES, classes=tuple(classes or ()))
    scorer = make_metric_scorer(metric, classes)
    finished: dict[int, float] = {}
    result = run_search(settings, folds, scorer,
                        on_trial=lambda record, _: finished.__setitem__(record.number, time.monotonic() - began))
    fitted = preprocessor.fit(X_train)
    X_model, X_test = fitted.transform(X_train), fitted.transform(test[features])

    def refit(family: str, params: dict):
        return fit_weighted(fam.build_estimator(family, task, params, metric=metric, seed=seed, threads=THREADS,
                                                n_classes=settings.n_classes), X_model, y_train, seed=seed)

    selection, _ = ens.choose(result.trials, result.best.score, [f.y_valid for f in folds], scorer, classes)
    if selection is None:
        model, winner = refit(result.best.family, result.best.params), result.best.family
    else:
        by_number = {t.number: t for t in result.trials}
        members = [(f"t{n}", refit(by_number[n].family, by_number[n].params)) for n in sorted(selection.weights)]
        model = ens.build_voting(task, members, [selection.weights[n] for n in sorted(selection.weights)], classes)
        winner = "ensemble(" + "+".join(by_number[n].family for n in sorted(selection.weights)) + ")"
    seconds = time.monotonic() - began
    score = hold_out_score(data.task, test["target"], _output(data.task, model, X_test))
    # the incumbents (each trial that improved the best CV score) on the hold-out, for the time to
    # reach a score; refitted after the run, untimed
    from kadence.domain.training.metrics import is_better

    incumbents, best = [], None
    for record in sorted((t for t in result.trials if t.state == "complete"), key=lambda t: t.number):
        if best is None or is_better(metric, record.score, best):
            best = record.score
            incumbents.append((finished[record.number], record))
    trajectory = [(at, hold_out_score(data.task, test["target"], _output(data.task, refit(r.family, r.params), X_test)))
                  for at, r in incumbents]
    if selection is not None:
        trajectory.append((seconds, score))
    return {"score": score, "seconds": seconds, "model": winner, "trials": len(result.trials),
            "trajectory": trajectory}


def _output(task: str, model, X):
    if task == "binary":
        return model.predict_proba(X)[:, 1]
    return model.predict(X)


# ------------------------------------------------------------------ GridSearchCV


def grid_run(data: Data, train: pd.DataFrame, test: pd.DataFrame, seed: int) -> dict:
    import warnings

    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.model_selection import GridSearchCV

    from kadence.domain.training.preprocessing import ColumnSpec, raw_preprocessor

    warnings.simplefilter("ignore")
    began = time.monotonic()
    features = [c for c in train.columns if c != "target"]
    preprocessor = raw_preprocessor([ColumnSpec(c, "category" if c in data.categorical else "float")
                                     for c in features]).fit(train[features])
    estimator = (HistGradientBoostingRegressor if data.task == "regression" else HistGradientBoostingClassifier)(
        random_state=seed)
    scoring = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "neg_root_mean_squared_error"}[data.task]
    grid = GridSearchCV(estimator, {"learning_rate": [0.03, 0.1, 0.3], "max_leaf_nodes": [15, 31, 63]},
                        scoring=scoring, cv=GRID_FOLDS, n_jobs=THREADS)
    grid.fit(preprocessor.transform(train[features]), train["target"])
    seconds = time.monotonic() - began
    output = _output(data.task, grid.best_estimator_, preprocessor.transform(test[features]))
    return {"score": hold_out_score(data.task, test["target"], output), "seconds": seconds, "model": "hist_gb grid"}


# ------------------------------------------------------------------ rivals

FLAML_SCRIPT = r"""
import json, sys, time, warnings
import numpy as np, pandas as pd
warnings.simplefilter("ignore")
from flaml import AutoML
job = json.load(open(sys.argv[1]))
train, test = pd.read_pickle(job["train"]), pd.read_pickle(job["test"])
for c in job["categorical"]:
    train[c], test[c] = train[c].astype("category"), pd.Categorical(test[c], categories=train[c].astype("category").cat.categories)
X, y = train.drop(columns="target"), train["target"]
began = time.monotonic()
automl = AutoML()
automl.fit(X, y, task="regression" if job["task"] == "regression" else "classification", time_budget=job["budget"],
           metric={"binary": "roc_auc", "multiclass": "accuracy", "regression": "rmse"}[job["task"]],
           n_jobs=job["threads"], seed=job["seed"], verbose=0)
seconds = time.monotonic() - began
Xt = test.drop(columns="target")
out = automl.predict_proba(Xt)[:, 1] if job["task"] == "binary" else automl.predict(Xt)
json.dump({"output": np.asarray(out).tolist(), "seconds": seconds, "model": automl.best_estimator}, open(job["out"], "w"))
"""

AUTOGLUON_SCRIPT = r"""
import json, sys, time, tempfile, warnings
import numpy as np, pandas as pd
warnings.simplefilter("ignore")
from autogluon.tabular import TabularPredictor
job = json.load(open(sys.argv[1]))
train, test = pd.read_pickle(job["train"]), pd.read_pickle(job["test"])
began = time.monotonic()
predictor = TabularPredictor(label="target", path=tempfile.mkdtemp(), verbosity=0,
                             problem_type=job["task"] if job["task"] != "multiclass" else "multiclass",
                             eval_metric={"binary": "roc_auc", "multiclass": "accuracy",
                                          "regression": "root_mean_squared_error"}[job["task"]])
predictor.fit(train, time_limit=job["budget"], presets="medium_quality",
              hyperparameters={"GBM": {}, "XGB": {}, "CAT": {}}, num_cpus=job["threads"],
              ag_args_fit={"random_seed": job["seed"]})
seconds = time.monotonic() - began
Xt = test.drop(columns="target")
if job["task"] == "binary":
    proba = predictor.predict_proba(Xt)
    out = proba[sorted(proba.columns)[-1]]
else:
    out = predictor.predict(Xt)
json.dump({"output": np.asarray(out).tolist(), "seconds": seconds, "model": predictor.model_best},
          open(job["out"], "w"))
"""


def rival_python(tool: str) -> Path:
    return RIVALS / tool / "bin" / "python"


def setup() -> None:
    """Create each rival's venv under RIVALS (skipped when it already imports)."""
    module = {"flaml": "flaml", "autogluon": "autogluon.tabular"}
    for tool, packages in RIVAL_PACKAGES.items():
        python = rival_python(tool)
        if python.exists() and subprocess.run([str(python), "-c", f"import {module[tool]}, pyarrow"],
                                              capture_output=True).returncode == 0:
            print(f"{tool}: ready in {python.parent.parent}")
            continue
        subprocess.run(["python3", "-m", "venv", str(RIVALS / tool)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
        print(f"{tool}: installed {' '.join(packages)} in {RIVALS / tool}")


def rival_run(tool: str, data: Data, train: pd.DataFrame, test: pd.DataFrame, budget: float, seed: int,
              workdir: Path) -> dict:
    script = {"flaml": FLAML_SCRIPT, "autogluon": AUTOGLUON_SCRIPT}[tool]
    job = {"train": str(workdir / "train.pkl"), "test": str(workdir / "test.pkl"), "task": data.task,
           "budget": budget, "seed": seed, "threads": THREADS, "categorical": list(data.categorical),
           "out": str(workdir / f"{tool}.json")}
    train.to_pickle(job["train"]), test.to_pickle(job["test"])
    (workdir / "job.json").write_text(json.dumps(job))
    began = time.monotonic()
    env = {**os.environ, "OMP_NUM_THREADS": str(THREADS)}
    done = subprocess.run([str(rival_python(tool)), "-c", script, str(workdir / "job.json")], capture_output=True,
                          text=True, env=env, timeout=budget * 4 + 120)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}",
                "seconds": time.monotonic() - began}
    answer = json.loads(Path(job["out"]).read_text())
    return {"score": hold_out_score(data.task, test["target"], answer["output"]), "seconds": answer["seconds"],
            "model": answer["model"]}


# ------------------------------------------------------------------ the table


def mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def verdict(task: str, ours: list[float], theirs: list[float]) -> str:
    """win / tie / loss: a tie when the means are within one sd (the larger of the two)."""
    (a, sa), (b, sb) = mean_sd(ours), mean_sd(theirs)
    if abs(a - b) <= max(sa, sb):
        return "tie"
    return "win" if better(task, a, b) else "loss"


def time_to_reach(task: str, trajectory: list[tuple[float, float]], target: float) -> float | None:
    for at, score in trajectory:
        if not better(task, target, score):  # score at least as good as the target
            return at
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setup", action="store_true", help="create the rivals' venvs and exit")
    parser.add_argument("--budgets", type=float, nargs="+", default=[60.0], help="seconds per tool and run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--tools", nargs="+", default=["kadence", "flaml", "autogluon", "grid"],
                        choices=["kadence", "flaml", "autogluon", "grid"])
    parser.add_argument("--json", type=Path, help="also write every run's figures here (after each run)")
    parser.add_argument("--report", type=Path, help="print the tables of a --json file instead of running")
    args = parser.parse_args()
    if args.setup:
        setup()
        return
    if args.report:
        runs = json.loads(args.report.read_text())
        for budget in sorted({r["budget"] for r in runs}):
            report(runs, budget, [d for d in DATASETS if any(r["dataset"] == d for r in runs)],
                   [t for t in args.tools if any(r["tool"] == t for r in runs)])
        return
    rivals = [t for t in ("flaml", "autogluon") if t in args.tools]
    missing = [t for t in rivals if not rival_python(t).exists()]
    if missing:
        sys.exit(f"no venv for {', '.join(missing)} under {RIVALS}: run benchmarks/automl.py --setup first")
    runs: list[dict] = []
    for budget in args.budgets:
        print(f"\n=== budget {budget:g} s, seeds {args.seeds}, {THREADS} threads per tool "
              f"(load average {os.getloadavg()[0]:.1f}) ===", flush=True)
        for name in args.datasets:
            for seed in args.seeds:
                data = DATASETS[name](seed)
                train, test = split(data, seed)
                with tempfile.TemporaryDirectory() as tmp:
                    for tool in args.tools:
                        if tool == "kadence":
                            figures = kadence_run(data, train, test, budget, seed)
                        elif tool == "grid":
                            figures = grid_run(data, train, test, seed)
                        else:
                            figures = rival_run(tool, data, train, test, budget, seed, Path(tmp))
                        run = {"budget": budget, "dataset": name, "task": data.task, "rows": len(data.frame),
                               "seed": seed, "tool": tool, "load": round(os.getloadavg()[0], 1), **figures}
                        runs.append(run)
                        print("  " + json.dumps(run, default=str), flush=True)
                        if args.json:  # after every run: a cut-short run keeps what it measured
                            args.json.write_text(json.dumps(runs, indent=1, default=str))
        report(runs, budget, args.datasets, args.tools)


def report(runs: list[dict], budget: float, datasets: list[str], tools: list[str]) -> None:
    print(f"\n--- budget {budget:g} s: hold-out {', '.join(f'{t}={m}' for t, m in METRIC.items())} "
          f"(mean ± sd over seeds; seconds = the tool's wall time) ---")
    header = f"{'dataset':18} {'task':10} {'rows':>7}  " + "  ".join(f"{t:>24}" for t in tools) + \
             "  kadence reached flaml at"
    print(header)
    tally = {t: {"win": 0, "tie": 0, "loss": 0} for t in tools if t != "kadence"}
    reach = []
    for name in datasets:
        rows = [r for r in runs if r["budget"] == budget and r["dataset"] == name]
        if not rows:
            continue
        task = rows[0]["task"]
        scores = {t: [r["score"] for r in rows if r["tool"] == t and "score" in r] for t in tools}
        cells = []
        for t in tools:
            if scores[t]:
                m, s = mean_sd(scores[t])
                secs = statistics.fmean(r["seconds"] for r in rows if r["tool"] == t and "score" in r)
                cells.append(f"{m:.4f}±{s:.4f} {secs:5.0f}s")
            else:
                cells.append("failed")
        reached = "-"
        if "kadence" in tools and "flaml" in tools and scores["flaml"]:
            times = []
            for seed_row in (r for r in rows if r["tool"] == "kadence" and r.get("trajectory")):
                flaml = [r for r in rows if r["tool"] == "flaml" and r["seed"] == seed_row["seed"] and "score" in r]
                if flaml:
                    at = time_to_reach(task, seed_row["trajectory"], flaml[0]["score"])
                    times.append(math.inf if at is None else at)
            if times:
                median = statistics.median(times)
                reach.append(median / budget)
                reached = "never" if math.isinf(median) else f"{median:.0f} s ({median / budget:.2f} of the budget)"
        print(f"{name:18} {task:10} {rows[0]['rows']:>7}  " + "  ".join(f"{c:>24}" for c in cells) + f"  {reached}")
        if "kadence" in tools and scores["kadence"]:
            for t in tally:
                if scores[t]:
                    tally[t][verdict(task, scores["kadence"], scores[t])] += 1
    for t, counts in tally.items():
        print(f"kadence vs {t}: {counts['win']} wins, {counts['tie']} ties, {counts['loss']} losses")
    if reach:
        median = statistics.median(reach)
        print(f"kadence's time to FLAML's final score, median over datasets: "
              f"{'never' if math.isinf(median) else f'{median:.2f} of the budget'}")


if __name__ == "__main__":
    main()
