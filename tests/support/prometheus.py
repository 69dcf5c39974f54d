"""A real Prometheus on loopback, and a metrics endpoint whose values a test sets.

Steady-state checks, gates and analyses query Prometheus; the tests run the pinned build
(hack/tools.versions, built into the tool cache when missing) rather than a fake, so PromQL,
staleness and scrape timing are Prometheus's own. Nothing here needs the Kubernetes cluster.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

import yaml
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.exposition import MetricsHandler

from tests.support.net import free_port
from tests.support.tools import built
from tests.support.waiting import wait_for

Labels = dict[str, str]


def promtool(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the pinned promtool; the caller judges the exit code."""
    binary = built("prometheus") / "promtool"
    return subprocess.run([str(binary), *args], text=True, capture_output=True, timeout=timeout, check=False)


def check_rules(text: str) -> subprocess.CompletedProcess[str]:
    """`promtool check rules` on a rule file with this YAML content (exit 0 when it is valid)."""
    with tempfile.TemporaryDirectory(prefix="aftershock-rules-") as folder:
        path = Path(folder) / "rules.yml"
        path.write_text(text)
        return promtool("check", "rules", str(path))


class MetricsService:
    """/metrics on 127.0.0.1 from a registry of its own (never the process-wide one, which the
    operator code under test may share), with gauges a test sets to drive queries across a bound.

    `errors_per_second` exists from the start (value 0); `set` makes any other gauge on first use.
    """

    def __init__(self, errors_metric: str = "errors_per_second") -> None:
        self.registry = CollectorRegistry()
        self.errors_per_second = Gauge(
            errors_metric, "Errors per second, as a test sets it.", registry=self.registry
        )
        self._gauges: dict[str, Gauge] = {errors_metric: self.errors_per_second}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def set(self, name: str, value: float, **labels: str) -> None:
        """Set gauge `name` (with these labels) to `value`; a gauge keeps the label names of its
        first use (prometheus-client refuses others)."""
        with self._lock:
            gauge = self._gauges.get(name)
            if gauge is None:
                gauge = Gauge(name, f"{name}, as a test sets it.", sorted(labels), registry=self.registry)
                self._gauges[name] = gauge
        (gauge.labels(**labels) if labels else gauge).set(value)

    def start(self) -> MetricsService:
        if self._server is None:
            self._server = ThreadingHTTPServer(("127.0.0.1", 0), MetricsHandler.factory(self.registry))
            self._server.daemon_threads = True
            self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("MetricsService is not started")
        port: int = self._server.server_address[1]
        return port

    @property
    def target(self) -> str:
        """host:port, as a Prometheus static_config names it."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.target}/metrics"

    def __enter__(self) -> MetricsService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class PrometheusServer:
    """The pinned Prometheus as a local process scraping `targets` every second.

    `start` (or entering the context) returns once Prometheus is ready and the first scrape of
    every target succeeded (`up` is 1), so a test's first query already sees its metrics.
    `rules` is the YAML of a rule file (recording or alerting rules), checked with promtool first.
    The data and the log live in `workdir` (a temporary directory, removed at `stop`, unless given).
    """

    def __init__(
        self,
        targets: Sequence[str],
        *,
        job: str = "test",
        rules: str | None = None,
        workdir: Path | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        self.targets = list(targets)
        self.job = job
        self.rules = rules
        self.startup_timeout = startup_timeout
        self._own_workdir = workdir is None
        self.workdir = (
            workdir if workdir is not None else Path(tempfile.mkdtemp(prefix="aftershock-prometheus-"))
        )
        self.log_path = self.workdir / "prometheus.log"
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._final_log: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _config(self) -> dict[str, object]:
        config: dict[str, object] = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": self.job, "static_configs": [{"targets": self.targets}]}],
        }
        if self.rules is not None:
            config["rule_files"] = [str(self.workdir / "rules.yml")]
        return config

    def start(self) -> PrometheusServer:
        if self._process is not None:
            return self
        binary = built("prometheus") / "prometheus"
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.rules is not None:
            checked = check_rules(self.rules)
            if checked.returncode != 0:
                raise ValueError(f"promtool check rules refused the rules:\n{checked.stdout}{checked.stderr}")
            (self.workdir / "rules.yml").write_text(self.rules)
        config = self.workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump(self._config(), sort_keys=False))
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    str(binary),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=info",
                    # the scrape manager takes up targets every 5 s by default (a hidden flag):
                    # the first scrape would come seconds after /-/ready for nothing
                    "--scrape.discovery-reload-interval=200ms",
                ],
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            self._wait_started()
        except BaseException:
            self.stop()
            raise
        return self

    def _exited(self) -> bool:
        return self._process is None or self._process.poll() is not None

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:  # refused while starting, 503 until the TSDB is open
            return False

    def _scraped(self) -> bool:
        up = {labels.get("instance"): value for labels, value in self.series(f'up{{job="{self.job}"}}')}
        return all(up.get(target) == 1.0 for target in self.targets)

    def _wait_started(self) -> None:
        what = (
            f"Prometheus on {self.url} ready and its first scrape of {', '.join(self.targets) or 'nothing'}"
        )
        try:
            wait_for(
                lambda: self._exited() or (self._ready() and self._scraped()),
                timeout=self.startup_timeout,
                message=what,
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nlast log lines:\n{self.tail()}") from exc
        if self._exited():
            code = self._process.returncode if self._process else None
            raise AssertionError(f"Prometheus exited with {code}; last log lines:\n{self.tail()}")

    def _api(self, path: str, **params: str) -> dict[str, object]:
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                body = json.load(resp)
        except urllib.error.HTTPError as exc:  # a bad query is a 400 with the reason in the body
            raise ValueError(f"GET {url}: {exc.code} {exc.read().decode(errors='replace')}") from exc
        if body.get("status") != "success":
            raise ValueError(f"GET {url}: {body}")
        data: dict[str, object] = body["data"]
        return data

    def series(self, expr: str) -> list[tuple[Labels, float]]:
        """An instant query: each sample's labels and value (a scalar result has no labels)."""
        data = self._api("query", query=expr)
        result = data["result"]
        if data["resultType"] == "scalar":
            assert isinstance(result, list)
            return [({}, float(result[1]))]
        assert data["resultType"] == "vector" and isinstance(result, list), data
        return [(dict(sample["metric"]), float(sample["value"][1])) for sample in result]

    def query(self, expr: str) -> float | None:
        """An instant query's first sample's value; None when it selects nothing (as a comparison
        like `errors > 5` does while the bound holds)."""
        samples = self.series(expr)
        return samples[0][1] if samples else None

    def tail(self, lines: int = 40) -> str:
        """The last lines of Prometheus's log, for a failing test's report."""
        if self._final_log is not None:
            text = self._final_log
        else:
            text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._own_workdir and self.workdir.exists():
            # the log outlives the directory, for tail() after the fact
            self._final_log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is not None:  # pytest shows a failing test's output: make Prometheus's side part of it
            print(f"Prometheus ({self.url}) log, last lines:\n{self.tail()}")
        self.stop()
