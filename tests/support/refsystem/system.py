"""`ReferenceSystem`: the backend and one build of the frontend as child processes on loopback.

Child processes rather than threads: a naive frontend under a fault holds hundreds of threads
blocked on the backend, which must not live in (or outlive) the test process, and stopping a
process ends all of them at once. Ports are picked up front, so the backend's address is known
before anything starts and a Toxiproxy proxy can be pointed at it; the frontend is then started
with the proxy as its backend (`via`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families

from tests.support.net import free_port
from tests.support.refsystem.frontend import Build, FrontendSettings
from tests.support.waiting import wait_for

LOOPBACK = "127.0.0.1"
REPO = Path(__file__).resolve().parents[3]

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Scrape:
    """One read of a /metrics page, for tests that look without Prometheus."""

    samples: tuple[tuple[str, Labels, float], ...]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples called `name` (e.g. refsys_requests_total) whose labels include
        `labels`; 0 when there are none."""
        wanted = set(labels.items())
        return sum(v for n, ls, v in self.samples if n == name and wanted <= set(ls))

    def delta(self, earlier: Scrape, name: str, **labels: str) -> float:
        """How much a counter grew since `earlier`."""
        return self.value(name, **labels) - earlier.value(name, **labels)


def scrape(url: str, timeout: float = 5.0) -> Scrape:
    """Read `url` (a /metrics page) once."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        text = response.read().decode()
    return Scrape(
        tuple(
            (sample.name, tuple(sorted(sample.labels.items())), float(sample.value))
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        )
    )


class _Service:
    """One child process running `python -m tests.support.refsystem NAME ARGS`, logging to a file."""

    def __init__(self, name: str, port: int, args: list[str], log_path: Path) -> None:
        self.name = name
        self.url = f"http://{LOOPBACK}:{port}"
        self.log_path = log_path
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        }
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.support.refsystem", name, "--port", str(port), *args],
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                return True
            scrape(f"{self.url}/metrics", timeout=2)
            return True

        wait_for(ready, timeout=timeout, interval=0.1, message=f"the reference {self.name} on {self.url}")
        if self.process.poll() is not None:
            raise RuntimeError(
                f"the reference {self.name} exited with {self.process.returncode}:\n{self.log()}"
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


class ReferenceSystem:
    """Backend + frontend (`build`, or explicit `settings`) on free loopback ports.

    `via` is what the frontend calls instead of the backend itself: a Toxiproxy proxy's listen
    address ("127.0.0.1:PORT" or "http://127.0.0.1:PORT"), whose upstream is `backend_address`.
    Use as a context manager, or `start()`/`stop()`. Logs go to `log_dir` (pass pytest's
    tmp_path to keep them; without it they are removed by `stop`).
    """

    def __init__(
        self,
        build: Build = "naive",
        *,
        via: str | None = None,
        settings: FrontendSettings | None = None,
        service_time: float = 0.01,
        log_dir: Path | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        self.settings = settings or FrontendSettings.for_build(build)
        self.service_time = service_time
        self.backend_port = free_port()
        self.frontend_port = free_port()
        # without a log_dir, logs live in a temporary directory removed by stop()
        self._tmp = tempfile.TemporaryDirectory(prefix="refsys-") if log_dir is None else None
        self.log_dir = log_dir or Path(self._tmp.name if self._tmp else "")
        self.start_timeout = start_timeout
        self.via = via
        self._services: list[_Service] = []

    @property
    def build(self) -> Build:
        return self.settings.build

    @property
    def backend_address(self) -> str:
        """host:port of the backend itself: the upstream of the proxy."""
        return f"{LOOPBACK}:{self.backend_port}"

    @property
    def backend_url(self) -> str:
        return f"http://{self.backend_address}"

    @property
    def frontend_url(self) -> str:
        return f"http://{LOOPBACK}:{self.frontend_port}"

    @property
    def checkout_url(self) -> str:
        return f"{self.frontend_url}/checkout"

    @property
    def called_url(self) -> str:
        """The URL the frontend calls: `via` when given, else the backend directly."""
        if self.via is None:
            return f"{self.backend_url}/work"
        url = self.via if "://" in self.via else f"http://{self.via}"
        return url if urlsplit(url).path not in ("", "/") else f"{url.rstrip('/')}/work"

    def start(self) -> ReferenceSystem:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            backend = self._start("backend", self.backend_port, ["--service-time", str(self.service_time)])
            backend.wait_ready(self.start_timeout)
            settings = {k: v for k, v in asdict(self.settings).items() if k != "build"}
            frontend = self._start(
                "frontend",
                self.frontend_port,
                ["--backend", self.called_url, "--build", self.build, "--settings", json.dumps(settings)],
            )
            frontend.wait_ready(self.start_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, name: str, port: int, args: list[str]) -> _Service:
        service = _Service(name, port, args, self.log_dir / f"{name}-{self.build}-{port}.log")
        self._services.append(service)
        return service

    def stop(self) -> None:
        """Frontend first (its in-flight calls fail, which no one is waiting for), then the backend."""
        while self._services:
            self._services.pop().stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def frontend_metrics(self) -> Scrape:
        return scrape(f"{self.frontend_url}/metrics")

    def backend_metrics(self) -> Scrape:
        return scrape(f"{self.backend_url}/metrics")

    def logs(self) -> dict[str, str]:
        """The tail of each service's log, for failure messages."""
        return {s.name: s.log() for s in self._services}

    def __enter__(self) -> ReferenceSystem:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
