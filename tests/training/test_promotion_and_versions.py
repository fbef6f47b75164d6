"""The promotion policy (table tests) and race-free version allocation."""

from __future__ import annotations

import threading

import pytest

from kadence.api.trainingrun import PromotionPolicy
from kadence.domain.training.promotion import AWAIT_APPROVAL, PROMOTE, STAY, decide
from kadence.domain.training.versions import (
    AllocationError,
    VersionTaken,
    allocate,
    next_version,
    version_name,
)

AUTO = PromotionPolicy(mode="Auto")
AUTO_MARGIN = PromotionPolicy(mode="Auto", margin=0.02)
AUTO_STAGING = PromotionPolicy(mode="Auto", target_stage="Staging")
MANUAL = PromotionPolicy(mode="Manual", target_stage="Production")
CANDIDATE = PromotionPolicy()

# (name, policy, metric, candidate, production, action, stage, reason)
CASES = [
    ("the Candidate mode keeps the model as Candidate even when it is better",
     CANDIDATE, "f1", {"f1": 0.9}, {"f1": 0.5}, STAY, "Candidate", "PolicyKeepsCandidate"),
    ("the Manual mode waits for approval",
     MANUAL, "f1", {"f1": 0.9}, {"f1": 0.5}, AWAIT_APPROVAL, "Candidate", "AwaitingApproval"),
    ("Auto promotes the first model of a name to Production",
     AUTO, "f1", {"f1": 0.6}, None, PROMOTE, "Production", "NoProductionVersion"),
    ("Auto promotes to the target stage it names",
     AUTO_STAGING, "f1", {"f1": 0.6}, None, PROMOTE, "Staging", "NoProductionVersion"),
    ("Auto promotes a model with a higher F1",
     AUTO, "f1", {"f1": 0.81}, {"f1": 0.80}, PROMOTE, "Production", "BeatsProduction"),
    ("Auto keeps a model with an equal F1",
     AUTO, "f1", {"f1": 0.80}, {"f1": 0.80}, STAY, "Candidate", "DoesNotBeatProduction"),
    ("Auto keeps a model with a lower F1",
     AUTO, "f1", {"f1": 0.70}, {"f1": 0.80}, STAY, "Candidate", "DoesNotBeatProduction"),
    ("Auto keeps a model that is better by less than the margin",
     AUTO_MARGIN, "f1", {"f1": 0.81}, {"f1": 0.80}, STAY, "Candidate", "DoesNotBeatProduction"),
    ("Auto promotes a model that is better by more than the margin",
     AUTO_MARGIN, "f1", {"f1": 0.83}, {"f1": 0.80}, PROMOTE, "Production", "BeatsProduction"),
    ("Auto promotes a model with a lower RMSE",
     AUTO, "rmse", {"rmse": 2.5}, {"rmse": 3.0}, PROMOTE, "Production", "BeatsProduction"),
    ("Auto keeps a model with a higher RMSE",
     AUTO, "rmse", {"rmse": 3.5}, {"rmse": 3.0}, STAY, "Candidate", "DoesNotBeatProduction"),
    ("Auto keeps a log-loss model that improves by less than the margin",
     AUTO_MARGIN, "log_loss", {"log_loss": 0.29}, {"log_loss": 0.30}, STAY, "Candidate", "DoesNotBeatProduction"),
    ("Auto does not promote a model without the objective metric",
     AUTO, "roc_auc", {"f1": 0.9}, {"roc_auc": 0.7}, STAY, "Candidate", "MetricMissing"),
    ("Auto does not promote over a Production version that lacks the metric",
     AUTO, "roc_auc", {"roc_auc": 0.9}, {"f1": 0.7}, STAY, "Candidate", "ProductionMetricMissing"),
    ("Auto does not promote a model whose metric is NaN",
     AUTO, "r2", {"r2": float("nan")}, None, STAY, "Candidate", "MetricMissing"),
]


@pytest.mark.parametrize("name, policy, metric, candidate, production, action, stage, reason", CASES,
                         ids=[c[0] for c in CASES])
def test_promotion_policy(name, policy, metric, candidate, production, action, stage, reason):
    decision = decide(policy, metric, candidate, production)
    assert (decision.action, decision.stage, decision.reason) == (action, stage, reason)
    assert decision.message


def test_the_decision_message_shows_both_scores_and_the_margin():
    decision = decide(AUTO_MARGIN, "f1", {"f1": 0.81}, {"f1": 0.80})
    assert "f1=0.81 vs Production 0.8" in decision.message and "more than 0.02" in decision.message


# ---- versions


def test_the_first_version_of_a_model_is_1():
    assert next_version([]) == 1


def test_the_next_version_is_one_above_the_highest_even_with_gaps():
    assert next_version([1, 2, 5]) == 6


def test_version_names_are_model_dash_v_number():
    assert version_name("churn", 12) == "churn-v12"


def test_a_name_longer_than_a_kubernetes_name_is_refused():
    with pytest.raises(AllocationError, match="longer than 63"):
        version_name("m" * 60, 100)


class FakeApiServer:
    """Creates names atomically, like the API server: a second create of a name fails."""

    def __init__(self, existing: dict[str, str] | None = None):
        self.objects: dict[str, str] = dict(existing or {})
        self.lock = threading.Lock()

    def creator(self, owner: str):
        def create(name: str, version: int) -> None:
            with self.lock:
                if name in self.objects:
                    raise VersionTaken(name, self.objects[name])
                self.objects[name] = owner

        return create


def test_allocation_retries_with_the_next_number_when_the_name_is_taken():
    server = FakeApiServer({"churn-v3": "run-a"})
    allocation = allocate("churn", [1, 2], server.creator("run-b"), owner="run-b")
    assert (allocation.name, allocation.version, allocation.created) == ("churn-v4", 4, True)


def test_allocation_for_a_run_that_already_holds_the_name_reuses_it():
    server = FakeApiServer({"churn-v3": "run-a"})
    allocation = allocate("churn", [1, 2], server.creator("run-a"), owner="run-a")
    assert (allocation.name, allocation.created) == ("churn-v3", False)


def test_concurrent_runs_that_saw_the_same_versions_all_get_distinct_numbers():
    server = FakeApiServer({"churn-v1": "old"})
    results: dict[str, int] = {}
    barrier = threading.Barrier(12)

    def finish(run: str) -> None:
        barrier.wait()  # every run read "the highest version is 1" before any created
        results[run] = allocate("churn", [1], server.creator(run), owner=run).version

    threads = [threading.Thread(target=finish, args=(f"run-{i}",)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values()) == list(range(2, 14))
    assert {server.objects[f"churn-v{v}"] for v in results.values()} == set(results)


def test_allocation_gives_up_after_its_attempts():
    def always_taken(name: str, version: int) -> None:
        raise VersionTaken(name, "someone")

    with pytest.raises(AllocationError, match="no free version"):
        allocate("churn", [], always_taken, owner="me", max_attempts=3)
