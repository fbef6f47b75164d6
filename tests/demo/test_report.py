"""The demo's bookkeeping: F1 per month, whether the loop closed, the progress line, the
events table and the files (PNG, a self-contained HTML page, demo.json)."""

from __future__ import annotations

import json
import re

import pytest
from sklearn.metrics import f1_score

from kadence.demo import report
from kadence.demo.report import Milestone, Month


def milestone(kind: str, reason: str = "r", month: int | None = 1, message: str = "m") -> Milestone:
    return Milestone("2026-11-23T03:00:00Z", kind, "Obj/x", reason, message, month)


CLOSED = [milestone(report.BREACH, month=2), milestone(report.RETRAIN, month=2),
          milestone(report.DATASET_VERSION), milestone(report.CANDIDATE, month=3),
          milestone(report.VERDICT, "Approved", month=3), milestone(report.CANARY, month=4),
          milestone(report.CANARY_STEP, month=4), milestone(report.PROMOTED, month=4)]


@pytest.mark.parametrize(("labels", "predictions"), [
    ([1, 0, 1, 1, 0], [1, 0, 0, 1, 1]), ([0, 0, 1], [0, 0, 0]), ([1, 1], [1, 1]), ([0, 0], [1, 1]),
])
def test_f1_is_scikit_learns_f1_of_the_positive_class(labels, predictions):
    assert report.f1(labels, predictions) == pytest.approx(f1_score(labels, predictions, zero_division=0.0))


def test_f1_of_no_labels_is_unknown_and_mismatched_lengths_are_refused():
    assert report.f1([], []) is None
    with pytest.raises(ValueError, match="2 labels but 1 predictions"):
        report.f1([1, 0], [1])


def test_a_month_adds_up_requests_per_answering_version_and_scores_the_first_model_on_the_same_rows():
    month = Month(3, 0.5)
    month.record([1, 0, 1], [1, 0, 0], "1")
    month.original += [0, 0, 0]
    month.record([1, 1], [1, 1], "2")
    month.original += [0, 1]
    assert (month.rows, month.versions) == (5, {"1": 3, "2": 2})
    assert month.f1 == pytest.approx(f1_score([1, 0, 1, 1, 1], [1, 0, 0, 1, 1]))
    assert month.f1_original == pytest.approx(f1_score([1, 0, 1, 1, 1], [0, 0, 0, 0, 1]))
    summary = month.summary()
    assert summary["rows"] == 5 and "labels" not in summary and summary["f1"] == round(month.f1, 4)


def test_without_the_first_models_answer_for_every_row_its_f1_is_unknown():
    month = Month(0, 0.0)
    month.record([1, 0], [1, 0], "1")
    month.original += [1]
    assert month.f1_original is None


def without(kind: str) -> list[Milestone]:
    return [m for m in CLOSED if m.kind != kind]


@pytest.mark.parametrize(("milestones", "retrains", "closed", "says"), [
    (CLOSED, 1, True, "the loop closed"),
    (without(report.BREACH), 1, False, "never reported a breach"),
    (without(report.RETRAIN), 1, False, "no retrain TrainingRun"),
    (without(report.CANDIDATE), 1, False, "registered no candidate"),
    (without(report.VERDICT), 1, False, "gave no verdict"),
    (without(report.CANARY), 1, False, "never started as a canary"),
    (without(report.PROMOTED), 1, False, "was not promoted"),
    (without(report.PROMOTED) + [milestone(report.ROLLED_BACK, message="AnalysisFailed: errors")], 1, False,
     "rolled back: AnalysisFailed: errors"),
    ([m if m.kind != report.VERDICT else milestone(report.VERDICT, "ChallengerNotBetter", message="0.4 vs 0.5")
      for m in CLOSED], 1, False, "did not approve the candidate: 0.4 vs 0.5"),
    (CLOSED, 2, False, "exactly one retrain"),
    (CLOSED, 0, False, "exactly one retrain"),
    ([CLOSED[-1], *CLOSED[:-1]], 1, False, "was not promoted"),
])
def test_the_loop_closes_only_with_every_step_in_order_and_one_retrain(milestones, retrains, closed, says):
    verdict = report.loop_verdict(milestones, retrains)
    assert verdict[0] is closed
    assert says in verdict[1]


@pytest.mark.parametrize(("retrains", "closed", "says"), [
    (1, True, "breach -> one retrain -> candidate approved"),
    (2, True, "breach -> 2 retrains -> candidate approved"),
])
def test_with_late_labels_a_second_retrain_after_a_lost_candidate_still_closes_the_loop(retrains, closed, says):
    assert report.loop_verdict(CLOSED, retrains, exactly_one=False) == (
        closed, "the loop closed: " + says + " -> canary -> promoted")


@pytest.mark.parametrize("reason", report.PROVISIONAL_VERDICTS)
def test_a_verdict_waiting_for_labels_is_not_a_refusal_the_next_verdict_decides(reason):
    waiting = milestone(report.VERDICT, reason, message="8 labelled predictions, 100 needed")
    at = [m.kind for m in CLOSED].index(report.VERDICT)
    assert report.loop_verdict([*CLOSED[:at], waiting, *CLOSED[at:]], 1)[0] is True
    refused = milestone(report.VERDICT, "ChallengerNotBetter", message="0.4 vs 0.5")
    verdict = report.loop_verdict([*CLOSED[:at], waiting, refused], 1)
    assert verdict == (False, "the champion/challenger comparison did not approve the candidate: 0.4 vs 0.5")
    only_waiting = report.loop_verdict([*CLOSED[:at], waiting], 1)
    assert only_waiting[0] is False and "8 labelled predictions, 100 needed" in only_waiting[1]


