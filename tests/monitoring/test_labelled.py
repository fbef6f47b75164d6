"""Labels joined to predictions however late they come: the quality window, label delay, the
feedback export (kadence.domain.monitoring.labelled)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from kadence.domain.monitoring import labelled as labels

END = datetime(2026, 12, 1, tzinfo=timezone.utc)
DAY = timedelta(days=1)


def predictions(*rows: tuple[str, datetime]) -> pd.DataFrame:
    return pd.DataFrame({
        "request_id": [r for r, _ in rows],
        "time": pd.to_datetime([t for _, t in rows], utc=True),
        "prediction": [1] * len(rows), "probabilities": [None] * len(rows), "model_version": ["1"] * len(rows),
    })


def feedback(*rows: tuple[str, object, datetime]) -> pd.DataFrame:
    return pd.DataFrame({
        "request_id": pd.Series([r for r, _, _ in rows], dtype=object),
        "label": pd.Series([label for _, label, _ in rows], dtype=object),
        "label_time": pd.to_datetime(pd.Series([t for _, _, t in rows], dtype=object), utc=True),
    })


def window(limit=100, max_age=30 * DAY) -> labels.QualityWindowSpec:
    return labels.QualityWindowSpec(limit, max_age)


def test_a_label_that_comes_weeks_after_its_prediction_is_joined():
    joined = labels.join_labels(predictions(("a", END - 20 * DAY), ("b", END - DAY)),
                                feedback(("a", 1, END - 2 * DAY)))
    picked = labels.quality_window(joined, END, window())
    assert picked["request_id"].tolist() == ["a"]
    assert labels.label_delays_seconds(picked) == [18 * 86400.0]


def test_the_window_is_the_newest_labelled_predictions_not_the_newest_predictions():
    # the 5 newest predictions have no label yet; the window still holds 3 labelled ones
    rows = [(f"p{i}", END - timedelta(hours=i)) for i in range(10)]
    joined = labels.join_labels(predictions(*rows), feedback(*[(f"p{i}", 0, END) for i in range(5, 10)]))
    picked = labels.quality_window(joined, END, window(limit=3))
    assert picked["request_id"].tolist() == ["p7", "p6", "p5"]  # oldest first


def test_predictions_older_than_max_age_are_never_judged_however_late_their_label():
    joined = labels.join_labels(predictions(("old", END - 31 * DAY), ("new", END - 29 * DAY)),
                                feedback(("old", 1, END), ("new", 1, END)))
    assert labels.quality_window(joined, END, window())["request_id"].tolist() == ["new"]


def test_no_labelled_predictions_only_when_none_lies_within_the_retention():
    joined = labels.join_labels(predictions(("a", END - 29 * DAY)), feedback(("a", 1, END - 28 * DAY)))
    assert len(labels.quality_window(joined, END, window())) == 1
    assert len(labels.quality_window(joined, END + 2 * DAY, window())) == 0


def test_a_label_given_after_the_evaluation_time_is_not_used_yet():
    joined = labels.join_labels(predictions(("a", END - DAY)), feedback(("a", 1, END + timedelta(seconds=1))))
    assert len(labels.quality_window(joined, END, window())) == 0


def test_a_relabelled_prediction_counts_once_with_its_latest_label():
    joined = labels.join_labels(predictions(("a", END - 3 * DAY)),
                                feedback(("a", 0, END - 2 * DAY), ("a", 1, END - DAY), ("a", 0, END - 2.5 * DAY)))
    assert joined[["request_id", "label"]].values.tolist() == [["a", 1]]
    assert labels.label_delays_seconds(joined) == [2 * 86400.0]


def test_a_label_without_its_prediction_in_the_log_is_not_a_labelled_prediction():
    joined = labels.join_labels(predictions(("a", END - DAY)), feedback(("zzz", 1, END)))
    assert len(joined) == 0


def test_after_leaves_out_what_the_challenger_trained_on():
    joined = labels.join_labels(predictions(("seen", END - 5 * DAY), ("unseen", END - DAY)),
                                feedback(("seen", 1, END), ("unseen", 1, END)))
    picked = labels.quality_window(joined, END, window(), after=END - 2 * DAY)
    assert picked["request_id"].tolist() == ["unseen"]


@pytest.mark.parametrize("delays, p50, p95", [
    ([], None, None),
    ([60.0], 60.0, 60.0),
    ([float(s) for s in range(1, 101)], 50.5, 95.05),
])
def test_delay_percentiles_interpolate_between_ranks(delays, p50, p95):
    stats = labels.delay_percentiles(delays)
    assert stats.p50_seconds == (pytest.approx(p50) if p50 is not None else None)
    assert stats.p95_seconds == (pytest.approx(p95) if p95 is not None else None)


def test_a_label_stamped_before_its_prediction_counts_as_no_delay():
    joined = labels.join_labels(predictions(("a", END)), feedback(("a", 1, END - timedelta(seconds=5))))
    assert labels.label_delays_seconds(joined) == [0.0]


def test_the_export_holds_inputs_target_and_time_one_row_per_request_with_the_latest_label():
    meta = predictions(("a", END - 2 * DAY), ("b", END - DAY))
    joined = labels.join_labels(meta, feedback(("a", 0, END - DAY), ("b", 1, END), ("a", 1, END)))
    inputs = pd.DataFrame({"request_id": ["b", "a"], "x": [2.0, 1.0], "label": ["input", "input"],
                           "churned": [9, 9]})
    frame = labels.export_frame(inputs, joined, target="churned", time_column="event_time")
    assert frame.columns.tolist() == ["x", "label", "churned", "event_time"]
    assert frame["x"].tolist() == [1.0, 2.0]
    assert frame["label"].tolist() == ["input", "input"]  # an input called label stays an input
    assert frame["churned"].tolist() == [1, 1]  # the labels, not the logged column of that name
    assert frame["event_time"].tolist() == meta["time"].tolist()


def test_the_export_keeps_a_logged_time_column_rather_than_the_prediction_time():
    meta = predictions(("a", END - 2 * DAY))
    joined = labels.join_labels(meta, feedback(("a", 0, END)))
    inputs = pd.DataFrame({"request_id": ["a"], "when": ["2026-01-01"]})
    frame = labels.export_frame(inputs, joined, target="y", time_column="when")
    assert frame["when"].tolist() == ["2026-01-01"]


def test_equal_exports_have_equal_digests_and_other_labels_another():
    meta = predictions(("a", END - 2 * DAY), ("b", END - DAY))
    inputs = pd.DataFrame({"request_id": ["a", "b"], "x": [1.0, 2.0]})

    def digest(label_b):
        joined = labels.join_labels(meta, feedback(("a", 0, END), ("b", label_b, END)))
        return labels.digest(labels.parquet_bytes(labels.export_frame(inputs, joined, "y", "t")))

    assert digest(1) == digest(1)
    assert digest(1) != digest(0)


def test_a_quality_window_needs_a_positive_limit_and_age():
    with pytest.raises(ValueError, match="limit"):
        labels.QualityWindowSpec(0, DAY)
    with pytest.raises(ValueError, match="maxAge"):
        labels.QualityWindowSpec(1, timedelta(0))


def test_a_checkpoint_round_trips_and_folds_old_rows_with_newly_read_ones():
    meta = predictions(("old", END - 40 * DAY), ("mid", END - 20 * DAY))
    joined = labels.join_labels(meta, feedback(("old", 0, END - 39 * DAY), ("mid", 0, END - 19 * DAY)))
    inputs = pd.DataFrame({"request_id": ["old", "mid"], "x": [1.0, 2.0], "time": ["a", "b"]})
    previous = labels.to_checkpoint(joined, inputs)
    back_joined, back_inputs = labels.from_checkpoint(previous)
    assert back_inputs.columns.tolist() == ["request_id", "x", "time"]  # an input called time survives
    assert back_joined["request_id"].tolist() == ["old", "mid"]
    # read now: the retention's predictions, with mid relabelled and a new one
    now = labels.join_labels(predictions(("mid", END - 20 * DAY), ("new", END - DAY)),
                             feedback(("mid", 1, END - DAY), ("new", 1, END)))
    recent = labels.to_checkpoint(now, pd.DataFrame({"request_id": ["mid", "new"], "x": [2.0, 3.0],
                                                     "z": [True, False]}))
    folded = labels.fold_checkpoint(previous, recent, END - 30 * DAY)
    assert folded["request_id"].tolist() == ["old", "mid", "new"]
    assert folded["label"].tolist() == [0, 1, 1]  # the retention's rows as read now
    assert folded["input:z"].isna().tolist() == [True, False, False]


@pytest.mark.parametrize("labelled, rows, max_fraction, held", [
    pytest.param(1000, 100, 0.5, 100, id="the declared rows when there are plenty"),
    pytest.param(150, 100, 0.5, 75, id="never more than the fraction so that a small feedback still trains"),
    pytest.param(1, 100, 0.5, 0, id="a single labelled prediction trains"),
    pytest.param(1000, 0, 0.5, 0, id="zero rows hold none out"),
])
def test_a_hold_out_keeps_back_its_rows_up_to_a_share_of_the_labelled_predictions(labelled, rows, max_fraction, held):
    assert labels.held_out_count(labelled, rows, max_fraction) == held


def test_the_hold_out_is_the_newest_request_ids_by_prediction_time_each_kept_whole():
    joined = pd.DataFrame({"request_id": ["a", "b", "c", "c", "d", "e"],
                           "time": pd.to_datetime([END - 5 * DAY, END - DAY, END - 3 * DAY, END - 3 * DAY,
                                                   END - DAY, END - 4 * DAY], utc=True),
                           "label": [0, 1, 0, 1, 1, 0]})
    kept, held = labels.hold_out_newest(joined, 3)
    assert sorted(held["request_id"]) == ["b", "c", "c", "d"]  # ties at END - DAY broken by request id
    assert kept["request_id"].tolist() == ["a", "e"]
    kept, held = labels.hold_out_newest(joined, 0)
    assert len(kept) == len(joined) and held.empty
