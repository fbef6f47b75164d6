"""The kubelet's pod status writes, against a fake API client: one at a time, so none lands out of order."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from kadence.sandbox.kubelet.runner import PodWorker

POD = {"metadata": {"name": "job-1-abcde", "namespace": "ml", "uid": "u-1"},
       "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "kadence:test"}]}}


class SlowFirstWrite:
    """An API client whose first status write is held in flight until `release` is set."""

    def __init__(self):
        self.first_in_flight = asyncio.Event()
        self.release = asyncio.Event()
        self.landed: list[str] = []

    async def patch_status(self, resource, namespace, name, status):
        if not self.first_in_flight.is_set():
            self.first_in_flight.set()
            await self.release.wait()
        self.landed.append(status["phase"])


def test_a_finished_pods_status_lands_after_a_running_status_written_just_before_it():
    async def scenario():
        client = SlowFirstWrite()
        worker = PodWorker(SimpleNamespace(client=client), POD)
        [container] = worker.containers
        container.kind = "running"
        running_write = asyncio.create_task(worker._publish())
        await client.first_in_flight.wait()
        container.kind = "failed"  # the process exits while the Running write is still in flight
        final_write = asyncio.create_task(worker._publish())
        await asyncio.sleep(0.05)
        client.release.set()
        await asyncio.gather(running_write, final_write)
        return client.landed

    assert asyncio.run(scenario()) == ["Running", "Failed"], "a finished pod is never moved back to Running"
