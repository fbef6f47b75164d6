import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    precision_score,
    recall_score,
    roc_auc_score,
    root_mean_squared_error,
)

from kadence.domain.monitoring.quality import (
    QualityError,
    classification_metrics,
    is_better,
    is_worse_than,
    quality_for,
    regression_metrics,
    task_of,
)

RNG = np.random.default_rng(1)
Y_TRUE = RNG.integers(0, 2, 500)
P_POSITIVE = np.clip(Y_TRUE * 0.6 + RNG.uniform(0, 0.5, 500), 0, 1)
Y_PRED = (P_POSITIVE > 0.5).astype(int)
PROBABILITIES = [[1 - p, p] for p in P_POSITIVE]


def test_binary_metrics_match_scikit_learn_with_the_larger_label_as_positive():
    result = classification_metrics(Y_TRUE, Y_PRED, PROBABILITIES)
    assert result.metrics == pytest.approx({
        "accuracy": accuracy_score(Y_TRUE, Y_PRED),
        "f1": f1_score(Y_TRUE, Y_PRED),
        "f1_macro": f1_score(Y_TRUE, Y_PRED, average="macro"),
        "precision": precision_score(Y_TRUE, Y_PRED),
        "recall": recall_score(Y_TRUE, Y_PRED),
        "roc_auc": roc_auc_score(Y_TRUE, P_POSITIVE),
        "log_loss": log_loss(Y_TRUE, np.clip(PROBABILITIES, 1e-15, 1)),
    })
    assert result.labelled == 500 and result.unavailable == {}


def test_roc_auc_with_the_signatures_string_classes_and_numeric_labels_matches_scikit_learn():
    result = classification_metrics(Y_TRUE, Y_PRED, PROBABILITIES, classes=["0", "1"])
    assert result.metrics["roc_auc"] == pytest.approx(roc_auc_score(Y_TRUE, P_POSITIVE))


def test_f1_by_hand_for_string_labels_uses_yes_as_the_positive_class():
    true = ["yes", "yes", "no", "no", "yes"]
    pred = ["yes", "no", "no", "yes", "yes"]
    # positive "yes": tp=2, fp=1, fn=1 -> precision 2/3, recall 2/3, f1 2/3
    result = classification_metrics(true, pred, wanted=("f1", "precision", "recall", "accuracy"))
    assert result.metrics == pytest.approx({"f1": 2 / 3, "precision": 2 / 3, "recall": 2 / 3, "accuracy": 0.6})


def test_multiclass_metrics_are_support_weighted_like_scikit_learn():
    true = RNG.integers(0, 3, 300)
    pred = np.where(RNG.uniform(size=300) < 0.7, true, RNG.integers(0, 3, 300))
    raw = RNG.uniform(size=(300, 3)) + np.eye(3)[true]
    probabilities = raw / raw.sum(axis=1, keepdims=True)
    result = classification_metrics(true, pred, probabilities.tolist())
    assert result.metrics["f1"] == pytest.approx(f1_score(true, pred, average="weighted"))
    assert result.metrics["recall"] == pytest.approx(recall_score(true, pred, average="weighted"))
    assert result.metrics["roc_auc"] == pytest.approx(
        roc_auc_score(true, probabilities, multi_class="ovr", average="weighted"))


def test_labels_sent_as_strings_match_numeric_predictions():
    result = classification_metrics(["1", "0", "1"], [1, 0, 0], wanted=("accuracy",))
    assert result.metrics["accuracy"] == pytest.approx(2 / 3)


def test_roc_auc_without_logged_probabilities_is_unavailable_not_zero():
    result = classification_metrics(Y_TRUE, Y_PRED, None)
    assert "roc_auc" not in result.metrics
    assert result.unavailable["roc_auc"] == "no probabilities were logged"


def test_roc_auc_with_a_single_class_among_the_labels_is_unavailable():
    result = classification_metrics([1, 1, 1], [1, 0, 1], [[0.1, 0.9], [0.6, 0.4], [0.2, 0.8]])
    assert "two classes" in result.unavailable["roc_auc"]


def test_f1_with_a_single_class_everywhere_is_unavailable():
    result = classification_metrics([1, 1], [1, 1], wanted=("f1", "accuracy"))
    assert result.metrics == {"accuracy": 1.0}
    assert "only one class" in result.unavailable["f1"]


