"""The retry wrapper every Kubernetes request goes through (kube.call_with_backoff), driven by
plain callables that fail the way the client fails, on a fake clock: no API server involved."""

from __future__ import annotations

import http.client
import http.server
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import urllib3.exceptions
from kubernetes import client
from kubernetes.client.rest import ApiException

from aftershock.core.backoff import Backoff
from aftershock.kube import Kube, RetryPolicy, Timeouts, Transient, call_with_backoff, transient
from aftershock.metrics import API_RETRIES

POLICY = RetryPolicy(
    budget=30, connect_timeout=5, read_timeout=15, backoff=Backoff(base=0.1, factor=2, cap=5, jitter=0.5)
)


class Clock:
    """Time passes only when the wrapper sleeps or an attempt says it took a while."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Flaky:
    """Raises the given errors in turn, then returns "ok"; records the timeouts it was given."""

    def __init__(self, clock: Clock, *errors: BaseException, takes: float = 0.0) -> None:
        self.clock = clock
        self.errors = list(errors)
        self.takes = takes
        self.timeouts: list[Timeouts] = []

    def __call__(self, timeouts: Timeouts) -> str:
        self.timeouts.append(timeouts)
        self.clock.now += self.takes
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def api_error(status: int, retry_after: str | None = None) -> ApiException:
    exc = ApiException(status=status, reason="test")
    if retry_after is not None:
        exc.headers = {"Retry-After": retry_after}
    return exc


def run(
    attempt: Callable[[Timeouts], str],
    clock: Clock,
    *,
    policy: RetryPolicy = POLICY,
    idempotent: bool = True,
    draw: float = 1.0,
) -> str:
    return call_with_backoff(
        attempt, policy, idempotent=idempotent, sleep=clock.sleep, clock=clock, draw=lambda: draw
    )


def flat(timeouts: list[Timeouts]) -> list[float]:
    return [seconds for pair in timeouts for seconds in pair]


def retries(reason: str) -> float:
    value = API_RETRIES.labels(reason)._value.get()
    return float(value)


def test_503_twice_then_success_returns_the_result_after_growing_delays() -> None:
    clock = Clock()
    attempt = Flaky(clock, api_error(503), api_error(503))
    before = retries("503")
    assert run(attempt, clock) == "ok"
    assert len(attempt.timeouts) == 3
    assert clock.sleeps == pytest.approx([0.1, 0.2])
    assert retries("503") == before + 2


def test_jitter_draws_each_delay_from_its_band() -> None:
    clock = Clock()
    run(Flaky(clock, api_error(500), api_error(502), api_error(504)), clock, draw=0.0)
    assert clock.sleeps == pytest.approx([0.05, 0.1, 0.2])


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 410, 422])
def test_other_4xx_are_answers_and_never_retried(status: int) -> None:
    clock = Clock()
    attempt = Flaky(clock, api_error(status))
    with pytest.raises(ApiException) as raised:
        run(attempt, clock)
    assert raised.value.status == status
    assert len(attempt.timeouts) == 1
    assert clock.sleeps == []


@pytest.mark.parametrize(
    "error", [KeyError("kind"), ApiException(status=0, reason="Cannot prepare a request")]
)
def test_programming_errors_are_never_retried(error: BaseException) -> None:
    clock = Clock()
    attempt = Flaky(clock, error)
    with pytest.raises(type(error)):
        run(attempt, clock)
    assert len(attempt.timeouts) == 1


def test_429_waits_at_least_retry_after() -> None:
    clock = Clock()
    attempt = Flaky(clock, api_error(429, retry_after="2"), api_error(429))
    assert run(attempt, clock) == "ok"
    assert clock.sleeps == pytest.approx([2.1, 0.2])  # Retry-After plus own delay; without: own


def test_retry_after_beyond_the_budget_gives_up_at_once() -> None:
    clock = Clock()
    attempt = Flaky(clock, api_error(429, retry_after="60"))
    with pytest.raises(ApiException) as raised:
        run(attempt, clock)
    assert raised.value.status == 429
    assert clock.sleeps == []


def test_budget_spent_the_last_error_propagates() -> None:
    clock = Clock()
    errors = [api_error(503) for _ in range(100)]
    errors[-1] = api_error(504)
    attempt = Flaky(clock, *errors)
    with pytest.raises(ApiException) as raised:
        run(attempt, clock)
    assert raised.value.status == 503  # the last one raised before the budget ran out
    assert clock.now < POLICY.budget
    assert sum(clock.sleeps) == pytest.approx(clock.now)
    assert max(clock.sleeps) == pytest.approx(5)  # the cap
    assert len(attempt.timeouts) == len(clock.sleeps) + 1


class Blackhole(Flaky):
    """Every attempt hangs until its read timeout fires."""

    def __call__(self, timeouts: Timeouts) -> str:
        self.timeouts.append(timeouts)
        self.clock.now += timeouts[1]
        raise urllib3.exceptions.ReadTimeoutError(None, "/api", "read timed out")  # type: ignore[arg-type]


def test_a_blackholed_server_ends_in_an_error_within_the_budget() -> None:
    """Timeouts shrink to what is left of the budget, so the last attempt ends with the budget."""
    clock = Clock()
    policy = RetryPolicy(budget=30, connect_timeout=5, read_timeout=10)
    attempt = Blackhole(clock)
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        run(attempt, clock, policy=policy)
    assert flat(attempt.timeouts) == pytest.approx([5, 10, 5, 10, 5, 9.7])
    assert clock.now == pytest.approx(30)


def test_a_blackhole_that_lifts_within_the_budget_ends_in_success() -> None:
    clock = Clock()
    timeout = urllib3.exceptions.ReadTimeoutError(None, "/api", "read timed out")  # type: ignore[arg-type]
    attempt = Flaky(clock, timeout, timeout, takes=10)
    assert run(attempt, clock) == "ok"
    assert clock.now < POLICY.budget + 10


def test_timeouts_are_cut_to_what_is_left_of_the_budget_but_not_below_the_minimum() -> None:
    clock = Clock()
    attempt = Flaky(clock, api_error(503), api_error(503), takes=14)
    run(attempt, clock)
    # fails at 14, waits 0.1; fails at 28.1, waits 0.2; 1.7 s are left
    assert flat(attempt.timeouts) == pytest.approx([5, 15, 5, 15, 1.7, 1.7])
    clock = Clock()
    attempt = Flaky(clock, api_error(503), takes=29.5)
    run(attempt, clock)
    assert attempt.timeouts[1] == (POLICY.min_timeout, POLICY.min_timeout)


@pytest.mark.parametrize(
    ("error", "reason", "unsent"),
    [
        (api_error(429), "429", True),
        (api_error(500), "500", False),
        (api_error(503), "503", False),
        (
            ApiException(status=0, reason="SSLError\nEOF occurred in violation of protocol"),
            "connection",
            False,
        ),
        (urllib3.exceptions.NewConnectionError(None, "refused"), "connection", True),  # type: ignore[arg-type]
        (urllib3.exceptions.ConnectTimeoutError("connect timed out"), "timeout", True),
        (urllib3.exceptions.ReadTimeoutError(None, "/", "read timed out"), "timeout", False),  # type: ignore[arg-type]
        (
            urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError()),
            "connection",
            False,
        ),
        (ConnectionRefusedError(), "connection", True),
        (ConnectionResetError(), "connection", False),
        (TimeoutError(), "timeout", False),
        (http.client.RemoteDisconnected("closed"), "connection", False),
        (
            urllib3.exceptions.MaxRetryError(None, "/", urllib3.exceptions.NewConnectionError(None, "x")),  # type: ignore[arg-type]
            "connection",
            True,
        ),
        (urllib3.exceptions.MaxRetryError(None, "/", None), "connection", False),  # type: ignore[arg-type]
    ],
)
def test_transient_errors_are_classified(error: BaseException, reason: str, unsent: bool) -> None:
    found = transient(error)
    assert found is not None
    assert (found.reason, found.unsent) == (reason, unsent)


def test_retry_after_header_is_read_case_insensitively() -> None:
    exc = ApiException(status=429)
    exc.headers = {"retry-after": "1"}
    assert transient(exc) == Transient("429", unsent=True, retry_after="1")


@pytest.mark.parametrize(
    "error",
    [
        api_error(500),
        api_error(503),
        urllib3.exceptions.ReadTimeoutError(None, "/", "read timed out"),  # type: ignore[arg-type]
        ConnectionResetError(),
    ],
)
def test_a_non_idempotent_request_is_not_repeated_when_it_may_have_arrived(error: BaseException) -> None:
    clock = Clock()
    attempt = Flaky(clock, error)
    with pytest.raises(type(error)):
        run(attempt, clock, idempotent=False)
    assert len(attempt.timeouts) == 1


@pytest.mark.parametrize(
    "error",
    [api_error(429), ConnectionRefusedError(), urllib3.exceptions.NewConnectionError(None, "refused")],  # type: ignore[arg-type]
)
def test_a_non_idempotent_request_is_repeated_when_it_surely_never_arrived(error: BaseException) -> None:
    clock = Clock()
    attempt = Flaky(clock, error)
    assert run(attempt, clock, idempotent=False) == "ok"
    assert len(attempt.timeouts) == 2


def test_kube_passes_timeouts_to_every_request_and_retries_it() -> None:
    """Kube._call, the one path of every request, with a stand-in for a client method."""
    seen: list[dict[str, object]] = []

    def list_namespaced_thing(namespace: str, **kwargs: object) -> str:
        seen.append({"namespace": namespace, **kwargs})
        if len(seen) == 1:
            raise api_error(503)
        return "listed"

    fast = RetryPolicy(budget=5, connect_timeout=2, read_timeout=3, backoff=Backoff(base=0.01, cap=0.01))
    kube = Kube(client.ApiClient(), retry=fast)
    assert kube._call(list_namespaced_thing, "shop", label_selector="app=x") == "listed"
    assert seen == [
        {"namespace": "shop", "label_selector": "app=x", "_request_timeout": (2, 3)},
        {"namespace": "shop", "label_selector": "app=x", "_request_timeout": (2, 3)},
    ]
    short = kube.with_retry(RetryPolicy(budget=1, connect_timeout=1, read_timeout=1))
    assert short.retry.budget == 1 and kube.retry is fast and short.custom is kube.custom


class _SilentUntil(http.server.BaseHTTPRequestHandler):
    """Answers nothing until the server's `lift` time (a blackholed API server), then an empty
    PodList, as the API server would."""

    server: _Loopback

    def do_GET(self) -> None:
        self.server.requests += 1
        while time.monotonic() < self.server.lift:
            if self.server.closing.wait(0.05):
                return
        body = b'{"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": []}'
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client timed out and left; it will ask again

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Loopback(http.server.ThreadingHTTPServer):
    daemon_threads = True
    lift = float("inf")
    requests = 0
    closing = threading.Event()


@pytest.fixture
def loopback() -> Iterator[_Loopback]:
    server = _Loopback(("127.0.0.1", 0), _SilentUntil)
    server.closing = threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.closing.set()
    server.shutdown()
    server.server_close()


def _kube_at(server: _Loopback, policy: RetryPolicy) -> Kube:
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{server.server_address[1]}"
    configuration.retries = False  # as load_client() sets it
    return Kube(client.ApiClient(configuration), retry=policy)


BLACKHOLE = RetryPolicy(budget=2.5, connect_timeout=1, read_timeout=0.5, backoff=Backoff(base=0.05, cap=0.2))


def test_a_real_blackholed_server_ends_the_call_with_its_error_within_the_budget(loopback: _Loopback) -> None:
    kube = _kube_at(loopback, BLACKHOLE)
    started = time.monotonic()
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        kube.list_pods("shop", "app=checkout")
    took = time.monotonic() - started
    assert BLACKHOLE.budget - 0.5 <= took <= BLACKHOLE.budget + 3  # generous: the point is no hang
    assert loopback.requests >= 3  # it kept trying, with backoff, until the budget was spent


def test_a_real_blackhole_that_lifts_within_the_budget_ends_in_success(loopback: _Loopback) -> None:
    kube = _kube_at(loopback, BLACKHOLE)
    loopback.lift = time.monotonic() + 1.2
    assert kube.list_pods("shop", "app=checkout") == []
    assert loopback.requests >= 2