def test_with_late_labels_the_month_line_says_which_months_labels_the_monitor_judged():
    month = Month(5, 1.0, evaluation={"metrics": {"f1": 0.3}, "breached": True})
    month.record([1], [0], "1")
    assert report.month_line(month, 0.55, label_delay=1).endswith("BREACHED (labels of month 4)")
    assert "labels of" not in report.month_line(month, 0.55)


def test_a_month_line_shows_the_f1_a_mark_under_the_threshold_the_versions_the_canary_and_the_monitor():
    month = Month(4, 1.0, canary_weight=50, evaluation={"metrics": {"f1": 0.1234}, "breached": True})
    month.record([1, 1, 0], [0, 0, 0], "1")
    month.record([1], [1], "2")
    line = report.month_line(month, 0.55)
    assert re.search(r"month  4 .*F1 0\.500< .*served v1:3, v2:1 canary 50% .*monitor: f1=0\.123 BREACHED", line)
    healthy = Month(0, 0.0, evaluation={"metrics": {"f1": 0.8}, "breached": False, "reason": "Healthy"})
    healthy.record([1, 0], [1, 0], "1")
    assert "F1 1.000 " in report.month_line(healthy, 0.55) and "Healthy" in report.month_line(healthy, 0.55)
    assert "no evaluation" in report.month_line(Month(1, 0.1), 0.55)


def test_the_events_table_has_a_header_and_one_row_per_milestone():
    lines = report.events_table(CLOSED[:2]).splitlines()
    assert lines[0].split() == list(report.EVENT_COLUMNS)
    assert len(lines) == 3 and report.BREACH in lines[1]


def months() -> list[Month]:
    found = []
    for index, (labels, served, first) in enumerate([([1, 0, 1], [1, 0, 1], [1, 0, 1]),
                                                     ([1, 1, 0], [0, 0, 1], [0, 0, 1]),
                                                     ([1, 1, 0], [1, 1, 0], [0, 0, 1])]):
        month = Month(index, index / 2, evaluation={"metrics": {"f1": 0.5}, "breached": index == 1, "time": "t"})
        month.record(labels, served, "1")
        month.original += first
        found.append(month)
    return found


def test_the_html_page_is_self_contained_escapes_messages_and_lists_months_and_events():
    hostile = milestone(report.ROLLED_BACK, message="<script>alert(1)</script>")
    page = report.render_html(b"\x89PNGfake", months(), 0.55, [*CLOSED, hostile], (False, "not closed"))
    assert "data:image/png;base64," in page
    assert not re.search(r"(src|href)=\"https?:", page), "no network fetches"
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert page.count("<tr>") == 1 + 3 + 1 + len(CLOSED) + 1
    assert "not closed" in page


def test_the_files_are_a_png_the_html_page_demo_json_with_the_loops_steps_and_the_answers(tmp_path):
    answers = [(0, "r1-0", 1, 1, "1"), (0, "r1-1", 0, 1, "1"), (2, "r9", 1, 1, "2")]
    paths = report.write_outputs(tmp_path / "out", months(), 0.55, CLOSED, 1, (True, "closed"),
                                 {"months": 3}, answers)
    assert [p.name for p in paths] == ["f1_by_month.png", "f1_by_month.html", "demo.json", "answers.csv"]
    assert paths[3].read_text().splitlines() == ["month,row_id,label,prediction,version", "0,r1-0,1,1,1",
                                                 "0,r1-1,0,1,1", "2,r9,1,1,2"]
    assert paths[0].read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    record = json.loads(paths[2].read_text())
    assert record["closed"] is True and record["retrains"] == 1 and record["threshold"] == 0.55
    assert record["breach"]["month"] == 2 and record["promotion"]["month"] == 4
    assert [m["f1"] for m in record["months"]] == [1.0, 0.0, 1.0]
    assert record["months"][2]["f1Original"] == 0.0


def test_the_monitors_estimated_f1_is_a_second_line_a_column_and_a_field_of_each_month():
    plain = months()
    estimated = months()
    for month, value in zip(estimated, (0.81, 0.42, 0.77)):
        month.evaluation = {"breached": False, "reason": "EstimatedQualityOK",
                            "estimate": {"metrics": {"f1": value}, "predictions": 200, "method": "CBPE"}}
    assert [m.f1_estimated for m in estimated] == [0.81, 0.42, 0.77]
    assert [m.f1_estimated for m in plain] == [None, None, None]
    assert estimated[1].summary()["f1Estimated"] == 0.42
    page = report.render_html(b"\x89PNGfake", estimated, 0.55, CLOSED, (True, "closed"))
    assert "monitor F1 estimated" in page and "<td>0.420</td>" in page
    assert report.plot_png(estimated, 0.55, CLOSED) != report.plot_png(plain, 0.55, CLOSED)
