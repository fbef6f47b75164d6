"""Leader election through a coordination.k8s.io/v1 Lease, the way client-go's leaderelection does.

Several operator replicas campaign for one Lease; the holder reconciles, the others wait.
- A candidate reads the Lease every `retry_period`. It takes the Lease when there is none
  (create), when it already holds it, or when the record (holder, renewTime) has not changed
  for `lease_duration` as measured on the candidate's own clock (no trust in other clocks).
  Taking and renewing are updates carrying the resourceVersion read: of two candidates racing,
  the API server lets exactly one through and answers 409 Conflict to the other.
- The holder renews every `renew_period`; when it has not renewed for `renew_deadline`
  (< lease_duration) it stops leading, before any other candidate can take over.

`LeaseLock` is the only part that talks to the API; `Elector` is the decision logic, driven
by a clock and that lock, so the tests run it with a fake of both.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaseTiming:
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    renew_period: float = 5.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.renew_period < self.renew_deadline < self.lease_duration:
            raise ValueError("lease timing needs renew_period < renew_deadline < lease_duration")


@dataclass(frozen=True)
class LeaseRecord:
    holder: str | None
    renew_time: str | None
    transitions: int
    resource_version: str | None


class Conflict(Exception):
    """Another candidate wrote the Lease first."""


class Lock(Protocol):
    def read(self) -> LeaseRecord | None: ...

    def create(self, holder: str, duration: float) -> LeaseRecord: ...

    def update(self, record: LeaseRecord, holder: str, duration: float, transitions: int) -> LeaseRecord: ...


def _now_micro() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaseLock:
    """A Lease object through the kubernetes client (create; replace with resourceVersion)."""

    def __init__(self, name: str, namespace: str, api=None, request_timeout: float = 5.0) -> None:
        from kubernetes import client

        from .client import api_client

        self.name, self.namespace = name, namespace
        self._api = client.CoordinationV1Api(api or api_client())
        self._timeout = request_timeout

    @staticmethod
    def _record(lease) -> LeaseRecord:
        spec = lease.spec
        renew = spec.renew_time
        return LeaseRecord(holder=spec.holder_identity, renew_time=renew.isoformat() if renew else None,
                           transitions=spec.lease_transitions or 0, resource_version=lease.metadata.resource_version)

    def read(self) -> LeaseRecord | None:
        from kubernetes.client.rest import ApiException

        try:
            lease = self._api.read_namespaced_lease(self.name, self.namespace, _request_timeout=self._timeout)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return self._record(lease)

    def _body(self, holder: str, duration: float, transitions: int, acquire: bool, resource_version: str | None):
        now = _now_micro()
        spec = {"holderIdentity": holder, "leaseDurationSeconds": int(duration), "renewTime": now,
                "leaseTransitions": transitions}
        if acquire:
            spec["acquireTime"] = now
        metadata = {"name": self.name, "namespace": self.namespace}
        if resource_version is not None:
            metadata["resourceVersion"] = resource_version
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec}

    def create(self, holder: str, duration: float) -> LeaseRecord:
        return self._write(self._api.create_namespaced_lease, self.namespace,
                           self._body(holder, duration, 0, True, None))

    def update(self, record: LeaseRecord, holder: str, duration: float, transitions: int) -> LeaseRecord:
        body = self._body(holder, duration, transitions, record.holder != holder, record.resource_version)
        return self._write(self._api.replace_namespaced_lease, self.name, self.namespace, body)

    def _write(self, call, *args) -> LeaseRecord:
        """Create or replace; a 409 (someone else wrote first) is Conflict."""
        from kubernetes.client.rest import ApiException

        try:
            lease = call(*args, _request_timeout=self._timeout)
        except ApiException as error:
            if error.status == 409:
                raise Conflict(self.name) from error
            raise
        return self._record(lease)


class Elector:
    """One candidate's view of the Lease. `try_acquire_or_renew` is one step of client-go's loop."""

    def __init__(self, lock: Lock, identity: str, timing: LeaseTiming = LeaseTiming(),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.lock, self.identity, self.timing, self.clock = lock, identity, timing, clock
        self._observed: LeaseRecord | None = None
        self._observed_at: float | None = None
        self.renewed_at: float | None = None  # our last successful acquire or renew
        self.seen_at: float | None = None  # our last successful read or write of the Lease

    @property
    def leading(self) -> bool:
        return self.renewed_at is not None and self.clock() - self.renewed_at < self.timing.renew_deadline

    def try_acquire_or_renew(self) -> bool:
        """Read the Lease and take or renew it when allowed; True while we hold it."""
        now = self.clock()
        try:
            current = self.lock.read()
            self.seen_at = now
            if current is None:
                self._won(self.lock.create(self.identity, self.timing.lease_duration), now)
                return True
            if (self._observed is None or (current.holder, current.renew_time)
                    != (self._observed.holder, self._observed.renew_time)):
                self._observed, self._observed_at = current, now
            mine = current.holder == self.identity
            expired = not current.holder or now - self._observed_at >= self.timing.lease_duration
            if not mine and not expired:
                self.renewed_at = None
                return False
            transitions = current.transitions if mine else current.transitions + 1
            self._won(self.lock.update(current, self.identity, self.timing.lease_duration, transitions), now)
            return True
        except Conflict:
            log.info("lease %s: another candidate wrote it first", getattr(self.lock, "name", ""))
            return self.leading
        except Exception as error:  # the API unreachable: keep leading only until the renew deadline
            log.warning("lease %s: %s: %s", getattr(self.lock, "name", ""), type(error).__name__, error)
            return self.leading

    def _won(self, record: LeaseRecord, now: float) -> None:
        self._observed, self._observed_at = record, now
        self.renewed_at = now
        self.seen_at = now

    async def acquire(self) -> None:
        """Campaign until this candidate holds the Lease."""
        while not await asyncio.to_thread(self.try_acquire_or_renew):
            await asyncio.sleep(self.timing.retry_period)
        log.info("lease %s: %s is the leader", getattr(self.lock, "name", ""), self.identity)

    async def keep(self) -> None:
        """Renew until the Lease is lost (returns then): another holder, or no renewal within
        the renew deadline."""
        while True:
            await asyncio.sleep(self.timing.renew_period)
            held = await asyncio.to_thread(self.try_acquire_or_renew)
            while not held and self.leading:  # a failed renewal: retry until the deadline
                await asyncio.sleep(self.timing.retry_period)
                held = await asyncio.to_thread(self.try_acquire_or_renew)
            if not held:
                log.warning("lease %s: %s lost the lead", getattr(self.lock, "name", ""), self.identity)
                return
