"""Greedy ensemble selection over the search's out-of-fold predictions (Caruana et al., 2004,
"Ensemble selection from libraries of models"; what AutoGluon's WeightedEnsemble and
auto-sklearn's EnsembleSelection do).

The search keeps the cross-validation predictions of its best `CANDIDATES` completed trials
(class probabilities in sorted-class order, or predicted values). Starting from nothing, each of
`ROUNDS` rounds adds — with replacement — the trial whose addition makes the averaged
predictions score best, mean over the folds, with the run's own metric; the ensemble is the
best-scoring prefix of those rounds, each trial weighted by how often it was added. It is
returned only when it has two or more members and scores better than the best single trial on
the same folds (`worth_it`).

Both scores are on the folds the selection looked at, so the ensemble's is somewhat optimistic
(the weights were chosen on them, as in AutoGluon and auto-sklearn); the hold-out, which neither
saw, is what the run reports for the model it returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .metrics import MetricScorer, is_better

CANDIDATES = 8
ROUNDS = 25
ROUNDING = 1e-12


@dataclass(frozen=True)
class Candidate:
    trial: int
    family: str
    params: dict[str, Any]
    fold_predictions: Sequence[np.ndarray]  # per fold: probabilities (rows x classes) or values (rows)


@dataclass(frozen=True)
class Selection:
    weights: dict[int, int]  # trial number -> times chosen
    fold_scores: list[float]
    score: float  # mean of fold_scores
    rounds: list[float]  # the score after each round (the chosen prefix is the best one)


def _fixed(predictions: np.ndarray, classes: Sequence | None):
    """Stands in for an estimator whose predictions are already known, so the run's scikit-learn
    scorer scores them exactly as it scores a fitted trial."""
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

    if classes is None:
        class Fixed(RegressorMixin, BaseEstimator):
            def predict(self, X):
                return predictions

        return Fixed()

    class Fixed(ClassifierMixin, BaseEstimator):
        classes_ = np.asarray(classes)

        def predict_proba(self, X):
            return predictions

        def predict(self, X):
            return self.classes_[np.argmax(predictions, axis=1)]

    return Fixed()


def score_predictions(scorer: MetricScorer, predictions: np.ndarray, y, classes: Sequence | None) -> float:
    """The metric (natural units) of known predictions: probabilities in `classes` order for a
    classifier, values for a regressor."""
    return scorer(_fixed(predictions, classes), np.arange(len(y)).reshape(-1, 1), y)


def select(candidates: Sequence[Candidate], fold_targets: Sequence[np.ndarray], scorer: MetricScorer,
           classes: Sequence | None, rounds: int = ROUNDS) -> Selection:
    """Caruana's greedy forward selection with replacement (see the module docstring). Ties go to
    the candidate listed first (the better single trial)."""
    if not candidates:
        raise ValueError("no candidate to build an ensemble from")
    n_folds = len(fold_targets)
    sums = [np.zeros_like(np.asarray(candidates[0].fold_predictions[f], dtype=float)) for f in range(n_folds)]
    chosen: list[int] = []
    history: list[tuple[float, list[float]]] = []
    for size in range(1, rounds + 1):
        best: tuple[float, int, list[float]] | None = None
        for index, candidate in enumerate(candidates):
            fold_scores = [score_predictions(scorer, (sums[f] + candidate.fold_predictions[f]) / size,
                                             fold_targets[f], classes) for f in range(n_folds)]
            mean = float(np.mean(fold_scores))
            if best is None or is_better(scorer.metric, mean, best[0]):
                best = (mean, index, fold_scores)
        mean, index, fold_scores = best
        chosen.append(index)
        for f in range(n_folds):
            sums[f] = sums[f] + candidates[index].fold_predictions[f]
        history.append((mean, fold_scores))
    best_size = 0
    for size, (mean, _) in enumerate(history):
        # a real improvement, not the rounding of averaging the same predictions again
        reference = history[best_size][0]
        if is_better(scorer.metric, mean, reference, margin=ROUNDING * max(1.0, abs(reference))):
            best_size = size
    weights: dict[int, int] = {}
    for index in chosen[:best_size + 1]:
        weights[candidates[index].trial] = weights.get(candidates[index].trial, 0) + 1
    mean, fold_scores = history[best_size]
    return Selection(weights=weights, fold_scores=fold_scores, score=mean, rounds=[m for m, _ in history])


def worth_it(selection: Selection, metric: str, best_single: float) -> bool:
    """An ensemble is returned only when it has two or more members and beats the best single
    trial's CV score."""
    return len(selection.weights) >= 2 and is_better(metric, selection.score, best_single)


