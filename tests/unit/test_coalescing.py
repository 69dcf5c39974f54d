"""Coalesced refreshes and shared namespace-label reads: a burst of runs costs one request, and
nobody is answered by a read that began before they asked — no cluster."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from aftershock.cluster.coalesce import Coalescer
from aftershock.cluster.io import Io
from aftershock.runs.namespaces import NamespaceLabels


def test_requests_during_a_refresh_get_exactly_one_more() -> None:
    started: list[str] = []
    release = asyncio.Event()

    async def refresh(key: str) -> None:
        started.append(key)
        await release.wait()

    async def scenario() -> None:
        coalescer: Coalescer[str] = Coalescer(refresh)
        first = coalescer.request("a")
        await asyncio.sleep(0)  # the first refresh is running now
        later = [coalescer.request("a") for _ in range(10)]  # all arrive while it runs
        other = coalescer.request("b")
        assert len({id(f) for f in later}) == 1, "requests that wait together share one refresh"
        release.set()
        await asyncio.wait_for(asyncio.gather(first, *later, other), 5)
        assert started.count("a") == 2, "one refresh running, one more for everything asked meanwhile"
        assert started.count("b") == 1

    asyncio.run(scenario())


def test_a_failed_refresh_is_logged_and_still_answers(caplog: pytest.LogCaptureFixture) -> None:
    async def refresh(key: str) -> None:
        raise RuntimeError(f"cannot refresh {key}")

    async def scenario() -> None:
        coalescer: Coalescer[str] = Coalescer(refresh)
        await asyncio.wait_for(coalescer.request("a"), 5)
        await asyncio.wait_for(coalescer.request("a"), 5)  # the key is usable again afterwards

    asyncio.run(scenario())
    assert caplog.text.count("cannot refresh a") == 2


class FakeKube:
    """Stands in for the client's namespace read (a unit test of the sharing, not of the API)."""

    def __init__(self) -> None:
        self.reads = 0

    def find_namespace_labels(self, name: str) -> dict[str, str] | None:
        self.reads += 1
        return {"read": str(self.reads)} if name != "gone" else None


def test_concurrent_reads_of_one_namespace_share_one_request() -> None:
    kube = FakeKube()
    clock = [100.0]
    labels = NamespaceLabels(fresh_seconds=0.5, clock=lambda: clock[0])
    io = Io(ThreadPoolExecutor(4))

    async def scenario() -> list[Any]:
        burst = await asyncio.gather(*(labels.get(io, kube, "team") for _ in range(20)))  # type: ignore[arg-type]
        again = await labels.get(io, kube, "team")  # type: ignore[arg-type]
        clock[0] += 0.6  # older than fresh_seconds: read anew
        fresh = await labels.get(io, kube, "team")  # type: ignore[arg-type]
        missing = await labels.get(io, kube, "gone")  # type: ignore[arg-type]
        return [burst, again, fresh, missing]

    burst, again, fresh, missing = asyncio.run(scenario())
    assert all(b == {"read": "1"} for b in burst)
    assert again == {"read": "1"}
    assert fresh == {"read": "2"}
    assert missing is None
    assert kube.reads == 3


def test_a_caller_cancelled_while_waiting_does_not_cancel_the_others() -> None:
    kube = FakeKube()
    labels = NamespaceLabels()
    io = Io(ThreadPoolExecutor(2))

    async def scenario() -> Any:
        impatient = asyncio.ensure_future(labels.get(io, kube, "team"))  # type: ignore[arg-type]
        patient = asyncio.ensure_future(labels.get(io, kube, "team"))  # type: ignore[arg-type]
        await asyncio.sleep(0)
        impatient.cancel()
        return await asyncio.wait_for(patient, 5)

    assert asyncio.run(scenario()) == {"read": "1"}
