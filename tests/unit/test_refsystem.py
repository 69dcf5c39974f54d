"""The reference system's parts without Toxiproxy or a cluster: the resilient build's policies as
pure logic, both frontend builds against a backend that refuses connections, and the child
processes (services and locust) started and stopped as the integration tests will."""

from __future__ import annotations

import contextlib
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from tests.support.net import free_port
from tests.support.refsystem import NAIVE, RESILIENT, FrontendSettings, ReferenceSystem, run_load, scrape
from tests.support.refsystem.backend import Backend
from tests.support.refsystem.frontend import Frontend
from tests.support.refsystem.policy import (
    Admission,
    Admitted,
    BreakerState,
    CircuitBreaker,
    RetryBudget,
    backoff_delay,
)


def test_backoff_doubles_up_to_the_cap_with_full_jitter() -> None:
    top = 1 - 1e-9
    assert [round(backoff_delay(n, base=0.05, cap=0.4, rand=lambda: top), 3) for n in range(1, 6)] == [
        0.05,
        0.1,
        0.2,
        0.4,
        0.4,
    ]
    assert backoff_delay(3, base=0.05, cap=0.4, rand=lambda: 0.0) == 0.0
    with pytest.raises(ValueError):
        backoff_delay(0, base=0.05, cap=0.4)


def test_retry_budget_allows_a_burst_then_a_share_of_requests() -> None:
    budget = RetryBudget(0.2, initial=2, max_tokens=3)
    assert [budget.try_withdraw() for _ in range(3)] == [True, True, False]
    for _ in range(4):
        budget.deposit()
    assert not budget.try_withdraw()  # 0.8 tokens
    budget.deposit()
    assert budget.try_withdraw()  # 1.0: five requests paid for one retry
    for _ in range(100):
        budget.deposit()
    assert budget.tokens == 3  # capped: a long calm does not bank a storm


def test_circuit_breaker_opens_cools_down_and_lets_one_trial_through() -> None:
    now = [0.0]
    breaker = CircuitBreaker(threshold=3, cooldown=1.0, clock=lambda: now[0])
    for _ in range(2):
        assert breaker.allow()
        breaker.record(False)
    breaker.record(True)  # a success resets the count
    for _ in range(3):
        assert breaker.allow()
        breaker.record(False)
    states = [breaker.state]
    assert not breaker.allow()
    now[0] = 1.0
    assert breaker.would_allow()
    assert breaker.allow()  # the trial
    states.append(breaker.state)
    assert not breaker.allow()  # only one at a time
    breaker.record(False)  # the trial failed: open for another cool-down
    states.append(breaker.state)
    assert not breaker.would_allow()
    assert not breaker.allow()
    now[0] = 2.0
    assert breaker.allow()
    breaker.record(True)
    states.append(breaker.state)
    assert breaker.allow()
    assert states == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.OPEN, BreakerState.CLOSED]


def test_admission_queues_up_to_its_bound_and_sheds_beyond() -> None:
    admission = Admission(slots=1, queue=1)
    assert admission.enter() is Admitted.YES
    assert admission.enter(timeout=0.05) is Admitted.QUEUE_TIMEOUT
    results: list[Admitted] = []
    waiter = threading.Thread(target=lambda: results.append(admission.enter(timeout=5)))
    waiter.start()
    while admission.waiting == 0:
        threading.Event().wait(0.01)
    assert admission.enter() is Admitted.QUEUE_FULL  # the one queue place is taken
    admission.leave()
    waiter.join(timeout=5)
    assert results == [Admitted.YES]
    assert admission.active == 1
    unbounded = Admission(slots=1, queue=None)
    assert unbounded.enter() is Admitted.YES


@contextlib.contextmanager
def serving(server: Backend | Frontend) -> Iterator[None]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.close()


@pytest.fixture
def backend() -> Iterator[Backend]:
    server = Backend(service_time=0.001)
    with serving(server):
        yield server


@contextlib.contextmanager
def frontend_of(settings: FrontendSettings, backend_url: str) -> Iterator[Frontend]:
    server = Frontend(settings, backend_url)
    with serving(server):
        yield server


def test_both_builds_answer_through_a_healthy_backend(backend: Backend) -> None:
    for settings in (NAIVE, RESILIENT):
        with frontend_of(settings, f"http://{backend.address}/work") as frontend:
            with urllib.request.urlopen(f"{frontend.url}/checkout", timeout=5) as response:
                assert response.status == 200
            metrics = scrape(f"{frontend.url}/metrics")
            assert metrics.value("refsys_requests_total", code="200") == 1
            assert metrics.value("refsys_backend_requests_total", outcome="ok") == 1
            assert metrics.value("refsys_build_info", build=settings.build) == 1
    assert scrape(f"http://{backend.address}/metrics").value("refsys_backend_served_total") == 2


def test_naive_build_retries_a_refusing_backend_at_once_five_times() -> None:
    with frontend_of(NAIVE, f"http://127.0.0.1:{free_port()}/work") as frontend:
        assert [frontend.checkout() for _ in range(4)] == [502] * 4
        metrics = scrape(f"{frontend.url}/metrics")
        assert metrics.value("refsys_backend_requests_total", outcome="error") == 20
        assert metrics.value("refsys_backend_attempts_per_request_sum") == 20


def test_resilient_build_spends_its_budget_then_opens_its_breaker() -> None:
    settings = FrontendSettings.for_build("resilient", breaker_cooldown=60.0)
    with frontend_of(settings, f"http://127.0.0.1:{free_port()}/work") as frontend:
        codes = [frontend.checkout() for _ in range(10)]
        metrics = scrape(f"{frontend.url}/metrics")
    # 5 consecutive failed attempts open the breaker: 3 for the first request (2 retries, paid
    # from the budget's initial tokens), 2 for the second, whose last retry the open breaker
    # stops before it is paid for; from then on the breaker answers 503 without calling
    assert codes == [502, 502] + [503] * 8
    assert metrics.value("refsys_backend_requests_total") == 5
    # every request that got a slot deposited 0.2, three retries were paid
    assert frontend.budget is not None and frontend.budget.tokens == pytest.approx(5 + 10 * 0.2 - 3)
    assert metrics.value("refsys_rejected_total", reason="circuit_open") == codes.count(503)
    assert metrics.value("refsys_circuit_open") == 1


def test_resilient_build_sheds_beyond_its_queue() -> None:
    settings = FrontendSettings.for_build("resilient", slots=1, queue=0)
    frontend = Frontend(settings, f"http://127.0.0.1:{free_port()}/work")
    try:
        assert frontend.admission.enter() is Admitted.YES  # the only slot, held
        assert frontend.checkout() == 503
        assert frontend.registry.get_sample_value("refsys_rejected_total", {"reason": "queue_full"}) == 1
    finally:
        frontend.server.server_close()


def test_reference_system_processes_and_locust_load() -> None:
    with ReferenceSystem("resilient") as system:
        summary = run_load(system.frontend_url, rate=10, users=5, seconds=2)
        frontend = system.frontend_metrics()
        served = system.backend_metrics().value("refsys_backend_served_total")
    assert summary.requests >= 15, summary
    assert summary.codes == {"200": summary.requests}
    assert frontend.value("refsys_requests_total", code="200") == summary.requests
    assert served == summary.requests


def test_load_refuses_anything_but_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        run_load("http://192.0.2.1:8080", rate=1, users=1, seconds=1)
    with pytest.raises(urllib.error.URLError):
        scrape(f"http://127.0.0.1:{free_port()}/metrics", timeout=1)
