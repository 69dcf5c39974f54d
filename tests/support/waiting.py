"""Polling with a deadline: the only way tests wait (never a bare sleep as synchronisation)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """The condition did not hold before the deadline; carries the last value seen."""


def wait_for(
    probe: Callable[[], T | None],
    *,
    timeout: float = 30.0,
    interval: float = 0.2,
    message: str = "condition",
) -> T:
    """Call `probe` until it returns something truthy, and return that; fail after `timeout` seconds.

    Exceptions from the probe count as "not yet" until the deadline, then the last one is raised
    as the cause, so a test failure shows why the condition never held.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    last_error: BaseException | None = None
    while True:
        try:
            value = probe()
            last_error = None
            if value:
                return value
            last = value
        except Exception as exc:  # the probe may race with object creation; retry until the deadline
            last_error = exc
        if time.monotonic() >= deadline:
            raise WaitTimeout(
                f"timed out after {timeout:.0f}s waiting for {message}; last value: {last!r}"
            ) from (last_error)
        time.sleep(interval)
