"""The resilience mechanisms of the resilient frontend, as small thread-safe parts with no I/O.

They are separate from the HTTP code so that their arithmetic can be unit-tested with a fake
clock and a fixed random source, and so that what "resilient" means here is readable in one place:

- `backoff_delay`: exponential backoff with full jitter (retries of many clients spread out
  instead of arriving in lockstep);
- `RetryBudget`: retries may add at most a fixed share of the traffic (a token bucket that every
  request fills a little and every retry drains by one), so a failing backend sees ~1.x attempts
  per request instead of N;
- `CircuitBreaker`: after consecutive failures stop calling the backend for a cool-down, then let
  a single trial through (half-open) to find out whether it recovered;
- `Admission`: a fixed number of concurrent backend calls and an optional bounded wait queue in
  front of them; beyond that, requests are refused at once (load shedding) instead of queueing.
"""

from __future__ import annotations

import enum
import random
import threading
import time
from collections.abc import Callable


def backoff_delay(retry: int, *, base: float, cap: float, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait before retry number `retry` (1 for the first retry): uniform in
    [0, min(cap, base * 2**(retry-1))] ("full jitter"). `rand` returns a float in [0, 1)."""
    if retry < 1:
        raise ValueError(f"retry counts from 1, got {retry}")
    ceiling = min(cap, base * 2.0 ** (retry - 1))
    return ceiling * rand()


class RetryBudget:
    """A token bucket bounding retries to `ratio` of requests (plus a small burst).

    Each request deposits `ratio` tokens, each retry withdraws one; the bucket holds at most
    `max_tokens` and starts with `initial`. Under a total outage the retries per request thus
    tend to `ratio`, whatever the per-request retry limit is.
    """

    def __init__(self, ratio: float = 0.2, *, initial: float = 5.0, max_tokens: float = 10.0) -> None:
        if not 0 <= ratio <= 1:
            raise ValueError(f"ratio must be in [0, 1], got {ratio}")
        self.ratio = ratio
        self.max_tokens = max_tokens
        self._tokens = min(initial, max_tokens)
        self._lock = threading.Lock()

    @property
    def tokens(self) -> float:
        with self._lock:
            return self._tokens

    def deposit(self) -> None:
        """A new request arrived: it earns `ratio` of a retry."""
        with self._lock:
            self._tokens = min(self.max_tokens, self._tokens + self.ratio)

    def try_withdraw(self) -> bool:
        """Whether a retry may be made now (and if so, pay for it)."""
        with self._lock:
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Consecutive-failure circuit breaker with a single half-open trial.

    Closed: calls pass; `threshold` failures in a row open it. Open: calls are refused until
    `cooldown` seconds have passed, then exactly one call is let through (half-open); its success
    closes the breaker, its failure opens it for another cool-down.
    """

    def __init__(
        self, threshold: int = 5, cooldown: float = 1.0, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if threshold < 1:
            raise ValueError(f"threshold must be at least 1, got {threshold}")
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._lock = threading.Lock()

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._state

    def would_allow(self) -> bool:
        """Whether `allow` would say yes now, without taking the half-open trial (so a caller can
        skip paying for a retry the breaker would refuse)."""
        with self._lock:
            if self._state is BreakerState.OPEN:
                return self._clock() - self._opened_at >= self.cooldown
            return self._state is BreakerState.CLOSED

    def allow(self) -> bool:
        """Whether a call may go to the backend now; a True in half-open is the one trial."""
        with self._lock:
            if self._state is BreakerState.CLOSED:
                return True
            if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.cooldown:
                self._state = BreakerState.HALF_OPEN
                return True
            return False  # open and cooling down, or half-open with its trial in flight

    def record(self, success: bool) -> None:
        """The outcome of a call that `allow` let through."""
        with self._lock:
            if success:
                self._state = BreakerState.CLOSED
                self._failures = 0
                return
            self._failures += 1
            if self._state is BreakerState.HALF_OPEN or self._failures >= self.threshold:
                self._state = BreakerState.OPEN
                self._opened_at = self._clock()


class Admitted(enum.Enum):
    YES = "admitted"
    QUEUE_FULL = "queue_full"
    QUEUE_TIMEOUT = "queue_timeout"


class Admission:
    """At most `slots` requests at work at once; others wait in a queue of at most `queue`
    entries (None: unbounded, the naive build), and never longer than the caller's timeout."""

    def __init__(self, slots: int, queue: int | None) -> None:
        if slots < 1:
            raise ValueError(f"slots must be at least 1, got {slots}")
        self.slots = slots
        self.queue = queue
        self._active = 0
        self._waiting = 0
        self._cond = threading.Condition()

    @property
    def active(self) -> int:
        with self._cond:
            return self._active

    @property
    def waiting(self) -> int:
        with self._cond:
            return self._waiting

    def enter(self, timeout: float | None = None) -> Admitted:
        """Take a slot, waiting in the queue if need be; `leave` must follow a YES."""
        with self._cond:
            if self._active < self.slots and self._waiting == 0:
                self._active += 1
                return Admitted.YES
            if self.queue is not None and self._waiting >= self.queue:
                return Admitted.QUEUE_FULL
            self._waiting += 1
            try:
                got = self._cond.wait_for(lambda: self._active < self.slots, timeout)
            finally:
                self._waiting -= 1
            if not got:
                return Admitted.QUEUE_TIMEOUT
            self._active += 1
            return Admitted.YES

    def leave(self) -> None:
        with self._cond:
            self._active -= 1
            self._cond.notify()
