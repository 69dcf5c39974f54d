"""The steady-state hypothesis end to end: probes before, during and after a real fault.

HTTP probes ask local servers (tests/support/health.py) whose health follows the real cluster —
the workload Service's ready EndpointSlice endpoints, kept by the real kube-controller-manager, or
whether a partition's NetworkPolicy exists. Kubernetes probes read the operator's cache.
Prometheus probes and the gate query the pinned Prometheus (built from its Go module by `make
tools`), scraping a metrics endpoint the test drives.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.support.chaos import Chaos, experiment, our_network_policies, partition
from tests.support.cluster import Cluster
from tests.support.health import health_server, ready_endpoints, service
from tests.support.operator import OperatorProcess
from tests.support.policies import extra_policy
from tests.support.prometheus import MetricsService, PrometheusServer
from tests.support.tools import REPO
from tests.support.waiting import wait_for
from tests.support.workloads import deployment, ready_pods

Body = dict[str, Any]


def shop(
    api: client.ApiClient, namespace: str, replicas: int = 3, ready_delay: str | None = None
) -> dict[str, str]:
    """The workload and its Service; returns its Ready pods (name → uid)."""
    client.AppsV1Api(api).create_namespaced_deployment(
        namespace, deployment("shop", replicas=replicas, ready_delay=ready_delay)
    )
    client.CoreV1Api(api).create_namespaced_service(namespace, service("shop", "shop"))
    wait_for(lambda: len(ready_pods(api, namespace, "shop")) == replicas, timeout=60, message="Ready pods")
    wait_for(
        lambda: ready_endpoints(api, namespace, "shop") == replicas, timeout=60, message="ready endpoints"
    )
    return {p.metadata.name: p.metadata.uid for p in ready_pods(api, namespace, "shop")}


def http_probe(name: str, url: str, **extra: Any) -> Body:
    return {"name": name, "http": {"url": url, "timeout": "1s"}, **extra}


def steady(*probes: Body, interval: str = "1s") -> Body:
    return {"steadyState": {"interval": interval, "probes": list(probes)}}


def finished(chaos: Chaos, name: str, timeout: float = 90) -> Body:
    run: Body = wait_for(
        lambda: chaos.finished_run(name), timeout=timeout, message=f"a finished run of {name}"
    )
    return run


def pods_now(api: client.ApiClient, namespace: str) -> dict[str, str]:
    return {
        p.metadata.name: p.metadata.uid for p in client.CoreV1Api(api).list_namespaced_pod(namespace).items
    }


def test_hypothesis_not_met_skips_the_run_and_injects_nothing(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    before = shop(api, namespace)
    chaos = Chaos(api, namespace)
    with health_server(lambda: False) as down:
        chaos.create_experiment(
            experiment(
                "kill",
                app="shop",
                extra_spec=steady(
                    http_probe("checkout", f"{down.url}/healthz"),
                    {
                        "name": "replicas",
                        "kubernetes": {"kind": "Deployment", "name": "shop", "readyAtLeast": 3},
                    },
                ),
            )
        )
        status = finished(chaos, "kill")["status"]
    assert status["phase"] == "Skipped" and status["reason"] == "SteadyStateNotMet", status
    assert "checkout: HTTP 503" in status["message"] and "nothing was injected" in status["message"]
    assert "replicas" not in status["message"]  # it held
    probes = {p["name"]: p for p in status["probes"]}
    assert probes["checkout"]["before"] == "Failed" and probes["replicas"]["before"] == "Held"
    assert status["probeSummary"] == "1/2 failed"
    assert not status.get("targets") and not status.get("findings")  # nothing chosen, nobody blamed
    assert pods_now(api, namespace) == before


def test_a_pod_delete_that_breaks_the_service_is_a_finding_with_the_probes_evidence(
    cluster: Cluster, api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    before = shop(api, namespace, ready_delay="3s")  # a replacement is unready for 3 s: the probe sees it
    chaos = Chaos(api, namespace)
    with health_server(lambda: ready_endpoints(api, namespace, "shop") >= 3) as checkout:
        chaos.create_experiment(
            experiment(
                "kill", app="shop", extra_spec=steady(http_probe("checkout", f"{checkout.url}/healthz"))
            )
        )
        run = finished(chaos, "kill")
    status = run["status"]
    assert status["phase"] == "Completed", status
    (target,) = status["targets"]
    assert target["name"] in before and target["name"] not in pods_now(api, namespace)
    (probe,) = status["probes"]
    assert probe["before"] == "Held" and probe["after"] == "Held", probe
    # the service really degraded while the replacement pod was not ready, and the probe saw it;
    # once the workload had recovered it held again
    assert 1 <= probe["failures"] <= probe["samples"], probe
    assert 503 in checkout.answers
    assert probe["firstFailure"] and probe["lastFailure"] and probe["latencyP50Ms"] is not None
    (finding,) = [f for f in status["findings"] if f["title"] == "Transient probe failures during the fault"]
    assert finding["severity"] == "low"
    assert f"checkout failed {probe['failures']} of {probe['samples']} checks" in finding["detail"]
    assert "HTTP 503" in finding["detail"]
    assert status["severity"] == "low" and status["verdict"] == "Passed"
    assert status["probeSummary"].startswith("1/1 held")
    # kubectl get shows it; the metrics carry the probe's success ratio
    listed = cluster.kubectl("get", "chaosrun", "-n", namespace).stdout
    assert "PROBES" in listed and "1/1 held" in listed, listed
    ratio = (probe["samples"] - probe["failures"]) / probe["samples"]
    line = f'aftershock_probe_success_ratio{{experiment="kill",namespace="{namespace}",probe="checkout"}}'
    metric = next(m for m in operator.metrics().splitlines() if m.startswith(line))
    assert abs(float(metric.split()[-1]) - ratio) < 1e-6, metric


def test_consecutive_probe_failures_abort_a_partition_and_revert_it_within_seconds(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    shop(api, namespace)
    chaos = Chaos(api, namespace)
    gone_at: list[float] = []

    def healthy() -> bool:
        return not our_network_policies(api, namespace)

    with health_server(healthy) as checkout:
        chaos.create_experiment(
            experiment(
                "cut",
                app="shop",
                fault=partition("120s"),
                extra_spec=steady(http_probe("checkout", f"{checkout.url}/healthz", abortAfter=2)),
            )
        )
        wait_for(lambda: our_network_policies(api, namespace), timeout=60, message="the partition in place")
        cut_at = time.monotonic()
        wait_for(
            lambda: not our_network_policies(api, namespace), timeout=30, message="the partition reverted"
        )
        gone_at.append(time.monotonic())
        run = finished(chaos, "cut", timeout=30)
    status = run["status"]
    assert status["phase"] == "Aborted" and status["reason"] == "SteadyStateLost", status
    assert "checkout failed 2 consecutive checks (abortAfter 2)" in status["message"]
    # two failed checks a second apart, then the kill switch's revert path: well inside 10 s
    assert gone_at[0] - cut_at < 10, gone_at[0] - cut_at
    (finding,) = [f for f in status["findings"] if f["title"] == "Run aborted by steady-state probe checkout"]
    assert finding["severity"] == "high" and finding["detail"].count("HTTP 503") >= 2
    assert status["severity"] in ("high", "critical")
    assert status["probeSummary"] == "aborted by checkout"
    (probe,) = status["probes"]
    assert probe["failures"] >= 2 and probe["before"] == "Held"


def test_probe_endpoints_outside_the_policy_are_refused_at_admission(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    chaos = Chaos(api, namespace)
    kube_host = api.configuration.host  # where the API server listens (127.0.0.1:PORT here)
    gate = {"gate": {"prometheus": {"url": "http://10.0.0.1:9090", "query": "up", "below": 1}}}
    cases = [
        (steady(http_probe("p", "http://169.254.169.254/latest/meta-data/")), "link-local"),
        (steady(http_probe("p", f"{kube_host}/readyz")), "API server"),
        (steady(http_probe("p", "https://kubernetes.default.svc/readyz")), "API server"),
        (
            steady(http_probe("p", "http://checkout.payments.svc:8080/")),
            f"not a Service of the target namespace {namespace}",
        ),
        (gate, "10.0.0.1 is not in endpoints.allow"),
    ]
    # the suite's policy lets probes reach any Service (for the examples); this one does not
    with extra_policy(
        api,
        allowedFaults=["podDelete"],
        blastRadius={"maxPodsPercent": 100},
        endpoints={"allow": ["127.0.0.1/32"]},
    ):
        for extra, words in cases:
            with pytest.raises(ApiException) as info:
                chaos.create_experiment(experiment("kill", app="shop", extra_spec=extra))
            body = info.value.body or ""
            assert "endpoint refused" in body and words in body, (extra, body)
    assert chaos.runs() == []


def test_a_redirect_off_the_allowed_list_is_not_followed_and_nothing_is_injected(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    before = shop(api, namespace)
    chaos = Chaos(api, namespace)
    with health_server(lambda: True, redirect_to="http://169.254.169.254/latest/meta-data/") as sly:
        chaos.create_experiment(
            experiment("kill", app="shop", extra_spec=steady(http_probe("checkout", f"{sly.url}/healthz")))
        )
        status = finished(chaos, "kill")["status"]
    assert status["phase"] == "Errored" and status["reason"] == "EndpointNotAllowed", status
    assert "redirect to http://169.254.169.254/latest/meta-data/ refused" in status["message"]
    assert sly.answers == [302]  # asked once, the redirect was not followed
    assert pods_now(api, namespace) == before


def test_a_dry_run_evaluates_the_probes_once_and_records_them(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    before = shop(api, namespace)
    chaos = Chaos(api, namespace)
    with health_server(lambda: True) as checkout:
        chaos.create_experiment(
            experiment(
                "kill",
                app="shop",
                extra_spec={**steady(http_probe("checkout", checkout.url)), "dryRun": True},
            )
        )
        status = finished(chaos, "kill")["status"]
    assert status["phase"] == "Completed" and status["reason"] == "DryRun", status
    (probe,) = status["probes"]
    assert probe["before"] == "Held" and probe["lastAnswer"].startswith("HTTP 200")
    assert checkout.answers == [200]
    assert len(status["targets"]) == 1 and pods_now(api, namespace) == before


# --- with a real Prometheus (built by `make tools`) -------------------------------------------------


@pytest.fixture(scope="module")
def prom() -> Iterator[tuple[MetricsService, PrometheusServer]]:
    """A metrics endpoint the tests drive, scraped every second by the pinned Prometheus."""
    with MetricsService() as metrics:
        metrics.set("shop_errors_per_second", 0)
        metrics.set("shop_burn_rate", 0.2)
        with PrometheusServer([metrics.target]) as server:
            yield metrics, server


def prom_probe(name: str, url: str, query: str, **bounds: float) -> Body:
    return {"name": name, "prometheus": {"url": url, "query": query, **bounds}}


def test_a_prometheus_bound_breached_during_the_fault_is_a_finding(
    api: client.ApiClient,
    namespace: str,
    operator: OperatorProcess,
    prom: tuple[MetricsService, PrometheusServer],
) -> None:
    metrics, server = prom
    metrics.set("shop_errors_per_second", 0)
    shop(api, namespace)
    chaos = Chaos(api, namespace)
    query = "max(shop_errors_per_second)"
    chaos.create_experiment(
        experiment(
            "cut",
            app="shop",
            fault=partition("6s"),
            extra_spec=steady(prom_probe("errors", server.url, query, below=1)),
        )
    )
    try:
        wait_for(lambda: our_network_policies(api, namespace), timeout=60, message="the partition in place")
        metrics.set("shop_errors_per_second", 5)  # the service starts failing under the fault...
        run = finished(chaos, "cut")  # ...and has not stopped when the run checks after recovery
    finally:
        metrics.set("shop_errors_per_second", 0)
    status = run["status"]
    assert status["phase"] == "Completed" and status["verdict"] == "Failed", status
    (probe,) = status["probes"]
    assert probe["before"] == "Held" and probe["after"] == "Failed" and probe["failures"] >= 1, probe
    assert probe["lastAnswer"] == "5 (must be below 1)"
    (finding,) = [f for f in status["findings"] if f["title"] == "Steady-state probe errors stayed failed"]
    assert finding["severity"] == "high" and "5 (must be below 1)" in finding["detail"]
    assert f"during the fault it failed {probe['failures']} of {probe['samples']} checks" in finding["detail"]
    assert status["severity"] == "high" and status["probeSummary"] == "1/1 failed"
    assert server.query(query) == 5.0  # what the operator read is what Prometheus says


def test_a_closed_error_budget_gate_skips_the_run(
    api: client.ApiClient,
    namespace: str,
    operator: OperatorProcess,
    prom: tuple[MetricsService, PrometheusServer],
) -> None:
    metrics, server = prom
    before = shop(api, namespace)
    chaos = Chaos(api, namespace)
    gate = {"gate": {"prometheus": {"url": server.url, "query": "max(shop_burn_rate)", "below": 1}}}
    metrics.set("shop_burn_rate", 2.5)
    wait_for(lambda: server.query("max(shop_burn_rate)") == 2.5, timeout=20, message="the burn rate scraped")
    try:
        chaos.create_experiment(experiment("kill", app="shop", extra_spec=gate))
        status = finished(chaos, "kill")["status"]
    finally:
        metrics.set("shop_burn_rate", 0.2)
    assert status["phase"] == "Skipped" and status["reason"] == "ErrorBudgetExhausted", status
    assert "2.5 (must be below 1)" in status["message"] and "nothing was injected" in status["message"]
    assert not status.get("targets") and pods_now(api, namespace) == before
    # with budget left, the same gate lets a run through
    wait_for(lambda: server.query("max(shop_burn_rate)") == 0.2, timeout=20, message="the burn rate scraped")
    chaos.create_experiment(experiment("kill-again", app="shop", extra_spec=gate))
    assert finished(chaos, "kill-again")["status"]["phase"] == "Completed"


def test_aftershock_plan_shows_what_a_run_would_do_and_creates_nothing(
    cluster: Cluster,
    api: client.ApiClient,
    namespace: str,
    operator: OperatorProcess,
    prom: tuple[MetricsService, PrometheusServer],
    tmp_path: Path,
) -> None:
    metrics, server = prom
    metrics.set("shop_errors_per_second", 0)
    before = shop(api, namespace)
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}

    def plan(body: Body) -> tuple[int, Body]:
        path = tmp_path / "experiment.yaml"
        path.write_text(yaml.safe_dump(body))
        done = subprocess.run(
            [
                str(REPO / ".venv" / "bin" / "aftershock"),
                "plan",
                "-f",
                str(path),
                "-n",
                namespace,
                "-o",
                "json",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.stdout, done.stderr
        return done.returncode, json.loads(done.stdout)

    with health_server(lambda: True) as checkout:
        probes = steady(
            http_probe("checkout", checkout.url),
            prom_probe("errors", server.url, "max(shop_errors_per_second)", below=1),
            {"name": "replicas", "kubernetes": {"kind": "Deployment", "name": "shop", "readyAtLeast": 3}},
        )
        code, result = plan(experiment("kill", app="shop", extra_spec=probes))
    assert code == 0 and result["admitted"] and result["wouldRun"], result
    assert result["workloads"] == [f"Deployment {namespace}/shop"] and result["candidates"] == 3
    assert len(result["targets"]) == 1 and result["targets"][0] in before
    assert [(p["name"], p["result"]) for p in result["probes"]] == [
        ("checkout", "Held"),
        ("errors", "Held"),
        ("replicas", "Held"),
    ]
    assert checkout.answers == [200]
    # refused by admission: said, and still nothing created
    refused = steady(http_probe("meta", "http://169.254.169.254/"))
    code, result = plan(experiment("kill", app="shop", extra_spec=refused))
    assert code == 2 and not result["admitted"] and "link-local" in result["refusal"], result
    assert Chaos(api, namespace).runs() == []
    assert (
        client.CustomObjectsApi(api).list_namespaced_custom_object(
            "aftershock.dev", "v1alpha1", namespace, "chaosexperiments"
        )["items"]
        == []
    )
    assert pods_now(api, namespace) == before
