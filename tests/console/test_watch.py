"""The watches' side that runs on the event loop: what a relist and each watch event do to the
snapshot, and what the pages' streams are told."""

from __future__ import annotations

import asyncio

from kadence.console.watch import Watcher

from .objects import NS, service, version


def watcher(namespaces):
    return Watcher(api=None, namespaces=namespaces, loop=asyncio.new_event_loop())


def test_a_relist_replaces_only_its_own_namespaces_objects_of_that_kind():
    w = watcher([NS, "other"])
    other = version(1, "Production") | {"metadata": {**version(1, "Production")["metadata"], "namespace": "other"}}
    w._replace("ModelVersion", "other", [other])
    w._replace("ModelVersion", NS, [version(1, "Production"), version(2, "Candidate")])
    w._replace("ModelVersion", NS, [version(2, "Candidate")])
    assert sorted(w.snapshot.objects["ModelVersion"]) == [("other", "churn-v1"), (NS, "churn-v2")]
    assert w.synced[("ModelVersion", NS)].is_set() and not w.synced[("Dataset", NS)].is_set()


def test_each_watch_event_updates_the_snapshot_and_is_announced_to_every_page():
    w = watcher(None)
    pages = [w.subscribe(), w.subscribe()]
    w._apply("InferenceService", "ADDED", service())
    w._apply("InferenceService", "MODIFIED", service(canary=2, phase="Progressing", step=1, weight=50))
    assert w.snapshot.get("InferenceService", NS, "churn")["status"]["currentStep"] == 1
    w._apply("InferenceService", "DELETED", service())
    assert w.snapshot.get("InferenceService", NS, "churn") is None
    for queue in pages:
        assert [queue.get_nowait()["type"] for _ in range(3)] == ["ADDED", "MODIFIED", "DELETED"]


def test_a_page_that_stopped_reading_is_skipped_not_waited_for():
    w = watcher(None)
    stalled, reading = w.subscribe(), w.subscribe()
    for _ in range(stalled.maxsize + 5):
        w._apply("ModelVersion", "MODIFIED", version(1, "Production"))
        reading.get_nowait()
    assert stalled.full() and reading.empty()


def test_a_failed_watch_is_reported_by_kind_and_namespace_until_the_next_relist():
    w = watcher([NS])
    w._failed("Dataset", NS, "ApiException: (403) Forbidden")
    assert w.errors == {f"Dataset in {NS}": "ApiException: (403) Forbidden"}
    w._replace("Dataset", NS, [])
    assert w.errors == {}


def test_only_the_watched_namespaces_are_in_scope():
    assert watcher([NS]).watches(NS) and not watcher([NS]).watches("other")
    assert watcher(None).watches("anything")
