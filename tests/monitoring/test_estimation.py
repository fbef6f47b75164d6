"""Performance estimated without labels (CBPE for classifiers, DLE for regressors) and concept drift."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, log_loss, mean_absolute_error, roc_auc_score, root_mean_squared_error

from kadence.domain.monitoring.estimation import (
    ConfidenceEstimator,
    EstimationError,
    LossEstimator,
    class_keys,
    concept_drift,
    expected_roc_auc,
    metrics_from_confusion,
    realized_loss_spread,
)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def binary_window(rng, rows, shift, steepness=2.0, served_steepness=2.0, flip=False):
    """Inputs around `shift`; the true P(y=1|x) = sigmoid(steepness * x) (its mirror when
    `flip`: concept shift); the model serves sigmoid(served_steepness * x) and predicts > 0.5."""
    x = rng.normal(shift, 1.0, rows)
    truth = sigmoid(steepness * (-x if flip else x))
    labels = (rng.random(rows) < truth).astype(int)
    served = sigmoid(served_steepness * x)
    probabilities = np.column_stack([1 - served, served])
    return labels, (served > 0.5).astype(int), probabilities


def test_a_calibrated_classifier_s_estimated_f1_follows_the_realized_f1_under_covariate_shift():
    rng = np.random.default_rng(1)
    labels, _, probabilities = binary_window(rng, 3000, 0.0)
    estimator = ConfidenceEstimator.fit(labels, probabilities, [0, 1])
    for shift in (-1.5, -0.5, 0.0, 1.0):
        y, predictions, window = binary_window(rng, 5000, shift)
        estimate = estimator.estimate(predictions, window)
        assert estimate.predictions == 5000
        assert estimate.metrics["f1"] == pytest.approx(f1_score(y, predictions), abs=0.03)
        assert estimate.metrics["roc_auc"] == pytest.approx(roc_auc_score(y, window[:, 1]), abs=0.03)
        assert estimate.metrics["f1_macro"] == pytest.approx(f1_score(y, predictions, average="macro"), abs=0.03)
        assert estimate.metrics["log_loss"] == pytest.approx(log_loss(y, window), rel=0.05)
        assert set(estimate.metrics) == {"accuracy", "precision", "recall", "f1", "f1_macro", "roc_auc", "log_loss"}


def test_an_overconfident_classifier_is_calibrated_on_the_reference_before_estimating():
    rng = np.random.default_rng(2)
    labels, _, probabilities = binary_window(rng, 4000, 0.0, served_steepness=8.0)
    estimator = ConfidenceEstimator.fit(labels, probabilities, ["0", "1"])
    assert estimator.calibrator.calibrated
    y, predictions, window = binary_window(rng, 5000, -1.0, served_steepness=8.0)
    raw = metrics_from_confusion(np.array([[0.0, 0.0], [0.0, 0.0]]) + _raw_confusion(window, predictions))
    estimated = estimator.estimate(predictions, window).metrics["f1"]
    realized = f1_score(y, predictions)
    assert abs(estimated - realized) < 0.03
    assert abs(raw["f1"] - realized) > 2 * abs(estimated - realized)  # uncalibrated it would be far off


def _raw_confusion(probabilities, predictions):
    return np.stack([probabilities[predictions == j].sum(axis=0) for j in range(2)], axis=1)


def test_certain_probabilities_make_the_estimate_the_realized_metrics():
    labels = np.array([0, 1, 1, 0, 1, 0, 0, 1] * 5)
    predictions = np.array([0, 1, 0, 0, 1, 1, 0, 1] * 5)
    hard = np.eye(2)[labels]
    estimator = ConfidenceEstimator.fit(labels, hard, [0, 1])
    estimate = estimator.estimate(predictions, hard).metrics
    assert estimate["f1"] == pytest.approx(f1_score(labels, predictions))
    assert estimate["accuracy"] == pytest.approx(np.mean(labels == predictions))


def test_the_expected_roc_auc_of_hard_labels_is_sklearn_s_roc_auc_ties_included():
    rng = np.random.default_rng(4)
    scores = rng.integers(0, 10, 500) / 10
    labels = (rng.random(500) < scores).astype(float)
    assert expected_roc_auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores))


def test_a_multiclass_estimate_is_support_weighted_like_the_realized_metric():
    rng = np.random.default_rng(5)

    def window(rows, shift):
        x = rng.normal(shift, 1.5, rows)
        logits = np.column_stack([-2 * x, np.zeros(rows), 2 * x])
        probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        labels = (rng.random((rows, 1)) > np.cumsum(probabilities, axis=1)).sum(axis=1)
        names = np.array(["a", "b", "c"])
        return names[labels], names[probabilities.argmax(axis=1)], probabilities

    labels, _, probabilities = window(3000, 0.0)
    estimator = ConfidenceEstimator.fit(labels, probabilities, ["a", "b", "c"])
    y, predictions, probs = window(5000, 1.0)
    estimated = estimator.estimate(predictions, probs).metrics
    assert estimated["f1"] == pytest.approx(f1_score(y, predictions, average="weighted"), abs=0.03)


def test_labels_numbers_booleans_and_class_names_as_strings_are_the_same_classes():
    assert list(class_keys([1, 0.0, "1"])) == list(class_keys(["1.0", "0", 1]))
    assert list(class_keys(["no", "yes"])) == ["no", "yes"]
    assert list(class_keys([True, False, "True", "false"])) == list(class_keys([1, 0, "1", 0.0]))


def test_a_reference_with_one_class_or_the_wrong_width_cannot_be_used():
    with pytest.raises(EstimationError, match="one class"):
        ConfidenceEstimator.fit([1] * 50, [[0.2, 0.8]] * 50, [0, 1])
    with pytest.raises(EstimationError, match="3 classes"):
        ConfidenceEstimator.fit([0, 1] * 25, [[0.2, 0.8]] * 50, [0, 1, 2])
    with pytest.raises(EstimationError, match="none of the model's classes"):
        ConfidenceEstimator.fit(["x", "y"] * 25, [[0.2, 0.8]] * 50, [0, 1])
    with pytest.raises(EstimationError, match="20 needed"):
        ConfidenceEstimator.fit([0, 1] * 5, [[0.2, 0.8]] * 10, [0, 1])


def test_a_changed_relation_is_concept_drift_and_chance_is_not():
    rng = np.random.default_rng(6)
    labels, _, probabilities = binary_window(rng, 3000, 0.0)
    estimator = ConfidenceEstimator.fit(labels, probabilities, [0, 1])
    for flip, expected in ((False, False), (True, True)):
        y, predictions, window = binary_window(rng, 500, 0.5, flip=flip)
        estimated = estimator.estimate(predictions, window).metrics["f1"]
        realized = f1_score(y, predictions)
        spread = estimator.realized_spread("f1", predictions, window)
        assert 0 < spread < 0.1
        verdict = concept_drift(metric="f1", estimated=estimated, realized=realized, spread=spread, margin=0.1,
                                labelled=500)
        assert verdict.detected is expected
        assert f"{realized:.4g}" in verdict.message and f"{estimated:.4g}" in verdict.message
    assert verdict.reason == "ConceptDrift" and "concept drift:" in verdict.message


def test_a_gap_within_the_sampling_noise_of_few_labels_is_not_concept_drift():
    verdict = concept_drift(metric="f1", estimated=0.8, realized=0.6, spread=0.1, margin=0.1, labelled=20)
    assert not verdict.detected and verdict.noise == pytest.approx(0.3)


def test_for_error_metrics_concept_drift_is_a_realized_error_above_the_estimate_by_a_relative_margin():
    assert concept_drift(metric="mae", estimated=1.0, realized=1.3, spread=0.01, margin=0.2, labelled=900).detected
    assert not concept_drift(metric="mae", estimated=1.0, realized=1.1, spread=0.01, margin=0.2,
                             labelled=900).detected


def regression_window(rng, rows, shift):
    """y = 2x + noise whose spread grows with |x| (so the error depends on where inputs lie)."""
    x = rng.normal(shift, 1.0, rows)
    region = rng.choice(["north", "south"], rows)
    noise = rng.normal(0, 0.2 + np.abs(x) + (region == "south"), rows)
    return {"x": x, "region": region}, 2 * x, 2 * x + noise


def test_the_direct_loss_estimator_follows_the_realized_mae_and_rmse_as_inputs_shift():
    import pandas as pd

    rng = np.random.default_rng(7)
    inputs, predictions, labels = regression_window(rng, 2000, 0.0)
    estimator = LossEstimator.fit(pd.DataFrame(inputs), predictions, labels)
    for shift in (0.0, 2.0):
        inputs, predictions, labels = regression_window(rng, 3000, shift)
        estimate = estimator.estimate(pd.DataFrame(inputs), predictions).metrics
        assert estimate["mae"] == pytest.approx(mean_absolute_error(labels, predictions), rel=0.08)
        assert estimate["rmse"] == pytest.approx(root_mean_squared_error(labels, predictions), rel=0.08)
    assert realized_loss_spread("mae", labels, predictions) > 0


def test_the_isotonic_map_keeps_only_block_ends_and_interpolates_as_scikit_learn_s():
    from sklearn.isotonic import IsotonicRegression

    from kadence.domain.monitoring.estimation import _isotonic

    rng = np.random.default_rng(5)
    scores = np.round(rng.random(3000), 3)  # ties included
    outcomes = (rng.random(3000) < scores ** 2).astype(float)
    fitted = _isotonic(scores, outcomes)
    assert len(fitted.x) < len(np.unique(scores)) / 2  # pooled blocks collapse to their end points
    reference = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(scores, outcomes)
    grid = np.linspace(-0.1, 1.1, 2001)
    np.testing.assert_allclose(fitted.predict(grid), reference.predict(grid), atol=1e-9)
    order = np.argsort(scores)
    presorted = _isotonic(scores[order], outcomes[order], presorted=True)
    np.testing.assert_allclose(presorted.predict(grid), fitted.predict(grid), atol=1e-12)
