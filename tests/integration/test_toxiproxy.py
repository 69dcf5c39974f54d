"""fault.toxiproxy end to end against a real Toxiproxy (the pinned build, a local process)."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.support.chaos import Chaos, experiment
from tests.support.cluster import Cluster
from tests.support.net import free_port
from tests.support.operator import OperatorProcess, solo_operator
from tests.support.policies import apply_policy, permissive
from tests.support.toxiproxy import toxiproxy
from tests.support.waiting import wait_for
from tests.support.workloads import deployment, ready_pods

Body = dict[str, Any]


def fault(endpoint: str, proxy: str = "backend", duration: str = "4s") -> Body:
    return {
        "duration": duration,
        "toxiproxy": {
            "endpoint": endpoint,
            "proxy": proxy,
            "toxics": [
                {"type": "latency", "attributes": {"latency": 300, "jitter": 0}},
                {"type": "timeout", "stream": "upstream", "toxicity": 0.5, "attributes": {"timeout": 1000}},
            ],
        },
    }


def workload(api: client.ApiClient, namespace: str) -> None:
    client.AppsV1Api(api).create_namespaced_deployment(namespace, deployment("shop", replicas=2))
    wait_for(lambda: len(ready_pods(api, namespace, "shop")) == 2, timeout=60, message="Ready pods")


def finished(chaos: Chaos, name: str, timeout: float = 60) -> Body:
    run: Body = wait_for(
        lambda: chaos.finished_run(name), timeout=timeout, message=f"a finished run of {name}"
    )
    return run


def test_toxics_are_in_place_for_the_duration_and_gone_after(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    workload(api, namespace)
    chaos = Chaos(api, namespace)
    with toxiproxy() as tp:
        tp.request(
            "POST",
            "/proxies/backend/toxics",
            {"name": "theirs", "type": "bandwidth", "attributes": {"rate": 1000}},
        )
        chaos.create_experiment(experiment("slow", app="shop", fault=fault(tp.url)))
        seen = wait_for(lambda: {n for n in tp.names() if n != "theirs"}, timeout=60, message="the toxics")
        run = chaos.runs("slow")[0]
        uid = run["metadata"]["uid"]
        assert seen == {f"aftershock.{namespace}.{uid}.0", f"aftershock.{namespace}.{uid}.1"}
        by_name = {t["name"]: t for t in tp.toxics()}
        latency = by_name[f"aftershock.{namespace}.{uid}.0"]
        assert latency["type"] == "latency" and latency["attributes"]["latency"] == 300
        assert latency["stream"] == "downstream" and latency["toxicity"] == 1
        timeout = by_name[f"aftershock.{namespace}.{uid}.1"]
        assert timeout["stream"] == "upstream" and timeout["toxicity"] == 0.5
        status = finished(chaos, "slow")["status"]
        assert status["phase"] == "Completed" and status["verdict"] == "Passed", status
        assert tp.names() == {"theirs"}  # exactly this run's toxics were removed, nothing else
    assert status["revertedAt"] and len(status["targets"]) == 1


def test_toxiproxy_down_or_proxy_missing_ends_errored_and_changes_nothing(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    workload(api, namespace)
    chaos = Chaos(api, namespace)
    chaos.create_experiment(experiment("down", app="shop", fault=fault(f"http://127.0.0.1:{free_port()}")))
    status = finished(chaos, "down")["status"]
    assert status["phase"] == "Errored" and status["reason"] == "ToxiproxyUnreachable", status
    assert "did not answer" in status["message"] and "nothing was injected" in status["message"]
    assert not status.get("targets")
    with toxiproxy() as tp:
        chaos.create_experiment(experiment("nothere", app="shop", fault=fault(tp.url, proxy="redis")))
        status = finished(chaos, "nothere")["status"]
        assert status["phase"] == "Errored" and status["reason"] == "ToxiproxyProxyNotFound", status
        assert "no proxy named redis (it has: backend)" in status["message"]
        assert tp.names() == set()


def test_the_kill_switch_removes_the_toxics_within_seconds(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    workload(api, namespace)
    chaos = Chaos(api, namespace)
    with toxiproxy() as tp:
        chaos.create_experiment(experiment("held", app="shop", fault=fault(tp.url, duration="120s")))
        wait_for(lambda: tp.names(), timeout=60, message="the toxics in place")
        body = permissive()
        body["spec"]["suspend"] = True
        apply_policy(api, body)
        try:
            switched = time.monotonic()
            wait_for(lambda: not tp.names(), timeout=15, message="the toxics removed")
            took = time.monotonic() - switched
            status = finished(chaos, "held", timeout=20)["status"]
        finally:
            apply_policy(api, permissive())
    assert took < 10, took
    assert status["phase"] == "Aborted" and status["reason"] == "PolicySuspended", status


def test_an_endpoint_outside_the_policy_is_refused_at_admission(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    with pytest.raises(ApiException) as info:
        Chaos(api, namespace).create_experiment(
            experiment("meta", app="shop", fault=fault("http://169.254.169.254:8474"))
        )
    assert "Toxiproxy endpoint refused" in (info.value.body or "") and "link-local" in (info.value.body or "")


def test_operator_killed_mid_fault_then_the_restarted_operator_removes_the_toxics(
    cluster: Cluster, api: client.ApiClient, solo_namespace: str, tmp_path: Path
) -> None:
    ns = solo_namespace
    workload(api, ns)
    chaos = Chaos(api, ns)
    with toxiproxy() as tp:
        first = solo_operator(cluster.kubeconfig, tmp_path, ns, "first")
        try:
            chaos.create_experiment(experiment("slow", app="shop", fault=fault(tp.url, duration="8s")))
            added = wait_for(lambda: tp.names(), timeout=60, message="the toxics in place")
        finally:
            first.stop(signal.SIGKILL)
        assert tp.names() == added  # nobody drives the run: the toxics stay until someone does
        second = solo_operator(cluster.kubeconfig, tmp_path, ns, "first")  # the same identity, restarted
        try:
            status = finished(chaos, "slow", timeout=90)["status"]
        finally:
            second.stop()
        assert tp.names() == set()
    assert status["phase"] == "Completed" and status["revertedAt"], status
    assert len(chaos.runs("slow")) == 1


def test_the_sweeper_removes_toxics_whose_run_is_gone_and_leaves_others_alone(
    cluster: Cluster, api: client.ApiClient, solo_namespace: str, tmp_path: Path
) -> None:
    ns = solo_namespace
    chaos = Chaos(api, ns)
    with toxiproxy() as tp:
        # an experiment that names the endpoint (suspended: it never runs), and toxics as a run of
        # this namespace that no longer exists would have left them, beside someone else's
        body = experiment("slow", app="shop", fault=fault(tp.url))
        body["spec"].update(schedule="@yearly", suspend=True)
        chaos.create_experiment(body)
        orphan = f"aftershock.{ns}.0b5e2a7c-dead-4bee-8a11-000000000000.0"
        for name in (orphan, "theirs"):
            tp.request(
                "POST",
                "/proxies/backend/toxics",
                {"name": name, "type": "latency", "attributes": {"latency": 50}},
            )
        operator = solo_operator(cluster.kubeconfig, tmp_path, ns, "sweeper")
        try:
            wait_for(lambda: orphan not in tp.names(), timeout=30, message="the orphaned toxic swept")
        finally:
            operator.stop()
        assert tp.names() == {"theirs"}  # one aftershock did not name is never touched
