"""Failpoints for crash and saturation tests: pause the operator at a named point so a test can
kill it there, or hold a thread there.

Set `AFTERSHOCK_FAILPOINTS="Injecting=5,Injected=5"` to sleep 5 s right after the named point is
reached (a phase name: just after that phase is journaled; `Injected`: after the fault is applied,
before Observing is journaled). `Observing@blocker=60` pauses only runs whose name starts with
`blocker`. Empty in production; read once per process.
"""

from __future__ import annotations

import logging
import os
import time
from functools import cache

log = logging.getLogger(__name__)


@cache
def _points() -> dict[str, float]:
    points: dict[str, float] = {}
    for item in os.environ.get("AFTERSHOCK_FAILPOINTS", "").split(","):
        name, _, seconds = item.partition("=")
        if name.strip() and seconds.strip():
            points[name.strip()] = float(seconds)
    return points


def armed() -> bool:
    """Whether any failpoint is set (callers skip the call, and its thread hop, when none is)."""
    return bool(_points())


def reached(name: str, subject: str = "") -> None:
    """Sleep if a failpoint is set for `name` (optionally only for subjects with a prefix)."""
    for point, seconds in _points().items():
        where, _, prefix = point.partition("@")
        if where == name and subject.startswith(prefix) and seconds:
            log.warning("failpoint %s: pausing %.1fs", point, seconds)
            time.sleep(seconds)
            return
