"""Leader election over a Lease: one holder, takeover only after the lease expired on the
candidate's own clock, optimistic concurrency between racing candidates."""

from __future__ import annotations

import pytest

from kadence.k8s.lease import Conflict, Elector, LeaseRecord, LeaseTiming

TIMING = LeaseTiming(lease_duration=15, renew_deadline=10, renew_period=5, retry_period=2)


class FakeLease:
    """An API server's view of one Lease: updates must carry the resourceVersion they read."""

    def __init__(self):
        self.record: LeaseRecord | None = None
        self.version = 0
        self.down = False
        self.writes = 0

    def read(self):
        if self.down:
            raise ConnectionError("API server unreachable")
        return self.record

    def _write(self, holder, transitions, renew):
        self.version += 1
        self.writes += 1
        self.record = LeaseRecord(holder, f"t{renew}", transitions, str(self.version))
        return self.record

    def create(self, holder, duration):
        if self.down:
            raise ConnectionError("API server unreachable")
        if self.record is not None:
            raise Conflict("lease")
        return self._write(holder, 0, self.version)

    def update(self, record, holder, duration, transitions):
        if self.down:
            raise ConnectionError("API server unreachable")
        if record.resource_version != self.record.resource_version:
            raise Conflict("lease")
        return self._write(holder, transitions, self.version)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_the_first_candidate_creates_the_lease_and_the_second_stands_by():
    lease, clock = FakeLease(), Clock()
    a, b = Elector(lease, "a", TIMING, clock), Elector(lease, "b", TIMING, clock)
    assert a.try_acquire_or_renew() and a.leading
    assert not b.try_acquire_or_renew() and not b.leading
    assert lease.record.holder == "a"


def test_a_standby_takes_over_only_after_the_holder_stopped_renewing_for_the_lease_duration():
    lease, clock = FakeLease(), Clock()
    a, b = Elector(lease, "a", TIMING, clock), Elector(lease, "b", TIMING, clock)
    a.try_acquire_or_renew()
    b.try_acquire_or_renew()
    for _ in range(5):  # a renews every 5 s: b never sees the record stand still for 15 s
        clock.now += 5
        assert a.try_acquire_or_renew()
        assert not b.try_acquire_or_renew()
    # a dies (no more renewals)
    clock.now += 14
    assert not b.try_acquire_or_renew()
    clock.now += 1
    assert b.try_acquire_or_renew() and b.leading
    assert lease.record.holder == "b" and lease.record.transitions == 1


def test_of_two_candidates_racing_for_an_expired_lease_only_one_wins():
    lease, clock = FakeLease(), Clock()
    old = Elector(lease, "old", TIMING, clock)
    old.try_acquire_or_renew()
    a, b = Elector(lease, "a", TIMING, clock), Elector(lease, "b", TIMING, clock)
    a.try_acquire_or_renew(), b.try_acquire_or_renew()
    clock.now += 16
    stale = lease.read()
    assert a.try_acquire_or_renew()
    b._observed, b._observed_at = stale, 0.0
    lease_read = lease.read
    lease.read = lambda: stale  # b read the lease before a's write landed
    assert not b.try_acquire_or_renew()
    lease.read = lease_read
    assert lease.record.holder == "a"


def test_a_leader_that_cannot_renew_stops_leading_at_the_renew_deadline_before_anyone_can_take_over():
    lease, clock = FakeLease(), Clock()
    a = Elector(lease, "a", TIMING, clock)
    a.try_acquire_or_renew()
    lease.down = True
    clock.now += 9
    assert a.try_acquire_or_renew()  # still within the renew deadline
    clock.now += 1
    assert not a.try_acquire_or_renew() and not a.leading
    assert TIMING.renew_deadline < TIMING.lease_duration  # nobody else could have taken it yet


def test_a_leader_renews_its_own_lease_without_counting_a_transition():
    lease, clock = FakeLease(), Clock()
    a = Elector(lease, "a", TIMING, clock)
    a.try_acquire_or_renew()
    clock.now += 5
    a.try_acquire_or_renew()
    assert lease.record.holder == "a" and lease.record.transitions == 0 and lease.writes == 2


def test_inconsistent_timing_is_refused():
    with pytest.raises(ValueError):
        LeaseTiming(lease_duration=10, renew_deadline=10, renew_period=5, retry_period=2)
