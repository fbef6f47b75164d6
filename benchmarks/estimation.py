"""Performance estimated without labels: Kadence's CBPE against NannyML's CBPE, same data, same run.

The project's own drifting churn scenario (`kadence.domain.synthetic.churn_frame`): a model is
trained on month-0 customers and judged on its hold-out (the reference both estimators
calibrate on). Then 12 windows of 5,000 served predictions: windows 1-8 move the population
(covariate shift: `drift` from 0 to 1.4, the relation between inputs and churn unchanged),
windows 9-12 keep that population and change the relation (`concept_shift` 0.6). Per window:
realized F1 (from the labels), Kadence's estimate and NannyML's estimate (both from the served
probabilities only), the error of each, and whether each flags the window as concept drift.

Kadence flags concept drift by comparing the realized metric with its estimate on the same rows
(`estimation.concept_drift`, margin 0.05 here, beyond chance). NannyML's CBPE estimates from the
model's confidence alone: a concept shift leaves the inputs and the confidence as they were, so
its estimate cannot move and CBPE cannot flag it by construction (its alerts, printed, fire on
estimated drops, which is not the same thing).

NannyML runs in its own virtualenv (/work/rivals/nannyml, created on first use with pip) in a
subprocess; only `CBPE.fit` + `CBPE.estimate` are timed there, only `ConfidenceEstimator.fit`
+ 12 `estimate` calls here, both estimating roc_auc, f1, precision, recall and accuracy. Targets: Kadence's mean absolute error on the covariate-shift
windows no worse than NannyML's, at least 10x faster, and the concept-shift windows flagged by
Kadence. Exit status 1 when one is missed.

    .venv/bin/python benchmarks/estimation.py [--rows 5000] [--repeats 5]
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

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache" / "estimation"
NANNYML_VENV = Path(os.environ.get("KADENCE_RIVALS", "/work/rivals")) / "nannyml"
NANNYML_REQUIREMENTS = ["nannyml==0.13.1", "statsmodels", "pandas<3", "pyarrow"]
DRIFTS = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.4, 1.4, 1.4, 1.4]
CONCEPT = [0.0] * 8 + [0.6] * 4
MARGIN = 0.05  # the policy's conceptDriftMargin (default 0.1): a 0.05 drop beyond chance is worth naming here
METRICS = ["roc_auc", "f1", "precision", "recall", "accuracy"]  # both estimate the same five per window

NANNYML_SCRIPT = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import pandas as pd
import nannyml as nml

reference = pd.read_parquet(sys.argv[1])
analysis = pd.read_parquet(sys.argv[2])
chunk, repeats = int(sys.argv[3]), int(sys.argv[4])
seconds = []
for _ in range(repeats):
    started = time.perf_counter()
    estimator = nml.CBPE(y_pred_proba="proba", y_pred="pred", y_true="label", problem_type="classification_binary",
                         metrics=["roc_auc", "f1", "precision", "recall", "accuracy"], chunk_size=chunk)
    estimator.fit(reference)
    result = estimator.estimate(analysis)
    seconds.append(time.perf_counter() - started)
frame = result.filter(period="analysis").to_df()
print(json.dumps({"seconds": seconds, "f1": frame[("f1", "value")].tolist(),
                  "alert": [bool(a) for a in frame[("f1", "alert")].tolist()], "version": nml.__version__}))
"""


def ensure_nannyml() -> Path:
    python = NANNYML_VENV / "bin" / "python"
    marker = NANNYML_VENV / ".installed"
    wanted = " ".join(NANNYML_REQUIREMENTS)
    if not marker.exists() or marker.read_text() != wanted:
        print(f"installing {wanted} into {NANNYML_VENV} (one time)...", flush=True)
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(NANNYML_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *NANNYML_REQUIREMENTS], check=True)
        marker.write_text(wanted)
    return python


