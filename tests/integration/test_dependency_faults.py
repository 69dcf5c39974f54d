"""A slow, flaky dependency through a real Toxiproxy, and how two clients degrade under it.

The reference system (tests/support/refsystem) runs a backend and a frontend that calls it through
a Toxiproxy proxy, in two builds: naive (no timeouts, immediate retries, an unbounded queue) and
resilient (timeouts and a deadline, backoff with jitter, a retry budget, a circuit breaker, a
bounded queue that sheds). Locust (as a library, in its own process) keeps a steady load on the
frontend; the pinned Prometheus scrapes it. The same experiment — latency and connection resets on
the proxy, with spec.analysis — must find the naive build's retry storm, missing backpressure and
missing timeouts, and nothing wrong with the resilient build. The cluster holds a stand-in
Deployment for the frontend: the run's target; the fault itself is the proxy's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.support.chaos import Chaos, experiment
from tests.support.net import free_port
from tests.support.operator import OperatorProcess
from tests.support.prometheus import PrometheusServer
from tests.support.refsystem import FrontendSettings, ReferenceSystem, steady_load
from tests.support.toxiproxy import Toxiproxy, toxiproxy
from tests.support.waiting import wait_for
from tests.support.workloads import deployment, ready_pods

Body = dict[str, Any]
BUILDS = ("naive", "resilient")


class Stack:
    def __init__(
        self, systems: dict[str, ReferenceSystem], proxies: dict[str, Toxiproxy], prom: PrometheusServer
    ):
        self.systems, self.proxies, self.prom = systems, proxies, prom

    def instance(self, build: str) -> str:
        return self.systems[build].frontend_url.removeprefix("http://")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Each build behind its own proxy (so one run's toxics touch one build), both scraped."""
    logs = tmp_path_factory.mktemp("refsystem")
    systems: dict[str, ReferenceSystem] = {}
    proxies: dict[str, Toxiproxy] = {}
    with contextlib.ExitStack() as stack:
        for build in BUILDS:
            listen = free_port()
            # naive: a pool of 64 backend calls (its default 16 would cap the attempt rate itself)
            settings = FrontendSettings.for_build(build, slots=64) if build == "naive" else None  # type: ignore[arg-type]
            system = ReferenceSystem(
                build, via=f"127.0.0.1:{listen}", settings=settings, log_dir=logs / build
            )  # type: ignore[arg-type]
            proxies[build] = stack.enter_context(
                toxiproxy(f"backend-{build}", upstream=system.backend_address, listen=listen)
            )
            systems[build] = stack.enter_context(system)
        prom = stack.enter_context(
            PrometheusServer([s.frontend_url.removeprefix("http://") for s in systems.values()])
        )
        yield Stack(systems, proxies, prom)


def analysis(stack: Stack, build: str) -> Body:
    where = f'instance="{stack.instance(build)}"'
    source = {"url": stack.prom.url}
    return {
        "retryStorm": {
            "prometheus": {**source, "query": f"sum(rate(refsys_backend_requests_total{{{where}}}[5s]))"},
            "maxAmplification": 1.5,
        },
        "backpressure": {
            "prometheus": {**source, "query": f"max(refsys_inflight_requests{{{where}}})"},
            "limit": 40,
        },
        "latency": {
            "prometheus": {
                **source,
                "query": "histogram_quantile(0.99, sum(rate("
                f"refsys_request_duration_seconds_bucket{{{where}}}[5s])) by (le))",
            },
            "maxLatency": "3s",
        },
    }


def fault(stack: Stack, build: str) -> Body:
    return {
        "duration": "12s",
        "toxiproxy": {
            "endpoint": stack.proxies[build].url,
            "proxy": stack.proxies[build].proxy,
            "toxics": [
                # every answer 3.5 s late, and 70 % of connections reset at once: errors to retry
                {"type": "latency", "attributes": {"latency": 3500, "jitter": 100}},
                {"type": "reset_peer", "stream": "upstream", "toxicity": 0.7, "attributes": {"timeout": 0}},
            ],
        },
    }


def run_under_load(api: client.ApiClient, namespace: str, stack: Stack, build: str, tmp_path: Path) -> Body:
    client.AppsV1Api(api).create_namespaced_deployment(namespace, deployment("frontend", replicas=1))
    wait_for(lambda: len(ready_pods(api, namespace, "frontend")) == 1, timeout=60, message="the stand-in")
    chaos = Chaos(api, namespace)
    system = stack.systems[build]
    with steady_load(
        system.frontend_url, rate=20, users=60, seconds=90, timeout=30, log_path=tmp_path / "load.log"
    ):
        # a baseline to compare with: the request rate toward the backend settles under load
        wait_for(
            lambda: (
                (
                    stack.prom.query(
                        f'sum(rate(refsys_backend_requests_total{{instance="{stack.instance(build)}"}}[5s]))'
                    )
                    or 0
                )
                > 10
            ),
            timeout=30,
            message="a steady request rate",
        )
        body = experiment("slow-dependency", app="frontend", fault=fault(stack, build))
        body["spec"]["analysis"] = analysis(stack, build)
        chaos.create_experiment(body)
        wait_for(lambda: stack.proxies[build].names(), timeout=60, message="the toxics in place")
        run: Body = wait_for(lambda: chaos.finished_run("slow-dependency"), timeout=90, message="the run")
    assert stack.proxies[build].names() == set()  # gone after the fault
    return run


def test_the_naive_client_shows_a_retry_storm_no_backpressure_and_no_timeouts(
    api: client.ApiClient, namespace: str, operator: OperatorProcess, stack: Stack, tmp_path: Path
) -> None:
    status = run_under_load(api, namespace, stack, "naive", tmp_path)["status"]
    assert status["phase"] == "Completed" and status["verdict"] == "Failed", status
    assert status["severity"] in ("high", "critical")
    titles = {f["title"]: f for f in status["findings"]}
    assert {"Retry storm", "No backpressure", "Missing timeouts"} <= set(titles), status["findings"]
    records = {r["name"]: r for r in status["analysis"]}
    storm = records["retryStorm"]
    assert storm["amplification"] > 1.5 and storm["peak"] > storm["baseline"] and storm["samples"] >= 3, storm
    assert f"{storm['amplification']:.1f} times as much" in titles["Retry storm"]["detail"]
    assert records["backpressure"]["peak"] > 40 and records["latency"]["peak"] > 3, records


def test_the_resilient_client_degrades_gracefully_and_passes(
    api: client.ApiClient, namespace: str, operator: OperatorProcess, stack: Stack, tmp_path: Path
) -> None:
    status = run_under_load(api, namespace, stack, "resilient", tmp_path)["status"]
    assert status["phase"] == "Completed" and status["verdict"] == "Passed", status
    titles = {f["title"] for f in status["findings"]}
    assert not titles & {"Retry storm", "No backpressure", "Missing timeouts"}, status["findings"]
    records = {r["name"]: r for r in status["analysis"]}
    assert all(r["samples"] >= 3 for r in records.values()), records
    assert records["retryStorm"]["amplification"] <= 1.5 and records["backpressure"]["peak"] <= 40, records
