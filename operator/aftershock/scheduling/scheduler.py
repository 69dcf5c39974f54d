"""One scheduler for every experiment: a timer heap and one asyncio loop.

Experiment events (create, spec change, delete, and the initial listing on start) update an index
of experiment bodies; the loop sleeps until the earliest slot, then hands each due experiment's
tick to a small I/O pool of its own. A suspended or `@yearly` experiment costs an index entry,
not a thread. A tick returns when it wants to be called again (the next slot; never, for a
run-once experiment, until its spec changes), so a quiet experiment issues no API request
between its slots.

Two operators may both tick the same slot: the run's deterministic name makes the second create
answer 409, so a slot can never fire twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from aftershock.cluster.io import Io
from aftershock.kube import Obj
from aftershock.metrics import RECONCILE_ERRORS
from aftershock.scheduling.heap import Key, TimerHeap

log = logging.getLogger(__name__)

Tick = Callable[[Obj], float]
"""Plan one experiment (blocking I/O); returns the seconds until it wants to be ticked again
(math.inf: only on its next spec change)."""

ERROR_BACKOFF = (2.0, 5.0, 15.0, 30.0, 60.0)
FOLLOW_UP_DELAY = 3.0
"""Seconds a tick's follow-up work (the experiment's status, its Event, history pruning) waits:
when many slots fire at once, their runs reach the API server first."""


def _key(body: Mapping[str, Any]) -> Key:
    meta = body["metadata"]
    return (str(meta["namespace"]), str(meta["name"]))


def needs_tick(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """A new experiment, a spec change (generation), or a deletion starting wants a tick now;
    status-only changes (our own writes) do not — otherwise every tick would trigger the next."""
    if old is None:
        return True
    before, after = old.get("metadata") or {}, new.get("metadata") or {}
    return before.get("generation") != after.get("generation") or bool(
        after.get("deletionTimestamp")
    ) != bool(before.get("deletionTimestamp"))


class Scheduler:
    def __init__(
        self,
        tick: Tick,
        io: Io,
        *,
        concurrency: int = 16,
        clock: Callable[[], float] = time.monotonic,
        follow_up_delay: float = FOLLOW_UP_DELAY,
    ) -> None:
        self.tick = tick
        self.io = io
        self.clock = clock
        self.heap = TimerHeap()
        self.bodies: dict[Key, Obj] = {}
        self.failures: dict[Key, int] = {}
        self._running: set[Key] = set()
        self._again: set[Key] = set()
        self._limit = asyncio.Semaphore(concurrency)
        self._wake: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._follow_ups: dict[Key, list[Callable[[], None]]] = {}
        self.follow_up_delay = follow_up_delay

    def __len__(self) -> int:
        return len(self.bodies)

    # --- fed by experiment events --------------------------------------------------------

    def observe(self, event_type: str | None, body: Obj) -> None:
        """Apply one watch event (must be called on the scheduler's event loop)."""
        key = _key(body)
        if event_type == "DELETED":
            self.bodies.pop(key, None)
            self.heap.remove(key)
            self.failures.pop(key, None)
            return
        old = self.bodies.get(key)
        self.bodies[key] = body
        scheduled = bool((body.get("spec") or {}).get("schedule"))
        # a scheduled experiment always has a next tick; a run-once one only while it fails
        lost = scheduled and key not in self.heap and key not in self._running
        if needs_tick(old, body) or lost:
            self.due_now(key)

    def due_now(self, key: Key) -> None:
        if key in self._running:
            self._again.add(key)  # tick once more when the current one is done
            return
        self.heap.schedule(key, self.clock())
        self._poke()

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    # --- follow-up work, a little later -------------------------------------------------------

    def follow_up(self, key: Key, work: Callable[[], None]) -> None:
        """Run `work` (blocking) `follow_up_delay` seconds from now, after any follow-ups of the same
        experiment queued before it. Thread-safe: ticks call it from their pool."""
        loop = self._loop
        if loop is None:
            work()
            return
        loop.call_soon_threadsafe(self._queue_follow_up, key, work)

    def _queue_follow_up(self, key: Key, work: Callable[[], None]) -> None:
        waiting = key in self._follow_ups
        self._follow_ups.setdefault(key, []).append(work)
        if not waiting:
            task = asyncio.create_task(self._follow_up_later(key), name=f"follow-up {key[0]}/{key[1]}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _follow_up_later(self, key: Key) -> None:
        await asyncio.sleep(self.follow_up_delay)
        for work in self._follow_ups.pop(key, []):
            if key not in self.bodies:
                return  # deleted meanwhile: nothing left to describe
            try:
                async with self._limit:
                    await self.io(work)
            except Exception:
                RECONCILE_ERRORS.labels("ChaosExperiment", "schedule").inc()
                log.exception("follow-up for %s/%s failed (the next tick repairs it)", key[0], key[1])

    # --- the loop ----------------------------------------------------------------------------

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        while True:
            self._wake.clear()  # before looking: a poke from here on ends the wait below
            for key in self.heap.pop_due(self.clock()):
                if key in self.bodies:
                    self._start(key)
            due = self.heap.next_due()
            timeout = None if due is None else max(0.0, due - self.clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)

    def _start(self, key: Key) -> None:
        self._running.add(key)
        task = asyncio.create_task(self._tick(key), name=f"tick {key[0]}/{key[1]}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _tick(self, key: Key) -> None:
        pause: float
        try:
            async with self._limit:
                body = self.bodies.get(key)
                if body is None:
                    return
                pause = await self.io(self.tick, body)
            self.failures.pop(key, None)
        except Exception:
            RECONCILE_ERRORS.labels("ChaosExperiment", "schedule").inc()
            count = self.failures.get(key, 0)
            self.failures[key] = count + 1
            pause = ERROR_BACKOFF[min(count, len(ERROR_BACKOFF) - 1)]
            log.exception("schedule tick failed for %s/%s (again in %.0f s)", key[0], key[1], pause)
        finally:
            self._running.discard(key)
        if key not in self.bodies:
            return
        if key in self._again:
            self._again.discard(key)
            pause = 0.0
        if math.isinf(pause):
            return
        self.heap.schedule(key, self.clock() + pause)
        self._poke()
