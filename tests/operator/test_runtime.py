"""The reconcile engine's parts: the watch-fed cache, the work queue, who is woken by what."""

from __future__ import annotations

import asyncio

import pytest

from kadence.handlers.runtime import Dependencies, Engine, WorkQueue, owners_of
from kadence.k8s.cache import ObjectCache, Reads, contains, current_reads

MV = ("kadence.dev/v1alpha1", "ModelVersion")


def obj(kind="Job", name="a", namespace="ns", labels=None, api_version="batch/v1", rv="1", uid="u1", **extra):
    return {"apiVersion": api_version, "kind": kind,
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {}, "resourceVersion": rv,
                         "uid": uid}, **extra}


def model_version(name, model, rv="1"):
    return obj("ModelVersion", name, api_version=MV[0], rv=rv, uid=name, spec={"model": model})


# ------------------------------------------------------------------ cache


def test_reads_of_a_served_kind_come_from_the_cache_and_are_recorded():
    cache = ObjectCache()
    cache.serve("batch/v1", "Job", label="owner")
    cache.upsert(obj(name="j1", labels={"owner": "x"}))
    cache.upsert(obj(name="j2", labels={"owner": "y"}))
    reads = Reads()
    token = current_reads.set(reads)
    try:
        assert [j["metadata"]["name"] for j in cache.list("batch/v1", "Job", "ns", "owner=x")] == ["j1"]
        assert cache.get("batch/v1", "Job", "ns", "j2")["metadata"]["name"] == "j2"
    finally:
        current_reads.reset(token)
    assert reads.selectors == {(("batch/v1", "Job"), "ns", "owner=x")}
    assert reads.names == {(("batch/v1", "Job"), "ns", "j2")}


def test_a_kind_watched_only_with_a_label_is_served_only_for_selectors_requiring_it():
    cache = ObjectCache()
    cache.serve("v1", "Pod", label="kadence.dev/inferenceservice")
    assert cache.serves("v1", "Pod", "kadence.dev/inferenceservice=churn,kadence.dev/role in (stable)")
    assert not cache.serves("v1", "Pod", "job-name=train-1")
    assert not cache.serves("v1", "Pod")
    assert cache.serves("v1", "Pod", labels={"kadence.dev/inferenceservice": "churn"})
    assert not cache.serves("batch/v1", "Job")


def test_a_watch_event_older_than_the_write_already_cached_is_ignored():
    cache = ObjectCache()
    cache.serve(*MV)
    cache.upsert(model_version("m1", "churn", rv="5"))
    cache.upsert(model_version("m1", "other", rv="4"))
    assert cache.get(*MV, "ns", "m1")["spec"]["model"] == "churn"
    cache.upsert(model_version("m1", "other", rv="6"))
    assert cache.get(*MV, "ns", "m1")["spec"]["model"] == "other"


def test_model_versions_are_found_by_model_through_the_field_index_and_follow_changes():
    cache = ObjectCache()
    cache.serve(*MV, field_indexes={"model": lambda body: body["spec"]["model"]})
    cache.upsert(model_version("a-v1", "a"))
    cache.upsert(model_version("b-v1", "b"))
    assert [m["metadata"]["name"] for m in cache.by_field(*MV, "ns", "model", "a")] == ["a-v1"]
    cache.upsert(model_version("b-v1", "a", rv="2"))
    assert [m["metadata"]["name"] for m in cache.by_field(*MV, "ns", "model", "a")] == ["a-v1", "b-v1"]
    cache.remove(*MV, "ns", "a-v1")
    assert [m["metadata"]["name"] for m in cache.by_field(*MV, "ns", "model", "a")] == ["b-v1"]


def test_reads_return_copies_a_planner_cannot_corrupt():
    cache = ObjectCache()
    cache.serve("batch/v1", "Job")
    cache.upsert(obj(name="j"))
    cache.get("batch/v1", "Job", "ns", "j")["metadata"]["name"] = "changed"
    assert cache.get("batch/v1", "Job", "ns", "j")["metadata"]["name"] == "j"


