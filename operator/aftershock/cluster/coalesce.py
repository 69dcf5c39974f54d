"""Coalesced, keyed refreshes: many requests to recompute the same thing become one or two.

A refresh (e.g. an experiment's status from its runs) reads everything anew, so requests that
arrive while one is waiting to start are answered by it, and requests that arrive while one is
running are answered by exactly one more run after it. Every caller gets a refresh that started
after its request; none of them wait for capacity beyond that.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K")


@dataclass
class _Slot:
    waiting: asyncio.Future[None] | None = None  # the next refresh (not started yet), if requested
    running: asyncio.Task[None] | None = None
    loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)


class Coalescer(Generic[K]):
    """`request(key)` schedules `refresh(key)`; returns a future that resolves when a refresh that
    started after the request has finished (its failure is logged, not raised: a refresh is a view
    that the next one repairs)."""

    def __init__(self, refresh: Callable[[K], Awaitable[None]], delay: float = 0.0) -> None:
        self.refresh = refresh
        self.delay = delay
        self._slots: dict[K, _Slot] = {}

    def request(self, key: K) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        slot = self._slots.get(key)
        if slot is None or slot.loop is not loop:
            slot = self._slots[key] = _Slot(loop=loop)
        if slot.waiting is None:
            slot.waiting = loop.create_future()
            if slot.running is None:
                slot.running = loop.create_task(self._drain(key, slot))
        return slot.waiting

    async def _drain(self, key: K, slot: _Slot) -> None:
        done: asyncio.Future[None] | None = None
        try:
            while slot.waiting is not None:
                if self.delay:
                    await asyncio.sleep(self.delay)  # let a burst of requests gather
                done, slot.waiting = slot.waiting, None
                try:
                    await self.refresh(key)
                except Exception:
                    log.exception("refresh of %s failed", key)
                done.set_result(None)
        finally:
            # cancelled (shutdown): nobody is left waiting for a refresh that will not come
            for pending in (done, slot.waiting):
                if pending is not None and not pending.done():
                    pending.cancel()
            slot.running, slot.waiting = None, None
            if self._slots.get(key) is slot:
                del self._slots[key]
