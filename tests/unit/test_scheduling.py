"""The scheduler's timer heap and event intake, and the Lease liveness rule — no cluster."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aftershock.cluster.io import Io
from aftershock.cluster.lease import OperatorLease, is_live, lease_name
from aftershock.scheduling.heap import TimerHeap
from aftershock.scheduling.scheduler import Scheduler, needs_tick


def test_heap_pops_in_due_order_and_forgets_rescheduled_entries() -> None:
    heap = TimerHeap()
    heap.schedule(("ns", "a"), 5.0)
    heap.schedule(("ns", "b"), 1.0)
    heap.schedule(("ns", "c"), 3.0)
    heap.schedule(("ns", "b"), 10.0)  # moved later: its old entry must not fire
    assert heap.next_due() == 3.0
    assert heap.pop_due(4.0) == [("ns", "c")]
    assert heap.pop_due(9.0) == [("ns", "a")]
    assert heap.pop_due(9.5) == []
    assert heap.pop_due(10.0) == [("ns", "b")]
    assert len(heap) == 0 and heap.next_due() is None


def test_heap_remove_drops_the_entry() -> None:
    heap = TimerHeap()
    heap.schedule(("ns", "a"), 1.0)
    heap.remove(("ns", "a"))
    assert ("ns", "a") not in heap
    assert heap.pop_due(100.0) == []


def _body(name: str, generation: int = 1, schedule: str | None = "@every 1m", **meta: Any) -> dict[str, Any]:
    spec = {"schedule": schedule} if schedule else {}
    return {"metadata": {"namespace": "ns", "name": name, "generation": generation, **meta}, "spec": spec}


def test_only_spec_changes_and_deletions_ask_for_a_tick() -> None:
    assert needs_tick(None, _body("a"))
    assert not needs_tick(_body("a"), _body("a"))  # a status write: generation unchanged
    assert needs_tick(_body("a"), _body("a", generation=2))
    assert needs_tick(_body("a"), _body("a", deletionTimestamp="2026-01-01T00:00:00Z"))


def test_scheduler_ticks_each_experiment_when_due_and_not_on_status_writes() -> None:
    ticks: list[str] = []

    def tick(body: dict[str, Any]) -> float:
        ticks.append(body["metadata"]["name"])
        if not body["spec"].get("schedule"):
            return math.inf  # run once: nothing more until its spec changes
        return 0.05 if body["metadata"]["name"] == "fast" else 3600.0

    async def scenario() -> None:
        scheduler = Scheduler(tick, Io(ThreadPoolExecutor(2)))
        loop = asyncio.create_task(scheduler.run())
        scheduler.observe("ADDED", _body("fast"))
        scheduler.observe("ADDED", _body("slow"))
        scheduler.observe("ADDED", _body("unscheduled", schedule=None))
        for _ in range(200):
            if ticks.count("fast") >= 4:
                break
            await asyncio.sleep(0.01)
        scheduler.observe("MODIFIED", _body("slow"))  # status-only: no extra tick
        scheduler.observe("MODIFIED", _body("unscheduled", schedule=None))  # nor for a run-once one
        scheduler.observe("MODIFIED", _body("slow", generation=2))  # spec change: tick now
        for _ in range(200):
            if ticks.count("slow") >= 2:
                break
            await asyncio.sleep(0.01)
        scheduler.observe("DELETED", _body("fast"))
        seen = ticks.count("fast")
        await asyncio.sleep(0.2)
        assert ticks.count("fast") <= seen + 1  # at most one tick already in flight
        assert len(scheduler) == 2
        assert ("ns", "unscheduled") not in scheduler.heap  # no timer for it
        scheduler.observe("MODIFIED", _body("unscheduled", schedule=None, generation=2))
        for _ in range(200):
            if ticks.count("unscheduled") >= 2:
                break
            await asyncio.sleep(0.01)
        loop.cancel()

    asyncio.run(scenario())
    assert ticks.count("fast") >= 4
    assert ticks.count("slow") == 2
    assert ticks.count("unscheduled") == 2  # created, then its spec changed


def test_a_failing_tick_backs_off_instead_of_spinning() -> None:
    calls: list[float] = []

    def tick(body: dict[str, Any]) -> float:
        calls.append(1.0)
        raise RuntimeError("API server unreachable")

    async def scenario() -> None:
        scheduler = Scheduler(tick, Io(ThreadPoolExecutor(1)))
        loop = asyncio.create_task(scheduler.run())
        scheduler.observe("ADDED", _body("broken"))
        for _ in range(100):
            if calls:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
        due = scheduler.heap.due_at(("ns", "broken"))
        assert due is not None and due - scheduler.clock() > 1.0
        loop.cancel()

    asyncio.run(scenario())
    assert len(calls) == 1


def _lease(holder: str, renewed: str, seconds: int = 15) -> dict[str, Any]:
    return {"spec": {"holderIdentity": holder, "renewTime": renewed, "leaseDurationSeconds": seconds}}


def test_a_lease_is_live_until_its_duration_has_passed_since_renewal() -> None:
    at = dt.datetime(2026, 11, 28, 12, 0, 0, tzinfo=dt.UTC)
    lease = _lease("op-a", "2026-11-28T11:59:50.000000Z")
    assert is_live(lease, "op-a", at)
    assert not is_live(lease, "op-a", at + dt.timedelta(seconds=6))
    assert not is_live(lease, "op-b", at)  # someone else's lease says nothing about op-b
    assert not is_live(None, "op-a", at)  # gone (a clean shutdown deletes it): take over at once


def test_lease_names_are_stable_and_dns_safe() -> None:
    assert lease_name("pod-1") == lease_name("pod-1") != lease_name("pod-2")
    assert lease_name("Host_Name-42").replace("-", "").isalnum() and len(lease_name("x" * 300)) < 64


class _Leases:
    """Answers find_lease from a dict; raises for namespaces it may not read (like a 403)."""

    def __init__(self, leases: dict[tuple[str, str], dict[str, Any]], forbidden: set[str]) -> None:
        self.leases = leases
        self.forbidden = forbidden
        self.reads = 0

    def with_retry(self, _policy: object) -> _Leases:
        return self

    def find_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.reads += 1
        if namespace in self.forbidden:
            raise PermissionError(f"leases in {namespace} are forbidden")
        return self.leases.get((namespace, name))


def test_a_claim_is_judged_by_the_lease_it_names_and_never_stolen_when_unreadable() -> None:
    at = dt.datetime(2026, 11, 28, 12, 0, 0, tzinfo=dt.UTC)
    fresh = _lease("other", "2026-11-28T11:59:58.000000Z")
    kube = _Leases({("elsewhere", lease_name("other")): fresh}, forbidden={"secret"})
    ours = OperatorLease(kube, "home", "me", read=lambda ns, name: None, clock=lambda: at)  # type: ignore[arg-type]
    # its Lease lives in another namespace: read there (once per few seconds), and it is alive
    assert ours.holder_is_live("other", f"elsewhere/{lease_name('other')}", at)
    assert ours.holder_is_live("other", f"elsewhere/{lease_name('other')}", at)
    assert kube.reads == 1
    # a reference to somebody else's Lease name does not count: the holder's own is looked up
    assert not ours.holder_is_live("other", "elsewhere/some-other-lease", at)
    # no reference (an older run): our namespace, where there is none: lapsed
    assert not ours.holder_is_live("other", None, at)
    # a Lease we may not read: never take the run over
    assert ours.holder_is_live("other", f"secret/{lease_name('other')}", at)


def test_follow_ups_run_later_in_order_and_not_for_a_deleted_experiment() -> None:
    done: list[str] = []

    def tick(body: dict[str, Any]) -> float:
        return 3600.0

    async def scenario() -> None:
        scheduler = Scheduler(tick, Io(ThreadPoolExecutor(2)), follow_up_delay=0.1)
        loop = asyncio.create_task(scheduler.run())
        await asyncio.sleep(0)
        scheduler.observe("ADDED", _body("kept"))
        scheduler.observe("ADDED", _body("gone"))
        for what in ("kept-1", "kept-2"):
            scheduler.follow_up(("ns", "kept"), lambda what=what: done.append(what))
        scheduler.follow_up(("ns", "gone"), lambda: done.append("gone"))
        await asyncio.sleep(0.03)
        assert done == []  # not yet: the runs go first
        scheduler.observe("DELETED", _body("gone"))
        for _ in range(100):
            if len(done) >= 2:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        loop.cancel()

    asyncio.run(scenario())
    assert done == ["kept-1", "kept-2"]