@pytest.mark.parametrize("desired, actual, expected", [
    ({"a": 1}, {"a": 1, "b": 2}, True),           # defaults the server added do not count
    ({"a": {"b": [1, {"c": 2}]}}, {"a": {"b": [1, {"c": 2, "d": 3}]}}, True),
    ({"a": [1, 2]}, {"a": [1]}, False),            # a list item to add
    ({"a": 1}, {"a": 2}, False),
    ({"a": 1}, {}, False),
    ({"replicas": 1}, {"replicas": 1.0}, True),
    ({"flag": True}, {"flag": 1}, False),
])
def test_an_applied_child_is_unchanged_when_it_holds_every_desired_field(desired, actual, expected):
    assert contains(desired, actual) is expected


# ------------------------------------------------------------------ queue


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_key_is_queued_once_and_never_handed_out_twice_while_it_is_processed():
    queue = WorkQueue()
    queue.add(("Dataset", "ns", "a"))
    queue.add(("Dataset", "ns", "a"))
    assert queue.pop_ready() == ("Dataset", "ns", "a")
    assert queue.pop_ready() is None
    queue.add(("Dataset", "ns", "a"))  # changed while processed
    assert queue.pop_ready() is None
    queue.done(("Dataset", "ns", "a"))
    assert queue.pop_ready() == ("Dataset", "ns", "a")


def test_a_delayed_add_comes_due_and_the_earliest_of_two_wins():
    clock = Clock()
    queue = WorkQueue(clock)
    key = ("InferenceService", "ns", "churn")
    queue.add_after(key, 30)
    queue.add_after(key, 10)
    clock.now = 9.9
    assert queue.pop_ready() is None
    clock.now = 10.0
    assert queue.pop_ready() == key
    queue.done(key)
    clock.now = 31
    assert queue.pop_ready() is None  # the 30 s add was superseded by the earlier one


def test_a_forgotten_key_does_not_come_back():
    clock = Clock()
    queue = WorkQueue(clock)
    queue.add_after(("Dataset", "ns", "gone"), 5)
    queue.forget(("Dataset", "ns", "gone"))
    clock.now = 6
    assert queue.pop_ready() is None


def test_a_waiting_worker_wakes_when_a_key_comes_due():
    async def scenario():
        queue = WorkQueue()
        queue.add_after(("Dataset", "ns", "a"), 0.05)
        return await asyncio.wait_for(queue.get(), 5)

    assert asyncio.run(scenario()) == ("Dataset", "ns", "a")


# ------------------------------------------------------------------ who is woken


def test_a_child_wakes_its_owner_by_owner_reference_or_by_labels():
    by_reference = obj(labels={})
    by_reference["metadata"]["ownerReferences"] = [
        {"apiVersion": "kadence.dev/v1alpha1", "kind": "TrainingRun", "name": "churn", "uid": "x"}]
    assert owners_of(by_reference) == [("TrainingRun", "ns", "churn")]
    by_labels = obj(labels={"kadence.dev/owner-kind": "featureset", "kadence.dev/owner-name": "f"})
    assert owners_of(by_labels) == [("FeatureSet", "ns", "f")]
    assert owners_of(obj(labels={"app": "x"})) == []


def test_a_change_wakes_the_reconciles_that_read_the_object_by_name_selector_or_field(monkeypatch):
    from kadence.k8s import cache as cache_module

    cache = ObjectCache()
    cache.serve(*MV, field_indexes={"model": lambda body: body["spec"]["model"]})
    monkeypatch.setattr("kadence.handlers.runtime.CACHE", cache)
    deps = Dependencies()
    feature_set = ("FeatureSet", "ns", "f")
    isvc = ("InferenceService", "ns", "churn")
    trainer = ("TrainingRun", "ns", "t")
    deps.replace(feature_set, Reads(names={(("kadence.dev/v1alpha1", "Dataset"), "ns", "d")}))
    deps.replace(isvc, Reads(fields={(MV, "ns", "model", "churn")},
                             selectors={(("v1", "Pod"), "ns", "kadence.dev/inferenceservice=churn")}))
    deps.replace(trainer, Reads(selectors={(("batch/v1", "Job"), "ns", "owner=t,role in (train)")}))
    dataset = obj("Dataset", "d", api_version="kadence.dev/v1alpha1")
    assert deps.readers_of([dataset]) == {feature_set}
    assert deps.readers_of([model_version("churn-v2", "churn")]) == {isvc}
    assert deps.readers_of([model_version("other-v1", "other")]) == set()
    pod = obj("Pod", "p", api_version="v1", labels={"kadence.dev/inferenceservice": "churn"})
    assert deps.readers_of([pod]) == {isvc}
    job = obj(labels={"owner": "t", "role": "train"})
    assert deps.readers_of([job]) == {trainer}
    moved_out = obj(labels={"owner": "t", "role": "other"})
    assert deps.readers_of([moved_out]) == set()
    assert deps.readers_of([moved_out, job]) == {trainer}  # its labels before the change matched
    deps.replace(feature_set, Reads())
    assert deps.readers_of([dataset]) == set()
    assert cache_module.CACHE is not cache


