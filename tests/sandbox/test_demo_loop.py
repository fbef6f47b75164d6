"""`kadence demo`, smaller and faster, end to end (issue #8, "The loop, end to end"; issue 15
item 6, labels that come back late).

The demo runs as a user runs it - its own sandbox in a temporary state directory, the
manifests it ships applied with kubectl - and the tests check the shape of the story in
demo.json, answers.csv and the cluster it leaves running (--keep-running). First with the
ground truth moments after each prediction: F1 above the threshold at first, a breach detected
by the month that crossed it, exactly one retrain inside the cooldown, the retrained model
promoted through a canary, and F1 after the promotion above the first model's on the same late
traffic. Then, on the same sandbox (its start is paid once), with each month's ground truth sent
a month later and churn's rule drifting: the F1 of the served answers, computed here from
answers.csv, back above the threshold within three months of the first breach and there to
the end, and no two TrainingRuns on the same inputs."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from sklearn.metrics import f1_score

from kadence.demo.loop import NAMESPACE, POLICY, SERVICE
from kadence.sandbox.cli import stop_all

# Each demo runs once for the module, inside whichever of its tests comes first.
pytestmark = [pytest.mark.sandbox, pytest.mark.timeout(3600)]

MONTHS, INTERVAL = 7, "15s"
SETUP_S = 900  # the demo's own limit for serving the first model (Settings.setup_timeout_s)
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def sandbox_state(tmp_path_factory):
    """The state directory of the sandbox the first demo starts and the second reuses."""
    state = tmp_path_factory.mktemp("demo-sandbox") / "state"
    try:
        yield state
    finally:
        stop_all(state, out=io.StringIO())


def run_demo(state: Path, out: Path, *extra: str, minutes: int = 12):
    """(exit code, output, demo.json, kubectl, output folder) of one `kadence demo` run. The demo's
    own limits (the first model served within SETUP_S, the month loop within `minutes`) end it
    first; if it hangs past them anyway, the test fails with what it printed."""
    command = [str(BIN / "kadence"), "demo", "--months", str(MONTHS), "--interval", INTERVAL, "--state-dir",
               str(state), "--output-dir", str(out), "--keep-running", "--timeout", f"{minutes}m", *extra]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=SETUP_S + minutes * 60 + 300,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    except subprocess.TimeoutExpired as hung:
        printed = (hung.stdout or b"").decode(errors="replace") if isinstance(hung.stdout, bytes) else hung.stdout
        pytest.fail(f"kadence demo {' '.join(extra)} did not end within its own limits:\n{(printed or '')[-6000:]}")
    record = json.loads((out / "demo.json").read_text()) if (out / "demo.json").exists() else {}

    def kubectl(*args: str) -> dict:
        done = subprocess.run([str(BIN / "kubectl"), *args, "-n", NAMESPACE, "-o", "json"], capture_output=True,
                              text=True, env={**os.environ, "KUBECONFIG": str(state / "kubeconfig")}, timeout=60)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    return result.returncode, result.stdout + result.stderr, record, kubectl, out


@pytest.fixture(scope="module")
def demo(sandbox_state, tmp_path_factory):
    return run_demo(sandbox_state, tmp_path_factory.mktemp("demo-out"))


@pytest.fixture(scope="module")
def delayed(sandbox_state, tmp_path_factory):
    # A month stays open while the loop's step (retrain, canary, rollout) goes on: more time for extra months.
    return run_demo(sandbox_state, tmp_path_factory.mktemp("delayed-out"), "--label-delay", "1", minutes=20)


def verdicts(kubectl) -> dict[str, dict]:
    """The champion/challenger verdicts by candidate ModelVersion (MonitorPolicy status.verdicts)."""
    policy = kubectl("get", "monitorpolicy", POLICY)
    return {v["candidate"]: v for v in policy["status"].get("verdicts") or []}


def first_under(record: dict) -> int:
    return next(m["month"] for m in record["months"] if m["f1"] is not None and m["f1"] < record["threshold"])


def test_the_demo_closes_the_loop_exits_zero_and_writes_the_plot_the_page_and_the_record(demo):
    code, output, record, _, out = demo
    assert code == 0, output[-4000:]
    assert record["closed"] is True, record["message"]
    assert (out / "f1_by_month.png").read_bytes().startswith(b"\x89PNG")
    page = (out / "f1_by_month.html").read_text()
    assert "data:image/png;base64," in page and "Promoted" in page
    assert "month  0" in output and "Breach" in output and "Promoted" in output


def test_f1_starts_above_the_threshold_and_the_breach_is_detected_by_the_month_that_crossed_it(demo):
    _, output, record, _, _ = demo
    months, threshold = record["months"], record["threshold"]
    assert months[0]["f1"] >= 0.7, output[-3000:]
    crossing = first_under(record)
    assert crossing >= 1, "F1 starts above the threshold"
    assert all(not (m["evaluation"] or {}).get("breached") for m in months[:crossing])
    # The month's own evaluation - the first whose window holds its rows, within one interval
    # of them being logged - is the breach.
    assert months[crossing]["evaluation"]["breached"] is True
    assert months[crossing]["evaluation"]["metrics"]["f1"] < threshold
    assert record["breach"]["month"] == crossing


def test_exactly_one_retrain_inside_the_cooldown_on_the_data_plus_the_feedback(demo):
    _, _, record, kubectl, _ = demo
    assert record["retrains"] == 1
    runs = kubectl("get", "trainingruns", "-l", f"kadence.dev/retrained-by={POLICY}")["items"]
    assert len(runs) == 1
    assert runs[0]["metadata"]["annotations"]["kadence.dev/retrain-trigger"] == "breach"
    policy = kubectl("get", "monitorpolicy", POLICY)
    started = [r for r in policy["status"]["retrains"] if r.get("trainingRun")]
    assert [r["trainingRun"] for r in started] == [runs[0]["metadata"]["name"]]
    assert started[0]["inputs"]["feedbackRows"] > 0, "the retrain trained on the labelled feedback"
    later = [e for e in policy["status"]["history"] if e["time"] > record["breach"]["time"] and e["breached"]]
    if later:  # breaches after the retrain were held (cooldown, retrain in flight, nothing new), not retrained on
        assert policy["status"]["lastRetrainDecision"]["reason"] in (
            "CooldownActive", "RetrainInProgress", "NothingNewToLearn", "WaitingForLabels")
    dataset = kubectl("get", "dataset", "customers")
    rows = [v["rows"] for v in dataset["status"]["versions"]]
    assert len(rows) >= 2 and max(rows) > min(rows), "the labelled feedback made a bigger Dataset version"


def test_the_retrained_model_won_the_comparison_went_through_a_canary_and_was_promoted(demo):
    _, _, record, kubectl, _ = demo
    versions = {v["spec"]["version"]: v for v in kubectl("get", "modelversions")["items"]}
    stages = {n: (v.get("status") or {}).get("stage") for n, v in versions.items()}
    assert stages == {1: "Archived", 2: "Production"}
    verdict = verdicts(kubectl)[versions[2]["metadata"]["name"]]
    assert verdict["allowed"] is True and verdict["candidateScore"] > verdict["championScore"]
    assert kubectl("get", "inferenceservice", SERVICE)["status"]["stableVersion"] == 2
    kinds = [e["kind"] for e in record["events"]]
    assert kinds.index("CanaryStarted") < kinds.index("Promoted")
    assert any(set(m["versions"]) == {"1", "2"} for m in record["months"]), "both versions served during the canary"


def test_f1_after_the_retrain_is_above_the_first_models_on_the_same_late_traffic(demo):
    _, _, record, _, _ = demo
    after = [m for m in record["months"] if set(m["versions"]) == {"2"}]
    assert after, "a month served by the retrained model alone"
    for month in after:
        assert month["f1"] >= 0.9
        assert month["f1"] > month["f1Original"] + 0.3


# ---------------------------------------------------------------- the ground truth a month late


def served_f1_by_month(out: Path) -> dict[int, float]:
    """F1 of the served answers per month, from every answer and its ground truth (answers.csv)."""
    labels, predictions = defaultdict(list), defaultdict(list)
    with (out / "answers.csv").open() as handle:
        for row in csv.DictReader(handle):
            labels[int(row["month"])].append(int(row["label"]))
            predictions[int(row["month"])].append(int(row["prediction"]))
    return {m: float(f1_score(labels[m], predictions[m], zero_division=0.0)) for m in sorted(labels)}


def test_with_labels_a_month_late_the_demo_closes_the_loop_and_the_plot_tells_it(delayed):
    code, output, record, _, out = delayed
    assert code == 0, output[-5000:]
    assert record["closed"] is True, record["message"]
    assert record["settings"]["labelDelay"] == 1 and record["settings"]["conceptDrift"] is True
    assert (out / "f1_by_month.png").read_bytes().startswith(b"\x89PNG")
    assert "(labels of month " in output
    # No month sent its own ground truth: month 0 none, and the last month's never went out.
    months = record["months"]
    assert months[0]["labels_sent"] == 0
    assert sum(m["labels_sent"] for m in months) == sum(m["rows"] for m in months[:-1])


def test_with_labels_a_month_late_served_f1_is_back_above_the_threshold_within_three_months_of_the_breach(delayed):
    _, output, record, _, out = delayed
    threshold, breach = record["threshold"], record["breach"]["month"]
    f1 = served_f1_by_month(out)
    assert [round(f1[m["month"]], 4) for m in record["months"]] == [m["f1"] for m in record["months"]]
    assert min(f1[m] for m in range(breach)) < threshold <= f1[0], "F1 fell under the threshold before the breach"
    # The breach is the evaluation of the first month under the threshold, once its labels came.
    crossed = next(m for m in sorted(f1) if f1[m] < threshold)
    assert crossed < breach <= crossed + 2, (breach, crossed, output[-3000:])
    back = next((m for m in range(breach + 1, breach + 4) if m in f1 and f1[m] >= threshold), None)
    assert back is not None, f"served F1 after the breach in month {breach}: {f1}"
    assert all(f1[m] >= threshold for m in f1 if m >= back), f"F1 fell under the threshold again: {f1}"


def test_with_labels_a_month_late_no_two_training_runs_learned_from_the_same_inputs(delayed):
    _, _, record, kubectl, _ = delayed
    policy = kubectl("get", "monitorpolicy", POLICY)
    started = [r for r in policy["status"]["retrains"] if r.get("trainingRun")]
    runs = kubectl("get", "trainingruns", "-l", f"kadence.dev/retrained-by={POLICY}")["items"]
    assert sorted(r["trainingRun"] for r in started) == sorted(r["metadata"]["name"] for r in runs)
    assert len(runs) == record["retrains"] >= 1
    inputs = [json.dumps(r["inputs"], sort_keys=True) for r in started]
    assert len(set(inputs)) == len(inputs), inputs
    assert all(r["inputs"]["feedbackRows"] > 0 for r in started), "every retrain had labelled feedback"
    artifacts = [v["spec"]["artifact"]["sha256"] for v in kubectl("get", "modelversions")["items"]]
    assert len(set(artifacts)) == len(artifacts), "no artifact registered twice"


def test_with_labels_a_month_late_the_retrain_is_judged_on_the_labels_it_held_out(delayed):
    _, _, _, kubectl, _ = delayed
    policy = kubectl("get", "monitorpolicy", POLICY)
    first = next(r for r in policy["status"]["retrains"] if r.get("trainingRun"))
    assert first["inputs"]["comparisonHoldout"] == 100, first["inputs"]
    [candidate] = [v for v in kubectl("get", "modelversions")["items"]
                   if (v["spec"].get("lineage") or {}).get("trainingRun") == first["trainingRun"]]
    verdict = verdicts(kubectl)[candidate["metadata"]["name"]]
    assert verdict["heldOut"] == 100 and verdict["labelled"] >= 100, verdict
