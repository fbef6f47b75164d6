"""Segments and fairness (domain.monitoring.fairness): the metric per segment, fairlearn's
demographic-parity and equalized-odds differences, and the gates that name the worst segment."""

from __future__ import annotations

import pytest

from kadence.domain.monitoring.fairness import (DISPARITY_ABOVE_LIMIT, SEGMENT_BELOW_THRESHOLD, SEGMENTS_NOT_JUDGED,
                                                SEGMENTS_PASSED, judge_segments, segment_report)


def rows(spec):
    """[(group, label, prediction, count)] -> (labels, predictions, groups)."""
    y, p, g = [], [], []
    for group, label, prediction, count in spec:
        y += [label] * count
        p += [prediction] * count
        g += [group] * count
    return y, p, g


# north: selection rate 0.5, TPR 1.0, FPR 0.0; south: selection rate 0.2, TPR 0.4, FPR 0.0
Y, P, G = rows([("north", 1, 1, 20), ("north", 0, 0, 20),
                ("south", 1, 1, 8), ("south", 1, 0, 12), ("south", 0, 0, 20)])


def test_the_metric_is_reported_per_segment_with_its_rows():
    report = segment_report("recall", Y, P, columns={"region": G}, min_rows=10)
    assert [(s.segment, s.rows, s.value) for s in report.segments] == [("north", 40, 1.0), ("south", 40, 0.4)]
    assert report.worst().segment == "south"


def test_demographic_parity_and_equalized_odds_follow_fairlearns_definitions():
    disparity = segment_report("f1", Y, P, columns={"region": G}, sensitive="region", min_rows=10).disparity
    assert disparity.selection_rates == {"north": 0.5, "south": 0.2}
    assert disparity.demographic_parity_difference == pytest.approx(0.3)  # 0.5 - 0.2
    assert disparity.equalized_odds_difference == pytest.approx(0.6)  # TPR 1.0 - 0.4; FPR 0 - 0


def test_a_segment_below_min_segment_metric_fails_the_gate_naming_it_and_its_numbers():
    gate = judge_segments(segment_report("recall", Y, P, columns={"region": G}, min_rows=10),
                          min_segment_metric=0.6, max_disparity=None)
    assert (gate.passed, gate.reason) == (False, SEGMENT_BELOW_THRESHOLD)
    assert gate.message.startswith("segment region=south: recall=0.4 < minSegmentMetric 0.6 over 40 rows")


def test_a_disparity_above_max_disparity_fails_the_gate_with_both_differences():
    gate = judge_segments(segment_report("f1", Y, P, columns={"region": G}, sensitive="region", min_rows=10),
                          min_segment_metric=None, max_disparity=0.2)
    assert (gate.passed, gate.reason) == (False, DISPARITY_ABOVE_LIMIT)
    assert "demographic-parity difference 0.3, equalized-odds difference 0.6 > maxDisparity 0.2" in gate.message


def test_fair_segments_pass_and_say_the_worst_one():
    gate = judge_segments(segment_report("recall", Y, P, columns={"region": G}, sensitive="region", min_rows=10),
                          min_segment_metric=0.3, max_disparity=0.7)
    assert (gate.passed, gate.reason) == (True, SEGMENTS_PASSED)
    assert gate.message == "worst segment region=south recall=0.4; region disparity 0.6"


def test_lower_is_better_metrics_fail_a_segment_above_the_threshold():
    report = segment_report("mae", [1.0] * 40 + [1.0] * 40, [1.0] * 40 + [3.0] * 40,
                            columns={"region": ["a"] * 40 + ["b"] * 40}, min_rows=10)
    gate = judge_segments(report, min_segment_metric=1.0, max_disparity=None)
    assert gate.message.startswith("segment region=b: mae=2 > minSegmentMetric 1 over 40 rows")


def test_small_segments_are_reported_but_not_judged():
    report = segment_report("recall", Y, P, columns={"region": G}, min_rows=50)
    assert [s.judged for s in report.segments] == [False, False]
    assert report.segments[1].unavailable == "40 rows < minRows 50"
    gate = judge_segments(report, min_segment_metric=0.9, max_disparity=None)
    assert (gate.passed, gate.reason) == (True, SEGMENTS_NOT_JUDGED)


def test_groups_too_small_are_left_out_of_the_disparity():
    y, p, g = rows([("a", 1, 1, 30), ("a", 0, 0, 30), ("b", 1, 0, 30), ("b", 0, 0, 30), ("c", 1, 1, 3)])
    disparity = segment_report("f1", y, p, columns={"group": g}, sensitive="group", min_rows=10).disparity
    assert disparity.groups == 2 and set(disparity.selection_rates) == {"a", "b"}


@pytest.mark.parametrize("metric, y, p, why", [
    pytest.param("rmse", [1.0, 2.0] * 20, [1.0, 2.0] * 20, "defined for classifiers", id="regression"),
    pytest.param("f1", [0, 1, 2] * 20, [0, 1, 2] * 20, "defined for two classes; there are 3", id="three classes"),
])
def test_disparity_is_skipped_with_a_reason_where_it_is_not_defined(metric, y, p, why):
    report = segment_report(metric, y, p, columns={"s": ["a", "b"] * (len(y) // 2)}, sensitive="s", min_rows=1)
    assert report.disparity.worst is None and why in report.disparity.unavailable
    gate = judge_segments(report, min_segment_metric=None, max_disparity=0.1)
    assert (gate.passed, gate.reason) == (True, SEGMENTS_NOT_JUDGED) and why in gate.message


def test_a_segment_column_missing_from_the_data_is_skipped_with_a_reason():
    report = segment_report("f1", Y, P, columns={"region": G, "plan": None}, min_rows=10)
    assert report.skipped == {"plan": "column 'plan' is not in the data"}
    assert report.wire()["skipped"] == {"plan": "column 'plan' is not in the data"}


def test_missing_values_form_their_own_segment():
    report = segment_report("accuracy", [1, 1, 0], [1, 0, 0], columns={"region": ["a", None, float("nan")]},
                            min_rows=1)
    assert [(s.segment, s.rows) for s in report.segments] == [("(missing)", 2), ("a", 1)]