def test_the_engine_queues_an_object_on_its_own_change_but_not_on_the_echo_of_its_status_write():
    async def scenario():
        from kadence.api.kinds import BY_KIND

        engine = Engine(kinds={"Dataset": BY_KIND["Dataset"]}, workers=1)
        engine.queue = WorkQueue()
        engine._tasks = [asyncio.get_running_loop().create_task(asyncio.sleep(0))]  # no workers
        key = ("Dataset", "ns", "d")
        engine._own_writes[key] = "7"
        engine.observed("MODIFIED", obj("Dataset", "d", api_version="kadence.dev/v1alpha1", rv="7"), None)
        echo = engine.queue.pop_ready()
        engine.observed("MODIFIED", obj("Dataset", "d", api_version="kadence.dev/v1alpha1", rv="8"), None)
        change = engine.queue.pop_ready()
        return echo, change

    echo, change = asyncio.run(scenario())
    assert echo is None
    assert change == ("Dataset", "ns", "d")


def test_a_deleted_object_is_forgotten_and_its_kinds_deletion_hook_runs():
    async def scenario():
        from kadence.api.kinds import BY_KIND

        deleted = []
        engine = Engine(kinds={"MonitorPolicy": BY_KIND["MonitorPolicy"]}, workers=1,
                        on_deleted={"MonitorPolicy": lambda ns, name: deleted.append((ns, name))})
        engine.queue = WorkQueue()
        engine._tasks = [asyncio.get_running_loop().create_task(asyncio.sleep(0))]  # no workers
        key = ("MonitorPolicy", "ns", "p")
        engine.deps.replace(key, Reads(names={(("kadence.dev/v1alpha1", "InferenceService"), "ns", "churn")}))
        engine.queue.add_after(key, 30)
        engine.observed("DELETED", obj("MonitorPolicy", "p", api_version="kadence.dev/v1alpha1"), None)
        isvc = obj("InferenceService", "churn", api_version="kadence.dev/v1alpha1")
        return deleted, engine.deps.readers_of([isvc]), engine.queue.pop_ready()

    deleted, readers, queued = asyncio.run(scenario())
    assert deleted == [("ns", "p")]
    assert readers == set() and queued is None


def test_a_monitor_policy_wakes_only_the_inference_service_it_watches(monkeypatch):
    from kadence.handlers import common
    from kadence.handlers.main import FIELD_INDEXES

    cache = ObjectCache()
    mp = ("kadence.dev/v1alpha1", "MonitorPolicy")
    cache.serve(*mp, field_indexes=FIELD_INDEXES["MonitorPolicy"])
    monkeypatch.setattr(common, "CACHE", cache)
    monkeypatch.setattr("kadence.handlers.runtime.CACHE", cache)
    for name, isvc in (("p1", "churn"), ("p2", "other")):
        cache.upsert(obj("MonitorPolicy", name, api_version=mp[0], uid=name,
                         spec={"inferenceServiceRef": {"name": isvc}}))
    reads = Reads()
    token = current_reads.set(reads)
    try:
        assert [p["metadata"]["name"] for p in common.monitor_policies_of("ns", "churn")] == ["p1"]
    finally:
        current_reads.reset(token)
    deps = Dependencies()
    deps.replace(("InferenceService", "ns", "churn"), reads)
    other = obj("MonitorPolicy", "p2", api_version=mp[0], spec={"inferenceServiceRef": {"name": "other"}})
    assert deps.readers_of([other]) == set()
    mine = obj("MonitorPolicy", "p1", api_version=mp[0], spec={"inferenceServiceRef": {"name": "churn"}})
    assert deps.readers_of([mine]) == {("InferenceService", "ns", "churn")}
