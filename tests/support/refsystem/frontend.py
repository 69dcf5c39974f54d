"""The reference system's frontend: GET /checkout calls the backend (through Toxiproxy) and answers.

Two builds of the same code, chosen by `FrontendSettings`, give aftershock's verdicts something
real to judge:

- `NAIVE`: effectively no timeout (60 s), up to 5 attempts retried at once on any failure, a
  pool of 16 concurrent backend calls with an unbounded queue in front. Under a dependency fault
  it multiplies the backend's load (retry storm), piles up requests (no backpressure) and makes
  its clients wait as long as the backend does (no timeouts).
- `RESILIENT`: 0.5-s attempts inside a 2-s request deadline, at most 2 retries with jittered
  exponential backoff, a retry budget of 20 % of requests, a circuit breaker (open after 5 failed
  attempts in a row, one trial a second), and 8 slots with a queue of 8: excess requests are shed
  at once with 503, and so are requests that the open breaker or the deadline leaves no attempt.

Metrics go to the frontend's own registry (never the process-wide one), served on /metrics.
Run as `python -m tests.support.refsystem frontend --port PORT --backend URL --build naive|resilient
[--settings JSON]` (JSON: FrontendSettings fields to override).
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any, Literal
from urllib.parse import urlsplit

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from tests.support.refsystem._server import LoopbackServer
from tests.support.refsystem.policy import (
    Admission,
    Admitted,
    BreakerState,
    CircuitBreaker,
    RetryBudget,
    backoff_delay,
)

Build = Literal["naive", "resilient"]
Outcome = Literal["ok", "error", "timeout"]
Shed = Literal["circuit_open", "queue_timeout"]
# from a healthy loopback call (~10 ms) up to the naive build's 60-s attempts
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)
MIN_ATTEMPT = 0.01  # seconds: less than this left before the deadline is not worth an attempt


@dataclass(frozen=True)
class FrontendSettings:
    """How the frontend calls its backend and admits its clients' requests."""

    build: Build
    attempts: int  # per client request, the first one included
    attempt_timeout: float  # seconds for one attempt (connect, and each wait for bytes)
    deadline: float | None  # seconds for a whole client request, queueing included; None: none
    backoff_base: float | None  # first retry waits up to this (full jitter); None: retry at once
    backoff_cap: float  # no backoff wait is longer than this
    retry_budget: float | None  # retries allowed as a share of requests; None: no budget
    breaker_threshold: int | None  # consecutive failed attempts that open the breaker; None: no breaker
    breaker_cooldown: float  # seconds the breaker stays open before one trial call
    slots: int  # concurrent backend calls
    queue: int | None  # requests that may wait for a slot; None: unbounded

    @staticmethod
    def for_build(build: Build, **overrides: Any) -> FrontendSettings:
        base = NAIVE if build == "naive" else RESILIENT
        return dataclasses.replace(base, **overrides)


NAIVE = FrontendSettings(
    build="naive",
    attempts=5,
    attempt_timeout=60.0,
    deadline=None,
    backoff_base=None,
    backoff_cap=0.0,
    retry_budget=None,
    breaker_threshold=None,
    breaker_cooldown=0.0,
    slots=16,
    queue=None,
)
RESILIENT = FrontendSettings(
    build="resilient",
    attempts=3,
    attempt_timeout=0.5,
    deadline=2.0,
    backoff_base=0.05,
    backoff_cap=0.4,
    retry_budget=0.2,
    breaker_threshold=5,
    breaker_cooldown=1.0,
    slots=8,
    queue=8,
)


