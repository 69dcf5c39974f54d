"""A steady load of GET /checkout on the frontend: locust, as a library, in a child process.

Locust runs on gevent and `import locust` monkey-patches the whole process (threading, socket,
ssl, time.sleep). Imported into a pytest process that already runs threads it deadlocks on the
import lock (tried: locust 2.47 / gevent 26.9 hang in `import locust` once a second thread is
running), and even when it does not, it would turn the tests' threads and asyncio loops into
greenlets. So this module is plain subprocess code that never imports locust; the child,
locust_child.py, builds a `locust.env.Environment` with a `FastHttpUser`, runs it headless for a
bounded time with a bounded user count, and prints a JSON summary.

The load is closed-loop, as locust's is: `users` users each send one request every
`users / rate` seconds, each at its own random phase (so the rate is steady, not a burst per
period), so the offered rate holds while a request takes less than `users / rate` seconds; beyond
that at most `users` requests are outstanding. Pick `users` well above `rate x normal latency` so
a slow frontend shows its queue growing before the generator caps it. Targets are loopback only;
users, rate and time are bounded.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[3]
CHILD = Path(__file__).with_name("locust_child.py")  # run by path: it must not import this package
MAX_USERS = 1000
MAX_SECONDS = 900.0
MAX_RATE = 2000.0


@dataclass(frozen=True)
class LoadSummary:
    """What the load generator saw: answers by HTTP code ("0": no answer, e.g. a reset) and
    response times in milliseconds. Requests still outstanding when it stopped are not counted."""

    requests: int
    failures: int  # anything but a 2xx answer
    codes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    rps: float = 0.0
    median_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoadSummary:
        return cls(**{k: v for k, v in data.items() if k != "event"})


class LoadError(RuntimeError):
    """The load generator failed to start or to finish (the message carries its log)."""


class LoadRun:
    """A running load generator (a child process). `stop` ends it early, `wait` lets it run its
    course; both return the summary (and keep it in `summary`)."""

    def __init__(self, process: subprocess.Popen[str], log_path: Path, *, own_log: bool = False) -> None:
        self.process = process
        self.log_path = log_path
        self.own_log = own_log  # a temporary log, removed once the run is over
        self.summary: LoadSummary | None = None

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def wait(self, timeout: float | None = None) -> LoadSummary:
        """Until the load's `seconds` are over (plus `timeout` to spare; None: no limit)."""
        return self._finish(timeout)

    def stop(self, timeout: float = 30.0) -> LoadSummary:
        """Stop the users now (in-flight requests are abandoned) and collect the summary."""
        if self.summary is None and self.running:
            self.process.send_signal(signal.SIGTERM)
        return self._finish(timeout)

    def _finish(self, timeout: float | None) -> LoadSummary:
        if self.summary is not None:
            return self.summary
        try:
            return self._collect(timeout)
        finally:
            if self.own_log and self.process.returncode is not None:
                self.log_path.unlink(missing_ok=True)

    def _collect(self, timeout: float | None) -> LoadSummary:
        try:
            out, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate(timeout=10)
            raise LoadError(f"the load generator did not finish in time; log:\n{self._log()}") from None
        lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        summaries = [line for line in lines if line.get("event") == "summary"]
        if self.process.returncode != 0 or not summaries:
            raise LoadError(f"the load generator exited with {self.process.returncode}; log:\n{self._log()}")
        self.summary = LoadSummary.from_json(summaries[-1])
        return self.summary

    def _log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return "(no log)"


def _check_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ValueError(f"load is only ever sent to loopback addresses, not {url!r}")


def start_load(
    url: str,
    *,
    rate: float = 20.0,
    users: int = 100,
    seconds: float = 60.0,
    path: str = "/checkout",
    timeout: float = 60.0,
    log_path: Path | None = None,
    start_timeout: float = 30.0,
) -> LoadRun:
    """Start `users` locust users sending `rate` requests/s in all to `url` + `path` for at most
    `seconds`; returns once they are being spawned. Each request gives up after `timeout` s."""
    _check_loopback(url)
    if not 0 < users <= MAX_USERS or not 0 < rate <= MAX_RATE or not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"bounded load only: users {users}, rate {rate}, seconds {seconds}")
    own_log = log_path is None
    if log_path is None:
        fd, name = tempfile.mkstemp(prefix="refsys-load-", suffix=".log")
        os.close(fd)
        log_path = Path(name)
    args = [
        *("--url", url, "--path", path, "--rate", str(rate), "--users", str(users)),
        *("--seconds", str(seconds), "--timeout", str(timeout)),
    ]
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, str(CHILD), *args],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
        )
    run = LoadRun(process, log_path, own_log=own_log)
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        ready = selector.select(timeout=start_timeout)
    line = process.stdout.readline() if ready else ""
    if not line.startswith('{"event": "started"'):
        process.kill()
        process.communicate(timeout=10)
        tail = run._log()
        if own_log:
            log_path.unlink(missing_ok=True)
        raise LoadError(f"the load generator did not start (got {line!r}); log:\n{tail}")
    return run


@contextlib.contextmanager
def steady_load(
    url: str,
    *,
    rate: float = 20.0,
    users: int = 100,
    seconds: float = 60.0,
    path: str = "/checkout",
    timeout: float = 60.0,
    log_path: Path | None = None,
) -> Iterator[LoadRun]:
    """`start_load` for the length of a block (at most `seconds`); stopped when it ends (also on
    failure). After the block, `run.summary` holds what the generator saw."""
    run = start_load(
        url, rate=rate, users=users, seconds=seconds, path=path, timeout=timeout, log_path=log_path
    )
    try:
        yield run
    finally:
        if run.summary is None:
            run.stop()


def run_load(
    url: str,
    *,
    rate: float = 20.0,
    users: int = 100,
    seconds: float = 10.0,
    path: str = "/checkout",
    timeout: float = 60.0,
    log_path: Path | None = None,
) -> LoadSummary:
    """`start_load` and wait for its `seconds` to pass."""
    run = start_load(
        url, rate=rate, users=users, seconds=seconds, path=path, timeout=timeout, log_path=log_path
    )
    return run.wait(timeout=seconds + 30)
