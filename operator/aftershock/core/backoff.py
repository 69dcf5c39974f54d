"""How long to wait before retrying a call that failed transiently: exponential, capped, jittered.

Pure: the random draw and the current time are arguments, so the sequence is tested exactly.
Jitter keeps many callers that failed together (an API server restart hits every run at once)
from retrying together; the floor of each delay (`1 - jitter` of its ceiling) keeps a retry from
ever being immediate, so a failing server is never hammered in a tight loop.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Delays of retries 0, 1, 2, ...: the ceiling grows from `base` by `factor` up to `cap`; the
    delay is drawn from [ceiling * (1 - jitter), ceiling]."""

    base: float = 0.1
    factor: float = 2.0
    cap: float = 5.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if not (self.base > 0 and self.factor >= 1 and self.cap >= self.base and 0 <= self.jitter <= 1):
            raise ValueError(f"invalid backoff {self}")

    def ceiling(self, retry: int) -> float:
        """The longest delay before retry number `retry` (0 for the first retry)."""
        if retry < 0:
            raise ValueError("retry counts from 0")
        # compare exponents, not powers: a large retry count must not overflow a float
        if retry * math.log(self.factor) >= math.log(self.cap / self.base):
            return self.cap
        return float(self.base * self.factor**retry)

    def delay(self, retry: int, draw: float, retry_after: float | None = None) -> float:
        """The delay before retry number `retry`; `draw` is uniform in [0, 1). With a server's
        Retry-After, at least that long: the server's wish plus our own jittered delay, so clients
        told the same Retry-After still spread out."""
        if not 0 <= draw <= 1:
            raise ValueError("draw must be in [0, 1]")
        ceiling = self.ceiling(retry)
        own = ceiling * (1 - self.jitter) + ceiling * self.jitter * draw
        if retry_after is not None and retry_after > 0:
            return retry_after + own
        return own


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """Seconds to wait from an HTTP Retry-After header: delay-seconds ("3") or an HTTP-date
    (a date in the past means 0). None when absent or unreadable, so the caller backs off as usual."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an HTTP-date is GMT by definition
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now).total_seconds())
