"""Greedy ensemble selection over out-of-fold predictions, and the ensemble as one artifact."""

from __future__ import annotations

import numpy as np
import pytest

from kadence.domain.training import artifact as artifacts
from kadence.domain.training import ensemble as ens
from kadence.domain.training import families as fam
from kadence.domain.training.metrics import make_metric_scorer
from kadence.domain.training.search import Fold, SearchSettings, TrialRecord, fit_weighted, run_search
from kadence.serving.compiled import verify_compiled


CLASSES = ["a", "b"]


def candidate(trial: int, folds: list[list[float]]) -> ens.Candidate:
    """A binary classifier's out-of-fold predictions given as P(b) per row."""
    return ens.Candidate(trial, "test", {}, [np.column_stack([1 - np.asarray(p), np.asarray(p)]) for p in folds])


def test_two_models_wrong_on_different_rows_are_averaged_into_a_better_one():
    y = [np.array(["a", "b", "a", "b"])]
    left = candidate(0, [[0.1, 0.9, 0.9, 0.6]])  # wrong on row 3
    right = candidate(1, [[0.9, 0.6, 0.1, 0.9]])  # wrong on row 1
    scorer = make_metric_scorer("log_loss", CLASSES)
    selection = ens.select([left, right], y, scorer, CLASSES)
    assert set(selection.weights) == {0, 1}
    singles = [ens.score_predictions(scorer, c.fold_predictions[0], y[0], CLASSES) for c in (left, right)]
    assert selection.score < min(singles)
    assert ens.worth_it(selection, "log_loss", min(singles))


def test_a_useless_model_gets_no_weight_and_one_member_is_not_an_ensemble():
    y = [np.array(["a", "b", "a", "b"])]
    good = candidate(0, [[0.1, 0.9, 0.1, 0.9]])
    noise = candidate(1, [[0.5, 0.5, 0.5, 0.5]])
    scorer = make_metric_scorer("log_loss", CLASSES)
    selection = ens.select([good, noise], y, scorer, CLASSES)
    assert selection.weights == {0: 1}  # the best prefix is the good model alone
    assert not ens.worth_it(selection, "log_loss", selection.score)


def test_the_selection_scores_by_the_mean_over_folds_with_the_runs_metric():
    y = [np.array([1.0, 2.0]), np.array([3.0, 4.0])]
    low = ens.Candidate(0, "test", {}, [np.array([0.0, 1.0]), np.array([2.0, 3.0])])  # 1 below everywhere
    high = ens.Candidate(1, "test", {}, [np.array([2.0, 3.0]), np.array([4.0, 5.0])])  # 1 above everywhere
    selection = ens.select([low, high], y, make_metric_scorer("rmse"), None)
    assert selection.weights == {0: 1, 1: 1}
    assert selection.score == pytest.approx(0.0) and selection.fold_scores == pytest.approx([0.0, 0.0])


def test_ties_go_to_the_better_single_trial_listed_first():
    y = [np.array([1.0, 2.0])]
    same = [ens.Candidate(n, "test", {}, [np.array([1.0, 2.0])]) for n in (4, 2)]
    assert ens.select(same, y, make_metric_scorer("rmse"), None).weights == {4: 1}


def test_fewer_than_two_trials_with_predictions_is_no_ensemble():
    one = TrialRecord(0, "ridge", {}, "complete", 1.0, [1.0], 0.1, predictions=[np.array([1.0])])
    other = TrialRecord(1, "ridge", {}, "pruned", None, [], 0.1)
    selection, why = ens.choose([one, other], 1.0, [np.array([1.0])], make_metric_scorer("rmse"), None)
    assert selection is None and "not tried (1 completed trial(s)" in why


def test_probabilities_are_aligned_to_every_class_of_the_run():
    class Seen:
        classes_ = np.array(["c", "a"])

        def predict_proba(self, X):
            return np.array([[0.7, 0.3]])

    assert ens.aligned_probabilities(Seen(), None, ["a", "b", "c"]).tolist() == [[0.3, 0.0, 0.7]]


@pytest.fixture(scope="module")
def searched():
    from sklearn.datasets import make_classification
    from sklearn.model_selection import StratifiedKFold

    X, y = make_classification(600, 6, n_informative=4, n_classes=3, random_state=0)
    y = np.array(["x", "y", "z"])[y]
    folds = [Fold(X[a], y[a], X[b], y[b]) for a, b in StratifiedKFold(3, shuffle=True, random_state=0).split(X, y)]
    spaces = {n: fam.resolve_space(n, "classification") for n in ("random_forest", "logistic_regression", "knn")}
    settings = SearchSettings(task="classification", metric="log_loss", strategy="tpe", spaces=spaces, max_trials=6,
                              seed=0, keep_predictions=2, classes=("x", "y", "z"), n_classes=3)
    scorer = make_metric_scorer("log_loss", ["x", "y", "z"])
    return X, y, folds, run_search(settings, folds, scorer), scorer