class Frontend:
    """An HTTP server on 127.0.0.1:`port` (0: any free port) calling `backend_url` for each /checkout."""

    def __init__(self, settings: FrontendSettings, backend_url: str, port: int = 0) -> None:
        self.settings = settings
        target = urlsplit(backend_url)
        if target.scheme != "http" or not target.hostname:
            raise ValueError(f"expected an http:// backend URL, got {backend_url!r}")
        self._host = target.hostname
        self._port = target.port or 80
        self._path = target.path or "/work"

        self.admission = Admission(settings.slots, settings.queue)
        self.budget = RetryBudget(settings.retry_budget) if settings.retry_budget is not None else None
        self.breaker = (
            CircuitBreaker(settings.breaker_threshold, settings.breaker_cooldown)
            if settings.breaker_threshold is not None
            else None
        )
        self._inflight = 0
        self._inflight_peak = 0
        self._lock = threading.Lock()

        r = self.registry = CollectorRegistry()
        Gauge("refsys_build_info", "The frontend's build.", ["build"], registry=r).labels(settings.build).set(
            1
        )
        self.received = Counter("refsys_received", "Client requests received.", registry=r)
        self.requests = Counter("refsys_requests", "Answers to clients, by HTTP code.", ["code"], registry=r)
        self.backend_requests = Counter(
            "refsys_backend_requests",
            "Attempts toward the backend, retries included, by outcome (ok, error, timeout).",
            ["outcome"],
            registry=r,
        )
        self.rejected = Counter(
            "refsys_rejected",
            "Requests shed with 503 (queue_full, queue_timeout, circuit_open).",
            ["reason"],
            registry=r,
        )
        Gauge(
            "refsys_inflight_requests", "Client requests accepted and not yet answered.", registry=r
        ).set_function(lambda: self.inflight)
        Gauge(
            "refsys_inflight_peak", "The most client requests in flight at once so far.", registry=r
        ).set_function(lambda: self.inflight_peak)
        Gauge("refsys_queue_depth", "Client requests waiting for a slot.", registry=r).set_function(
            lambda: self.admission.waiting
        )
        Gauge(
            "refsys_circuit_open",
            "1 while the circuit breaker refuses calls (open or half-open).",
            registry=r,
        ).set_function(
            lambda: float(self.breaker is not None and self.breaker.state is not BreakerState.CLOSED)
        )
        self.backend_latency = Histogram(
            "refsys_backend_latency_seconds",
            "Time a client request spent on the backend: all attempts and backoff waits.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.duration = Histogram(
            "refsys_request_duration_seconds",
            "Time to answer a client request, queueing included.",
            ["code"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.attempts = Histogram(
            "refsys_backend_attempts_per_request",
            "Attempts toward the backend per client request that reached the backend stage.",
            buckets=(1, 2, 3, 4, 5, 6, 10),
            registry=r,
        )
        for outcome in ("ok", "error", "timeout"):
            self.backend_requests.labels(outcome)
        for reason in ("queue_full", "queue_timeout", "circuit_open"):
            self.rejected.labels(reason)

        self.server = LoopbackServer(port, _handler(self))

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def inflight(self) -> int:
        with self._lock:
            return self._inflight

    @property
    def inflight_peak(self) -> int:
        with self._lock:
            return self._inflight_peak

    def serve_forever(self) -> None:
        self.server.serve_forever(poll_interval=0.1)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def checkout(self) -> int:
        """Handle one client request; returns the HTTP code to answer with."""
        arrived = time.monotonic()
        self.received.inc()
        with self._lock:
            self._inflight += 1
            self._inflight_peak = max(self._inflight_peak, self._inflight)
        try:
            code = self._checkout(arrived)
        finally:
            with self._lock:
                self._inflight -= 1
        self.requests.labels(str(code)).inc()
        self.duration.labels(str(code)).observe(time.monotonic() - arrived)
        return code

    def _checkout(self, arrived: float) -> int:
        deadline_at = arrived + self.settings.deadline if self.settings.deadline is not None else None
        wait = None if deadline_at is None else max(0.0, deadline_at - time.monotonic())
        admitted = self.admission.enter(wait)
        if admitted is not Admitted.YES:
            self.rejected.labels(admitted.value).inc()
            return 503
        try:
            if self.budget is not None:
                self.budget.deposit()
            outcome = self._call_backend(deadline_at)
        finally:
            self.admission.leave()
        if outcome in ("circuit_open", "queue_timeout"):
            self.rejected.labels(outcome).inc()
            return 503
        return {"ok": 200, "timeout": 504, "error": 502}[outcome]

    def _call_backend(self, deadline_at: float | None) -> Outcome | Shed:
        """Attempts and retries as the settings say; the last attempt's outcome, or why there was
        no attempt at all (queueing used up the deadline, or the breaker refused)."""
        started = time.monotonic()
        outcome: Outcome | None = None
        made = 0
        for attempt in range(1, self.settings.attempts + 1):
            if attempt > 1 and not self._may_retry(attempt - 1, deadline_at):
                break
            timeout = self.settings.attempt_timeout
            if deadline_at is not None:
                timeout = min(timeout, deadline_at - time.monotonic())
            if timeout < MIN_ATTEMPT:
                if outcome is None:
                    return "queue_timeout"
                break
            # the breaker is asked last: a half-open "yes" is its one trial and must be recorded
            if self.breaker is not None and not self.breaker.allow():
                if outcome is None:
                    return "circuit_open"
                break
            outcome = self._attempt(timeout)
            made += 1
            self.backend_requests.labels(outcome).inc()
            if self.breaker is not None:
                self.breaker.record(outcome == "ok")
            if outcome == "ok":
                break
        assert outcome is not None  # the first attempt either ran or returned above
        self.backend_latency.observe(time.monotonic() - started)
        self.attempts.observe(made)
        return outcome

    def _may_retry(self, retry: int, deadline_at: float | None) -> bool:
        """Whether retry number `retry` may be made: its backoff wait (done here) leaves time for
        an attempt before the deadline, the breaker is not refusing, and the budget pays for it."""
        s = self.settings
        delay = (
            0.0 if s.backoff_base is None else backoff_delay(retry, base=s.backoff_base, cap=s.backoff_cap)
        )
        if deadline_at is not None and time.monotonic() + delay + MIN_ATTEMPT >= deadline_at:
            return False
        if self.breaker is not None and not self.breaker.would_allow():
            return False
        if self.budget is not None and not self.budget.try_withdraw():
            return False
        if delay:
            time.sleep(delay)
        return True

    def _attempt(self, timeout: float) -> Outcome:
        """One GET on a new connection (so each attempt is a new connection through the proxy).
        The timeout bounds connecting and each wait for bytes; the backend's answer is one small
        chunk, so it bounds the attempt."""
        conn = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        try:
            conn.request("GET", self._path, headers={"Connection": "close"})
            response = conn.getresponse()
            response.read()
            return "ok" if 200 <= response.status < 300 else "error"
        except TimeoutError:
            return "timeout"
        except (OSError, http.client.HTTPException):
            return "error"
        finally:
            conn.close()


def _handler(frontend: Frontend) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: load generators reuse their connections
        server_version = "refsys-frontend"

        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._answer(200, generate_latest(frontend.registry), CONTENT_TYPE_LATEST)
            elif self.path.split("?", 1)[0] == "/checkout":
                code = frontend.checkout()
                self._answer(code, b"ok\n" if code == 200 else f"{code}\n".encode(), "text/plain")
            else:
                self._answer(404, b"not found\n", "text/plain")

        def _answer(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backend", required=True, help="http://host:port[/path] to call (the proxy)")
    parser.add_argument("--build", choices=["naive", "resilient"], required=True)
    parser.add_argument("--settings", default="{}", help="JSON object of FrontendSettings overrides")
    args = parser.parse_args(argv)
    settings = FrontendSettings.for_build(args.build, **json.loads(args.settings))
    Frontend(settings, args.backend, args.port).serve_forever()


if __name__ == "__main__":
    main()
