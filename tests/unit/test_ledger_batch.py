"""runs/ledger.py's group commit against an in-memory Lease (a unit test of the batching and its
retries, not of the API server: tests/integration/test_atomic_guardrails.py covers that): claims
that arrive while a write is in flight share the next write, keep the budget as if one after
another, and every waiter gets its own answer."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import datetime as dt
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from aftershock.api.policy import ChaosPolicySpec
from aftershock.cluster.io import Io
from aftershock.core import budget
from aftershock.core.budget import Candidate, Claim, Grant, Request, WorkloadShare
from aftershock.kube import Conflict
from aftershock.runs import ledger
from aftershock.runs.base import RunEnv

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
NAMESPACE = "ops"
WEB = WorkloadShare("w-web", "Deployment shop/web", 100)
PODS = [Candidate(f"web-{i}", "w-web") for i in range(100)]


def limit(runs: int) -> list[tuple[str, ChaosPolicySpec]]:
    spec = {
        "blastRadius": {"maxPodsPercent": 100},
        "concurrency": {"maxActiveRuns": runs, "maxActiveRunsPerNamespace": runs},
    }
    return [("guard", ChaosPolicySpec.model_validate(spec))]


def request(name: str, holder: str = "op-a") -> Request:
    claim = Claim(
        namespace="shop",
        name=name,
        uid=f"uid-{name}",
        holder=holder,
        target_namespace="shop",
        claimed_at=NOW - dt.timedelta(seconds=1),
        expires=NOW + dt.timedelta(minutes=5),
    )
    return Request(claim=claim, chosen=PODS[:1], candidates=PODS, workloads=[WEB])


class FakeLeases:
    """The ledger Lease in memory, with resourceVersion preconditions; writes can be held open
    (`hold`), made to fail, or raced by another replica (`interfere`)."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.version = 0
        self.reads = 0
        self.written: list[list[str]] = []  # the runs in the ledger after each write
        self.hold = threading.Event()
        self.hold.set()
        self.writing = threading.Event()
        self.fail: Exception | None = None
        self.lock = threading.Lock()

    def _stored(self, body: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        stored = copy.deepcopy(body)
        stored["metadata"]["resourceVersion"] = str(self.version)
        self.lease = stored
        return copy.deepcopy(stored)

    def find_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            self.reads += 1
            return copy.deepcopy(self.lease)

    def create_lease(self, namespace: str, body: dict[str, Any]) -> bool:
        with self.lock:
            if self.lease is not None:
                return False
            self._stored(body)
            return True

    def replace_lease(self, body: dict[str, Any]) -> dict[str, Any]:
        self.writing.set()
        assert self.hold.wait(10)
        with self.lock:
            if self.fail is not None:
                raise self.fail
            assert self.lease is not None
            if body["metadata"]["resourceVersion"] != self.lease["metadata"]["resourceVersion"]:
                raise Conflict("changed since it was read")
            stored = self._stored(body)
            self.written.append([c.name for c in self.claims()])
            return stored

    def claims(self) -> list[Claim]:
        assert self.lease is not None
        return budget.load(self.lease["metadata"]["annotations"].get(ledger.ANNOTATION))

    def interfere(self, *claims: Claim) -> None:
        """Another replica writes its claims."""
        with self.lock:
            assert self.lease is not None
            text = budget.dump([*self.claims(), *claims])
            changed = copy.deepcopy(self.lease)
            changed["metadata"]["annotations"][ledger.ANNOTATION] = text
            self._stored(changed)


class FakeView:
    """A cache that has not seen any of the runs yet (their fresh claims are kept: core/budget.py)."""

    def get_run(self, namespace: str, name: str) -> None:
        return None

    def active_runs(self) -> list[dict[str, Any]]:
        return []


@dataclasses.dataclass
class Liveness:
    reference: str | None = f"{NAMESPACE}/op-a"

    def holder_is_live(self, holder: str, lease: str | None, moment: dt.datetime) -> bool:
        return True

    def valid(self, moment: dt.datetime) -> bool:
        return True


@pytest.fixture
def kube() -> FakeLeases:
    return FakeLeases()


@pytest.fixture
def env(kube: FakeLeases) -> Iterator[RunEnv]:
    io = Io(ThreadPoolExecutor(8))
    yield RunEnv(
        kube=kube,  # type: ignore[arg-type]
        io=io,
        view=FakeView(),  # type: ignore[arg-type]
        identity="op-a",
        clock=lambda: NOW,
        claims=Liveness(),
    )
    io.shutdown()
    ledger._written.clear()


async def _while_writing(kube: FakeLeases) -> None:
    """Wait (in a thread, never blocking the loop) until a write is in flight and held."""
    assert await asyncio.get_running_loop().run_in_executor(None, kube.writing.wait, 10)


def test_claims_arriving_during_a_write_share_the_next_one(env: RunEnv, kube: FakeLeases) -> None:
    reads: list[int] = []

    async def scenario() -> list[Grant]:
        kube.hold.clear()
        first = asyncio.ensure_future(ledger.claim(env, limit(4), request("r0")))
        await _while_writing(kube)
        reads.append(kube.reads)
        rest = [asyncio.ensure_future(ledger.claim(env, limit(4), request(f"r{i}"))) for i in range(1, 10)]
        await asyncio.sleep(0)  # every claimant has queued its claim
        kube.hold.set()
        return await asyncio.wait_for(asyncio.gather(first, *rest), 10)

    grants = asyncio.run(scenario())
    assert [g.allowed for g in grants] == [True] * 4 + [False] * 6
    assert all(g.decision.reason == "ConcurrencyLimit" for g in grants[4:])
    # one write for the first claim, one for the nine that waited for it
    assert kube.written == [["r0"], ["r0", "r1", "r2", "r3"]]
    # the refusals were decided on a fresh read, not on what this process last wrote: one read
    assert kube.reads == reads[0] + 1


def test_another_replicas_write_makes_the_whole_batch_decide_again(env: RunEnv, kube: FakeLeases) -> None:
    async def scenario() -> list[Grant]:
        assert (await ledger.claim(env, limit(4), request("r0"))).allowed
        # another replica claims two runs after this process last wrote: our next write is a 409
        kube.interfere(request("b1", "op-b").claim, request("b2", "op-b").claim)
        asks = [ledger.claim(env, limit(4), request(f"r{i}")) for i in range(1, 4)]
        return await asyncio.wait_for(asyncio.gather(*asks), 10)

    grants = asyncio.run(scenario())
    assert [g.allowed for g in grants] == [True, False, False]
    assert "4 are active" in grants[1].decision.message
    assert kube.written == [["r0"], ["r0", "b1", "b2", "r1"]]


def test_a_failed_write_fails_every_claim_of_its_batch_only(env: RunEnv, kube: FakeLeases) -> None:
    async def scenario() -> tuple[list[object], Grant]:
        kube.fail = RuntimeError("the API server said 500")
        failed = await asyncio.wait_for(
            asyncio.gather(
                *(ledger.claim(env, limit(4), request(f"r{i}")) for i in range(3)), return_exceptions=True
            ),
            10,
        )
        kube.fail = None
        return failed, await ledger.claim(env, limit(4), request("later"))

    failed, later = asyncio.run(scenario())
    assert [str(f) for f in failed] == ["the API server said 500"] * 3
    assert later.allowed and kube.written == [["later"]]


def test_releases_ride_along_and_never_fail_a_claim(
    env: RunEnv, kube: FakeLeases, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> Grant:
        assert (await ledger.claim(env, limit(2), request("old"))).allowed
        kube.writing.clear()
        kube.hold.clear()
        busy = asyncio.ensure_future(ledger.claim(env, limit(2), request("busy")))
        await _while_writing(kube)
        # the budget is full until "old" is released: the release and the claim share one write
        freed = asyncio.ensure_future(ledger.release(env, "uid-old", "op-a"))
        new = asyncio.ensure_future(ledger.claim(env, limit(2), request("new")))
        await asyncio.sleep(0)
        kube.hold.set()
        assert (await asyncio.wait_for(busy, 10)).allowed
        await asyncio.wait_for(freed, 10)
        return await asyncio.wait_for(new, 10)

    assert asyncio.run(scenario()).allowed
    assert kube.written == [["old"], ["old", "busy"], ["busy", "new"]]

    async def failing_release() -> None:
        kube.fail = RuntimeError("the API server said 500")
        await asyncio.wait_for(ledger.release(env, "uid-new"), 10)  # logged, not raised

    asyncio.run(failing_release())
    assert "could not release the claims of runs uid-new" in caplog.text


def test_a_ledger_that_keeps_changing_refuses_with_claim_contention(
    env: RunEnv, kube: FakeLeases, monkeypatch: pytest.MonkeyPatch
) -> None:
    write = kube.replace_lease

    def always_raced(body: dict[str, Any]) -> dict[str, Any]:
        kube.interfere()
        return write(body)

    monkeypatch.setattr(kube, "replace_lease", always_raced)

    async def scenario() -> list[Grant]:
        return await asyncio.wait_for(
            asyncio.gather(*(ledger.claim(env, limit(4), request(f"r{i}")) for i in range(2))), 10
        )

    grants = asyncio.run(scenario())
    assert [g.decision.reason for g in grants] == [budget.CLAIM_CONTENTION] * 2
    assert "kept changing over 20 attempts" in grants[0].decision.message


def test_a_claimant_cancelled_while_its_claim_is_written_gives_it_back(env: RunEnv, kube: FakeLeases) -> None:
    async def scenario() -> None:
        kube.hold.clear()
        gone = asyncio.ensure_future(ledger.claim(env, limit(4), request("gone")))
        await _while_writing(kube)
        gone.cancel()
        kube.hold.set()
        assert (await asyncio.wait_for(ledger.claim(env, limit(4), request("next")), 10)).allowed

    asyncio.run(scenario())
    assert kube.written[0] == ["gone"]
    assert kube.written[-1] == ["next"]