def aligned_probabilities(estimator, X, classes: Sequence) -> np.ndarray:
    """predict_proba with one column per class of `classes` (sorted, all of the run's classes),
    zero for a class the estimator never saw in its training rows."""
    probabilities = np.asarray(estimator.predict_proba(X), dtype=float)
    out = np.zeros((probabilities.shape[0], len(classes)))
    position = {c: i for i, c in enumerate(classes)}
    for j, label in enumerate(estimator.classes_):
        out[:, position[label]] = probabilities[:, j]
    return out


def oof_predictions(estimator, X, classes: Sequence | None) -> np.ndarray | None:
    """What the ensemble averages for one fitted trial on one validation fold: aligned class
    probabilities (None for a classifier without them), or predicted values."""
    if classes is None:
        return np.asarray(estimator.predict(X), dtype=float)
    if not hasattr(estimator, "predict_proba"):
        return None
    return aligned_probabilities(estimator, X, classes)


def build_voting(task: str, members: Sequence[tuple[str, Any]], weights: Sequence[float], classes: Sequence | None):
    """A fitted scikit-learn VotingClassifier (soft) or VotingRegressor over already-fitted
    members, weighted: one estimator that skops stores and skl2onnx converts like any other.
    scikit-learn's own fit would refit the members without their early stopping, so the fitted
    attributes are set here instead, as its fit sets them."""
    from sklearn.ensemble import VotingClassifier, VotingRegressor
    from sklearn.preprocessing import LabelEncoder
    from sklearn.utils import Bunch

    if task == "classification":
        voting = VotingClassifier(estimators=list(members), voting="soft", weights=np.asarray(weights, dtype=float),
                                  flatten_transform=False)  # skl2onnx converts only this form
        voting.le_ = LabelEncoder().fit(np.asarray(classes))
        voting.classes_ = voting.le_.classes_
        for name, member in members:
            if list(member.classes_) != list(voting.classes_):
                raise ValueError(f"member {name} has classes {list(member.classes_)}, not {list(voting.classes_)}")
    else:
        voting = VotingRegressor(estimators=list(members), weights=np.asarray(weights, dtype=float))
    voting.estimators_ = [member for _, member in members]
    voting.named_estimators_ = Bunch(**dict(members))
    return voting


def candidates_of(trials, metric: str) -> list[Candidate]:
    """The completed trials that kept their out-of-fold predictions, best first (ties: earlier)."""
    from .metrics import direction

    kept = [t for t in trials if t.predictions is not None and t.score is not None]
    kept.sort(key=lambda t: (t.score if direction(metric) == "minimize" else -t.score, t.number))
    return [Candidate(t.number, t.family, dict(t.params), t.predictions) for t in kept]


def choose(trials, best_score: float, fold_targets: Sequence[np.ndarray], scorer: MetricScorer,
           classes: Sequence | None) -> tuple[Selection | None, str]:
    """The ensemble to return instead of the best single trial, or None; and why, for the log."""
    candidates = candidates_of(trials, scorer.metric)
    if len(candidates) < 2:
        return None, f"ensemble: not tried ({len(candidates)} completed trial(s) with out-of-fold predictions)"
    selection = select(candidates, fold_targets, scorer, classes)
    members = ", ".join(f"trial {n + 1} x{w}" for n, w in sorted(selection.weights.items()))
    if worth_it(selection, scorer.metric, best_score):
        return selection, (f"ensemble: chosen, cv_{scorer.metric}={selection.score:.6f} beats the best single "
                           f"trial's {best_score:.6f} ({members})")
    return None, (f"ensemble: not chosen, cv_{scorer.metric}={selection.score:.6f} with {members} does not beat "
                  f"the best single trial's {best_score:.6f}")


ENSEMBLE_FAMILY = "ensemble"  # the winner's family when an ensemble is returned


def member_list(selection: Selection, trials_by_number) -> list[dict[str, Any]]:
    """The members as recorded in the result and the ModelVersion's lineage: trial number (as in
    trials.json), family, parameters and weight (share of the votes)."""
    total = sum(selection.weights.values())
    return [{"trial": number, "family": trials_by_number[number].family,
             "params": dict(trials_by_number[number].params), "weight": round(count / total, 6)}
            for number, count in sorted(selection.weights.items())]