def test_the_search_keeps_the_predictions_of_its_best_trials_only(searched):
    _, _, folds, result, _ = searched
    kept = [t for t in result.trials if t.predictions is not None]
    assert len(kept) == 2
    completed = sorted((t for t in result.trials if t.state == "complete"), key=lambda t: t.score)
    assert {t.number for t in kept} == {t.number for t in completed[:2]}
    for trial in kept:
        assert [p.shape for p in trial.predictions] == [(len(f.y_valid), 3) for f in folds]


def test_an_ensemble_is_one_skops_artifact_and_its_onnx_graph_is_verified(searched):
    X, y, folds, result, scorer = searched
    members = [(f"trial{t.number}", fit_weighted(fam.build_estimator(t.family, "classification", t.params,
                                                                   metric="log_loss", seed=0, n_classes=3), X, y))
               for t in result.trials if t.predictions is not None]
    voting = ens.build_voting("classification", members, [2, 1], ["x", "y", "z"])
    expected = (2 * members[0][1].predict_proba(X) + members[1][1].predict_proba(X)) / 3
    assert np.allclose(voting.predict_proba(X), expected)
    assert set(voting.predict(X)) <= {"x", "y", "z"}

    data = artifacts.dumps(voting)
    reloaded = artifacts.loads(data, expected_sha256=artifacts.sha256_hex(data))
    assert np.array_equal(reloaded.predict(X), voting.predict(X))
    ok, difference, graph = verify_compiled(voting, X[:200], 1e-5)
    assert graph is not None and ok, difference


# ---- a training run end to end (real S3): boosting families, the ensemble, the card


@pytest.fixture(scope="module")
def ensemble_run(store):
    import json

    from kadence.workloads.train_task import TrainTask
    from kadence.workloads.trainer import train

    from .datagen import CHURN_COLUMNS, churn_frame, put_dataset

    uri = put_dataset(store, "ml", "churn", "v1ens", churn_frame(rows=400, seed=3), CHURN_COLUMNS, "churned",
                      "customer_id")
    task = TrainTask.model_validate({
        "namespace": "ml", "run": "churn-ensemble",
        "spec": {"datasetRef": {"name": "churn"}, "task": "classification", "objective": {"metric": "log_loss"},
                 "search": {"strategy": "tpe", "maxTrials": 6,
                            "families": [{"name": "logistic_regression"}, {"name": "lightgbm"},
                                         {"name": "random_forest"}]},
                 "cvFolds": 3, "model": "churn"},
        "input": {"kind": "Dataset", "name": "churn", "version": "v1ens", "uri": uri},
    })
    lines: list[str] = []
    result = train(task, store, log=lines.append)
    trials = json.loads(store.get_bytes("runs/ml/churn-ensemble/trials.json"))
    card = store.get_bytes("runs/ml/churn-ensemble/model_card.html").decode()
    return result, trials, card, lines


def test_the_run_returns_an_ensemble_that_beats_its_best_trial_on_cv(ensemble_run):
    result, trials, _, lines = ensemble_run
    assert result.best.family == "ensemble", [line for line in lines if line.startswith("ensemble")]
    single = min(t["score"] for t in trials["trials"] if t["state"] == "complete")
    assert result.best.cv_score < single  # log loss: lower is better
    members = result.lineage.ensemble
    assert len(members) >= 2 and sum(m.weight for m in members) == pytest.approx(1.0, abs=1e-5)
    assert [m.trial for m in members] == [m["trial"] for m in trials["ensemble"]["members"]]
    by_number = {t["number"]: t for t in trials["trials"]}
    assert all(by_number[m.trial]["family"] == m.family and by_number[m.trial]["params"] == m.params for m in members)


def test_the_ensemble_is_one_verified_compiled_artifact(store, ensemble_run):
    result, _, _, _ = ensemble_run
    data = store.get_bytes(store.key_of(result.artifact.uri))
    model = artifacts.loads(data, expected_sha256=result.artifact.sha256)
    assert type(model[-1]).__name__ == "VotingClassifier"
    assert result.compiled is not None and result.compiled.verified


def test_the_card_of_the_run_has_its_search_picture_and_the_model_version_links_it(ensemble_run):
    result, _, card, _ = ensemble_run
    for alt in ("score against time", "permutation importance", "calibration curve"):
        assert f"alt='{alt}'" in card
    assert result.lineage.model_card == result.files.model_card
