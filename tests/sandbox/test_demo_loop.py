"""`kadence demo`, smaller and faster, end to end (issue #8, "The loop, end to end").

The demo runs as a user runs it - its own sandbox in a temporary state directory, the
manifests of examples/demo applied with kubectl - and the test checks the shape of the story
in demo.json and in the cluster it leaves running (--keep-running): F1 above the threshold at
first, a breach detected by the month that crossed it, exactly one retrain inside the
cooldown, the retrained model promoted through a canary, and F1 after the promotion above the
first model's on the same late traffic."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kadence.demo.loop import NAMESPACE, POLICY, SERVICE
from kadence.sandbox.cli import stop_all

# The demo runs once for the module, inside whichever of its tests comes first.
pytestmark = [pytest.mark.sandbox, pytest.mark.timeout(1800)]

MONTHS, INTERVAL = 7, "15s"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """(exit code, output, demo.json, kubectl) of one `kadence demo` run; its sandbox stops afterwards."""
    root = tmp_path_factory.mktemp("demo")
    state, out = root / "state", root / "out"
    command = [str(BIN / "kadence"), "demo", "--months", str(MONTHS), "--interval", INTERVAL, "--state-dir",
               str(state), "--output-dir", str(out), "--keep-running", "--timeout", "12m"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=1500,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        record = json.loads((out / "demo.json").read_text()) if (out / "demo.json").exists() else {}

        def kubectl(*args: str) -> dict:
            done = subprocess.run([str(BIN / "kubectl"), *args, "-n", NAMESPACE, "-o", "json"], capture_output=True,
                                  text=True, env={**os.environ, "KUBECONFIG": str(state / "kubeconfig")}, timeout=60)
            assert done.returncode == 0, done.stderr
            return json.loads(done.stdout)

        yield result.returncode, result.stdout + result.stderr, record, kubectl, out
    finally:
        stop_all(state, out=io.StringIO())


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
    assert [r["trainingRun"] for r in policy["status"]["retrains"]] == [runs[0]["metadata"]["name"]]
    later = [e for e in policy["status"]["history"] if e["time"] > record["breach"]["time"] and e["breached"]]
    if later:  # breaches after the retrain were held by the cooldown, not retrained on
        assert policy["status"]["lastRetrainDecision"]["reason"] == "CooldownActive"
    dataset = kubectl("get", "dataset", "customers")
    rows = [v["rows"] for v in dataset["status"]["versions"]]
    assert len(rows) >= 2 and max(rows) > min(rows), "the labelled feedback made a bigger Dataset version"


def test_the_retrained_model_won_the_comparison_went_through_a_canary_and_was_promoted(demo):
    _, _, record, kubectl, _ = demo
    versions = {v["spec"]["version"]: v for v in kubectl("get", "modelversions")["items"]}
    stages = {n: (v.get("status") or {}).get("stage") for n, v in versions.items()}
    assert stages == {1: "Archived", 2: "Production"}
    verdict = json.loads(versions[2]["metadata"]["annotations"]["kadence.dev/challenger-verdict"])
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