def test_regression_metrics_match_scikit_learn_and_skip_non_finite_pairs():
    true = RNG.normal(size=200)
    pred = true + RNG.normal(scale=0.3, size=200)
    result = regression_metrics(list(true) + [np.nan], list(pred) + [1.0])
    assert result.metrics == pytest.approx({"rmse": root_mean_squared_error(true, pred),
                                            "mae": mean_absolute_error(true, pred)})
    assert result.labelled == 200


def test_no_labels_give_no_metrics_and_say_why():
    assert classification_metrics([], []).metrics == {}
    assert regression_metrics([], []).unavailable == {"rmse": "no labelled predictions", "mae": "no labelled predictions"}


def test_mismatched_lengths_are_refused():
    with pytest.raises(QualityError, match="3 labels but 2 predictions"):
        classification_metrics([1, 0, 1], [1, 0])


def test_non_numeric_regression_labels_are_refused():
    with pytest.raises(QualityError, match="must be numbers"):
        regression_metrics(["a"], [1.0])


def test_the_policy_metric_chooses_the_task():
    assert task_of("rmse") == "regression" and task_of("f1") == "classification"
    assert set(quality_for("mae", [1.0, 2.0], [1.5, 2.0]).metrics) == {"rmse", "mae"}
    with pytest.raises(QualityError, match="unknown metric 'r3'"):
        task_of("r3")


@pytest.mark.parametrize("metric, value, threshold, worse", [
    ("f1", 0.54, 0.55, True),
    ("f1", 0.55, 0.55, False),
    ("rmse", 3.1, 3.0, True),
    ("mae", 2.9, 3.0, False),
])
def test_worse_than_the_threshold_depends_on_the_metric_direction(metric, value, threshold, worse):
    assert is_worse_than(metric, value, threshold) is worse


def test_better_needs_more_than_the_margin():
    assert is_better("f1", 0.80, 0.75, margin=0.01)
    assert not is_better("f1", 0.755, 0.75, margin=0.01)
    assert is_better("rmse", 1.0, 1.2)


def test_f1_macro_counts_a_rare_class_as_much_as_a_common_one_unlike_the_weighted_f1():
    true = [0] * 90 + [1] * 5 + [2] * 5
    pred = [0] * 90 + [0] * 5 + [2] * 5  # class 1 never found
    result = classification_metrics(true, pred, wanted=("f1", "f1_macro"))
    assert result.metrics["f1_macro"] == pytest.approx(f1_score(true, pred, average="macro"))
    assert result.metrics["f1_macro"] < result.metrics["f1"] - 0.2


def test_multiclass_log_loss_over_the_models_classes_matches_scikit_learn_and_is_worse_for_wrong_labels():
    true = RNG.integers(0, 3, 200)
    raw = RNG.uniform(size=(200, 3)) + 2 * np.eye(3)[true]
    probabilities = raw / raw.sum(axis=1, keepdims=True)
    pred = probabilities.argmax(axis=1)
    honest = classification_metrics(true, pred, probabilities.tolist(), classes=["0", "1", "2"], wanted=("log_loss",))
    assert honest.metrics["log_loss"] == pytest.approx(log_loss(true, probabilities, labels=[0, 1, 2]))
    rotated = classification_metrics((true + 1) % 3, pred, probabilities.tolist(), classes=["0", "1", "2"],
                                     wanted=("log_loss",))
    assert rotated.metrics["log_loss"] > honest.metrics["log_loss"] + 0.5
    assert is_worse_than("log_loss", rotated.metrics["log_loss"], 1.0) and not is_worse_than("log_loss", 0.5, 1.0)


def test_log_loss_without_probabilities_or_with_a_label_the_model_does_not_know_is_unavailable_with_the_reason():
    missing = classification_metrics([0, 1], [0, 1], None, wanted=("log_loss",))
    assert missing.unavailable == {"log_loss": "no probabilities were logged"}
    unknown = classification_metrics([0, 7], [0, 1], [[0.9, 0.1], [0.2, 0.8]], classes=["0", "1"], wanted=("log_loss",))
    assert "log_loss" not in unknown.metrics and "labels ['7.0'] are none of" in unknown.unavailable["log_loss"]
