"""The timer heap behind the scheduler: which experiment is due next. Pure (no clock, no I/O).

Each experiment has at most one live entry; re-scheduling bumps its token so the older heap
entry is discarded when it surfaces (lazy deletion keeps every operation O(log n))."""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

Key = tuple[str, str]  # (namespace, name)


@dataclass(order=True)
class _Entry:
    due: float
    seq: int
    key: Key = field(compare=False)
    token: int = field(compare=False)


class TimerHeap:
    def __init__(self) -> None:
        self._heap: list[_Entry] = []
        self._tokens: dict[Key, int] = {}
        self._due: dict[Key, float] = {}
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, key: Key) -> bool:
        return key in self._tokens

    def schedule(self, key: Key, due: float) -> None:
        """(Re)schedule `key` at `due`, replacing any earlier entry for it."""
        token = self._tokens.get(key, 0) + 1
        self._tokens[key] = token
        self._due[key] = due
        heapq.heappush(self._heap, _Entry(due, next(self._seq), key, token))

    def due_at(self, key: Key) -> float | None:
        return self._due.get(key)

    def remove(self, key: Key) -> None:
        self._tokens.pop(key, None)
        self._due.pop(key, None)

    def _settle(self) -> None:
        while self._heap and self._tokens.get(self._heap[0].key) != self._heap[0].token:
            heapq.heappop(self._heap)

    def next_due(self) -> float | None:
        """When the earliest live entry is due (None: nothing scheduled)."""
        self._settle()
        return self._heap[0].due if self._heap else None

    def pop_due(self, now: float) -> list[Key]:
        """Every key due at or before `now`, removed from the heap (re-schedule them after work)."""
        keys: list[Key] = []
        while True:
            self._settle()
            if not self._heap or self._heap[0].due > now:
                return keys
            entry = heapq.heappop(self._heap)
            self._tokens.pop(entry.key, None)
            self._due.pop(entry.key, None)
            keys.append(entry.key)
