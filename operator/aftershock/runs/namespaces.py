"""Namespace labels for the policy gate, shared by every run of the process.

The gate needs the target namespace's labels (opted in? which policy selects it?) twice per run.
In namespaced mode the operator may not list or watch Namespaces, so they are read with GET; when
a burst of slots starts many runs in one namespace at once, a read that is already in flight
answers all of them. An answer is not reused after it arrived (`fresh_seconds` 0): a namespace
that has just opted out must be seen so by the next run, however soon it starts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from aftershock.cluster.io import Io
from aftershock.kube import Kube

FRESH_SECONDS = 0.0

Labels = dict[str, str] | None


class NamespaceLabels:
    def __init__(self, fresh_seconds: float = FRESH_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.fresh_seconds = fresh_seconds
        self.clock = clock
        self._answers: dict[str, tuple[float, Labels]] = {}
        self._reading: dict[str, asyncio.Task[Labels]] = {}

    async def get(self, io: Io, kube: Kube, name: str) -> Labels:
        """The namespace's labels (None: it does not exist), read at most `fresh_seconds` ago."""
        answer = self._answers.get(name)
        if answer is not None and self.clock() - answer[0] < self.fresh_seconds:
            return answer[1]
        loop = asyncio.get_running_loop()
        reading = self._reading.get(name)
        if reading is None or reading.get_loop() is not loop:
            # a task of its own: a caller cancelled while waiting does not cancel the others' read
            reading = loop.create_task(self._read(io, kube, name))
            self._reading[name] = reading
        return await asyncio.shield(reading)

    async def _read(self, io: Io, kube: Kube, name: str) -> Labels:
        asked = self.clock()
        try:
            labels: Labels = await io(kube.find_namespace_labels, name)
        finally:
            self._reading.pop(name, None)
        self._answers[name] = (asked, labels)
        return labels
