"""A short refresh interval never starves a running ingest (the sandbox showed it could)."""

from datetime import datetime, timedelta, timezone

from kadence.planners.dataset import GENERATION_ANNOTATION, DatasetObservation, ingest_job_name, plan_dataset, \
    refresh_slot
from kadence.api.dataset import DatasetSpec

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
SCHEMA = {"columns": [{"name": "id", "type": "int"}], "target": "id"}
VALID = {"outcome": "Valid", "valid": True, "version": "v1", "rows": 10, "uri": "s3://kadence/datasets/ml/d/v1/",
         "sha256": "ab" * 32, "created": True, "createdAt": "2026-01-01T11:59:00Z", "ruleResults": []}


def dataset(status=None, generation=1):
    return {"apiVersion": "kadence.dev/v1alpha1", "kind": "Dataset",
            "metadata": {"name": "d", "namespace": "ml", "uid": "u", "generation": generation},
            "spec": {"source": {"uri": "s3://kadence/raw/d.csv"}, "schema": SCHEMA, "refreshInterval": "3s"},
            "status": status or {}}


def ingest_job(name, generation=1, done=False):
    return {"metadata": {"name": name, "annotations": {GENERATION_ANNOTATION: str(generation)}},
            "status": {"conditions": [{"type": "Complete", "status": "True"}] if done else []}}


def slot_job(now, generation=1):
    return ingest_job_name("d", generation, refresh_slot(DatasetSpec.model_validate(dataset()["spec"]), now))


def test_the_ingest_job_carries_its_generation():
    plan = plan_dataset(dataset(), DatasetObservation(), NOW)
    job = next(c for c in plan.children if c["kind"] == "Job")
    assert job["metadata"]["annotations"][GENERATION_ANNOTATION] == "1"


def test_a_running_ingest_of_an_earlier_slot_is_waited_for_not_replaced():
    earlier = slot_job(NOW)
    later = NOW + timedelta(seconds=7)
    plan = plan_dataset(dataset(), DatasetObservation(jobs=[ingest_job(earlier)]), later)
    assert plan.children == [] and plan.delete == []
    assert plan.phase == "Ingesting"


def test_a_finished_ingest_of_an_earlier_slot_is_recorded_before_the_next_starts():
    earlier = slot_job(NOW)
    later = NOW + timedelta(seconds=7)
    plan = plan_dataset(dataset(), DatasetObservation(jobs=[ingest_job(earlier, done=True)],
                                                      results={earlier: VALID}), later)
    assert plan.status.last_job == earlier and plan.status.latest_version == "v1"
    assert plan.children == []


def test_once_recorded_the_next_slot_starts_and_the_old_job_goes():
    earlier = slot_job(NOW)
    later = NOW + timedelta(seconds=7)
    plan = plan_dataset(dataset(status={"lastJob": earlier, "latestVersion": "v1"}),
                        DatasetObservation(jobs=[ingest_job(earlier, done=True)]), later)
    assert [c["metadata"]["name"] for c in plan.children if c["kind"] == "Job"] == [slot_job(later)]
    assert {ref.name for ref in plan.delete} == {earlier}


def test_a_running_ingest_of_an_older_generation_is_replaced_at_once():
    old = ingest_job_name("d", 1, 5)
    plan = plan_dataset(dataset(generation=2), DatasetObservation(jobs=[ingest_job(old, generation=1)]), NOW)
    assert [c["metadata"]["name"] for c in plan.children if c["kind"] == "Job"] == [slot_job(NOW, generation=2)]
    assert {ref.name for ref in plan.delete} == {old}