def features(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[["tenure_months", "monthly_charges", "support_calls", "contract", "payment_method", "senior"]]


def train_model(seed: int):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    from kadence.domain.synthetic import churn_frame

    train = churn_frame(20000, seed=seed)
    encode = ColumnTransformer([("categories", OneHotEncoder(handle_unknown="ignore"), ["contract", "payment_method"])],
                               remainder="passthrough")
    model = Pipeline([("encode", encode), ("model", HistGradientBoostingClassifier(max_iter=150, random_state=seed))])
    return model.fit(features(train), train["churned"].astype(int))


def served(model, frame: pd.DataFrame) -> pd.DataFrame:
    proba = model.predict_proba(features(frame))[:, 1]
    return pd.DataFrame({"proba": proba, "pred": (proba > 0.5).astype(int), "label": frame["churned"].astype(int)})


def make_data(rows: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    from kadence.domain.synthetic import churn_frame

    model = train_model(seed)
    # the hold-out: four windows' worth, so that NannyML's alert thresholds (from the reference's chunks) exist
    reference = served(model, churn_frame(4 * rows, seed=seed + 1))
    windows = [served(model, churn_frame(rows, seed=seed + 10 + i, drift=d, concept_shift=c)).assign(window=i + 1)
               for i, (d, c) in enumerate(zip(DRIFTS, CONCEPT))]
    return reference, pd.concat(windows, ignore_index=True)


def kadence_estimates(reference: pd.DataFrame, analysis: pd.DataFrame, repeats: int):
    from kadence.domain.monitoring.estimation import ConfidenceEstimator

    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()  # from the frames, as NannyML's: columns to arrays and the cut into windows timed too
        labels, proba = reference["label"].to_numpy(), reference["proba"].to_numpy()
        estimator = ConfidenceEstimator.fit(labels, np.column_stack([1 - proba, proba]), [0, 1])
        window, served_proba, served_pred = (analysis[c].to_numpy() for c in ("window", "proba", "pred"))
        cuts = np.flatnonzero(np.diff(window)) + 1  # the windows are contiguous, in order
        estimates = []
        for p, predicted in zip(np.split(served_proba, cuts), np.split(served_pred, cuts)):
            estimate = estimator.estimate(predicted, np.column_stack([1 - p, p])).metrics
            assert set(METRICS) <= set(estimate)
            estimates.append(estimate["f1"])
        seconds.append(time.perf_counter() - started)
    return estimator, estimates, seconds


def kadence_concept_flags(estimator, analysis: pd.DataFrame, estimates: list[float], realized: list[float]):
    from kadence.domain.monitoring.estimation import concept_drift

    flags = []
    for (_, window), estimated, value in zip(analysis.groupby("window", sort=True), estimates, realized):
        probabilities = np.column_stack([1 - window["proba"], window["proba"]])
        spread = estimator.realized_spread("f1", window["pred"].tolist(), probabilities)
        flags.append(concept_drift(metric="f1", estimated=estimated, realized=value, spread=spread, margin=MARGIN,
                                   labelled=len(window)).detected)
    return flags


def run_nannyml(reference: pd.DataFrame, analysis: pd.DataFrame, rows: int, repeats: int) -> dict:
    python = ensure_nannyml()
    CACHE.mkdir(parents=True, exist_ok=True)
    reference_path, analysis_path = CACHE / "reference.parquet", CACHE / "analysis.parquet"
    reference.to_parquet(reference_path)
    analysis.drop(columns=["label", "window"]).to_parquet(analysis_path)
    done = subprocess.run([str(python), "-c", NANNYML_SCRIPT, str(reference_path), str(analysis_path), str(rows),
                           str(repeats)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def load() -> str:
    return "load average " + " ".join(f"{v:.1f}" for v in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=5000, help="predictions per window (and reference rows)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    from sklearn.metrics import f1_score

    print(f"data: reference {4 * args.rows} hold-out predictions, 12 windows x {args.rows} ({load()})", flush=True)
    reference, analysis = make_data(args.rows, args.seed)
    realized = [float(f1_score(w["label"], w["pred"])) for _, w in analysis.groupby("window", sort=True)]
    print(f"before Kadence: {load()}", flush=True)
    estimator, kadence, kadence_seconds = kadence_estimates(reference, analysis, args.repeats)
    flags = kadence_concept_flags(estimator, analysis, kadence, realized)
    print(f"before NannyML: {load()}", flush=True)
    rival = run_nannyml(reference, analysis, args.rows, args.repeats)
    print(f"after: {load()}", flush=True)
    nannyml = rival["f1"]
    if len(nannyml) != len(realized):
        print(f"NannyML returned {len(nannyml)} chunks, expected {len(realized)}")
        return 1

    print(f"\n{'window':>6} {'drift':>5} {'concept':>7} {'realized':>8} {'kadence':>8} {'nannyml':>8} "
          f"{'k.err':>6} {'n.err':>6} {'kadence flags concept':>22} {'nannyml alert':>13}")
    for i in range(len(realized)):
        print(f"{i + 1:>6} {DRIFTS[i]:>5.1f} {CONCEPT[i]:>7.1f} {realized[i]:>8.3f} {kadence[i]:>8.3f} "
              f"{nannyml[i]:>8.3f} {abs(kadence[i] - realized[i]):>6.3f} {abs(nannyml[i] - realized[i]):>6.3f} "
              f"{'yes' if flags[i] else 'no':>22} {'yes' if rival['alert'][i] else 'no':>13}")
    covariate = [i for i in range(len(realized)) if CONCEPT[i] == 0]
    concept = [i for i in range(len(realized)) if CONCEPT[i] > 0]

    def mae(values, rows):
        return statistics.fmean(abs(values[i] - realized[i]) for i in rows)

    k_mae, n_mae = mae(kadence, covariate), mae(nannyml, covariate)
    k_time, n_time = statistics.median(kadence_seconds), statistics.median(rival["seconds"])
    print(f"\nMAE on the covariate-shift windows (1-8): Kadence {k_mae:.4f}, NannyML {n_mae:.4f}")
    print(f"MAE on every window: Kadence {mae(kadence, range(len(realized))):.4f}, "
          f"NannyML {mae(nannyml, range(len(realized))):.4f} (on 9-12 neither can see the concept shift in its estimate)")
    print(f"time (fit + 12 windows x {', '.join(METRICS)}, median of {args.repeats}): Kadence {k_time * 1000:.1f} ms, NannyML "
          f"{n_time * 1000:.1f} ms ({n_time / k_time:.1f}x); NannyML {rival['version']}")
    flagged = [i + 1 for i in range(len(realized)) if flags[i]]
    print(f"Kadence flags concept drift on windows {flagged} (concept shift in {[i + 1 for i in concept]}); "
          "NannyML's CBPE cannot flag concept drift by construction: it estimates from the model's confidence, "
          "which a change of the relation between inputs and label does not move.")
    checks = {
        "error no worse than NannyML on covariate shift": k_mae <= n_mae + 1e-9,
        "at least 10x faster": n_time >= 10 * k_time,
        "concept-shift windows flagged, covariate-shift ones not": all(flags[i] for i in concept)
        and not any(flags[i] for i in covariate),
    }
    for name, ok in checks.items():
        print(f"{'met' if ok else 'MISSED'}: {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
