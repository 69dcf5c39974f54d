"""The operator under a degraded API server (issue 11): Toxiproxy between the operator and
kube-apiserver adds 500 ms latency, resets connections, or swallows every byte for 30 s while
scheduled network partitions are active.

In each scenario every run ends terminal as expected, no fault is left behind, no slot runs twice
and no fault is injected twice, and the same operator process recovers without a restart: its
/healthz answers and it completes a new run once the toxics are gone. The tests read and write
through the undegraded kubeconfig; only the operator talks through the proxy.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.support.chaos import Chaos, experiment, our_network_policies, partition
from tests.support.cluster import Cluster
from tests.support.degraded import DegradedApiServer, degraded_apiserver
from tests.support.npwatch import PolicyCreations
from tests.support.operator import OperatorProcess, start_operator
from tests.support.waiting import wait_for
from tests.support.workloads import deployment, ready_pods

TERMINAL = {"Completed", "Aborted", "Skipped", "Errored"}
RUN_LABEL = "aftershock.dev/run"
APP = "app"
LATENCY_MS = 500
BLACKHOLE_SECONDS = 30
# how soon after the API server is reachable again the operator must have caught up
RECOVERY_OBJECTIVE = 45.0


@dataclass
class Rig:
    api: client.ApiClient
    namespace: str
    chaos: Chaos
    proxy: DegradedApiServer
    operator: OperatorProcess
    identity: str


@pytest.fixture
def rig(
    cluster: Cluster,
    api: client.ApiClient,
    solo_namespace: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Rig]:
    """A steady 2-replica Deployment, and an operator of its own for the namespace that reaches
    the API server only through Toxiproxy."""
    ns = solo_namespace
    client.AppsV1Api(api).create_namespaced_deployment(ns, deployment(APP, replicas=2))
    wait_for(lambda: len(ready_pods(api, ns, APP)) == 2, timeout=60, message="steady state")
    identity = "degraded-" + request.node.name.removeprefix("test_").replace("_", "-")[:40]
    with degraded_apiserver(cluster.kubeconfig, tmp_path / "toxiproxy") as proxy:
        op = start_operator(
            proxy.kubeconfig,
            tmp_path / "operator.log",
            "--namespace",
            ns,
            "--identity",
            identity,
            "--sweep-interval",
            "2",
        )
        try:
            yield Rig(api, ns, Chaos(api, ns), proxy, op, identity)
        finally:
            op.stop()
            # shown by pytest only when the test failed: the operator's side of the story
            lines = [line for line in op.log().splitlines() if not line.startswith(("│", "╭", "╰"))]
            print(
                f"operator exited with {op.process.returncode}; last log lines:\n" + "\n".join(lines[-200:])
            )


# --- building and reading --------------------------------------------------------------------


def scheduled(
    name: str, every: int, hold: str, *, objective: str = "10s", timeout: str = "30s"
) -> dict[str, Any]:
    """A partition of one pod of the app every `every` seconds, held for `hold` (Forbid: a slot
    due while a run is active is recorded as Skipped)."""
    body = experiment(name, app=APP, fault=partition(hold), objective=objective, timeout=timeout)
    body["spec"].update(
        schedule=f"@every {every}s", successfulRunsHistoryLimit=100, failedRunsHistoryLimit=100
    )
    return body


def _time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _phase(run: dict[str, Any]) -> str | None:
    return (run.get("status") or {}).get("phase")


def _terminal(run: dict[str, Any]) -> dict[str, Any] | None:
    return run if _phase(run) in TERMINAL else None


def _done(runs: list[dict[str, Any]], phase: str = "Completed") -> list[dict[str, Any]]:
    return [r for r in runs if _phase(r) == phase]


def _summary(runs: list[dict[str, Any]]) -> list[tuple[str, Any, Any, Any]]:
    return [
        (
            r["metadata"]["name"],
            _phase(r),
            (r.get("status") or {}).get("reason"),
            (r.get("status") or {}).get("message"),
        )
        for r in runs
    ]


def marked_pods(api: client.ApiClient, namespace: str, selector: str = RUN_LABEL) -> list[client.V1Pod]:
    pods: list[client.V1Pod] = (
        client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=selector).items
    )
    return pods


def suspend(chaos: Chaos, name: str) -> None:
    chaos.objects.patch_namespaced_custom_object(
        "aftershock.dev", "v1alpha1", chaos.namespace, "chaosexperiments", name, {"spec": {"suspend": True}}
    )


def wait_all_finished(rig: Rig, name: str, timeout: float) -> list[dict[str, Any]]:
    """Every run of the experiment terminal and nothing of ours left in the namespace."""

    def finished() -> list[dict[str, Any]] | None:
        runs = rig.chaos.runs(name)
        if not runs or not all(_phase(r) in TERMINAL for r in runs):
            return None
        if our_network_policies(rig.api, rig.namespace) or marked_pods(rig.api, rig.namespace):
            return None
        return runs

    return wait_for(finished, timeout=timeout, message=f"every run of {name} finished, nothing left behind")


# --- the invariants --------------------------------------------------------------------------


def assert_one_run_per_slot(rig: Rig, name: str, runs: list[dict[str, Any]], every: int) -> None:
    """Each run belongs to a distinct slot of the schedule (anchor + k * every, k >= 1, not in the
    future), is named after it, and there are no more runs than slots so far."""
    anchor = _time(rig.chaos.get("chaosexperiments", name)["metadata"]["creationTimestamp"])
    until = dt.datetime.now(dt.UTC)
    slots = []
    for run in runs:
        slot = _time(run["spec"]["scheduledTime"])
        assert run["metadata"]["name"] == f"{name}-{int(slot.timestamp())}", run["metadata"]["name"]
        offset = (slot - anchor).total_seconds()
        assert offset > 0 and offset % every == 0, (run["metadata"]["name"], anchor)
        assert slot <= until, run["metadata"]["name"]
        slots.append(slot)
    assert len(set(slots)) == len(slots), sorted(slots)
    assert len(runs) <= (until - anchor).total_seconds() // every, (len(runs), anchor, until)


def assert_each_fault_injected_once(runs: list[dict[str, Any]], creations: PolicyCreations) -> None:
    """Every run that injected created its NetworkPolicy exactly once (a retried create that was
    already carried out must answer 409, never make a second one)."""
    injected = {r["metadata"]["uid"] for r in runs if _phase(r) != "Skipped"}
    assert set(creations.uids_by_run) <= injected, creations.uids_by_run
    assert all(len(uids) == 1 for uids in creations.uids_by_run.values()), creations.uids_by_run


def assert_nothing_left_by_finished_runs(rig: Rig, runs: list[dict[str, Any]]) -> None:
    """A terminal run has reverted what it applied: no NetworkPolicy, no pod label with its uid."""
    for run in runs:
        if _phase(run) in TERMINAL:
            uid = run["metadata"]["uid"]
            net = client.NetworkingV1Api(rig.api)
            policies = net.list_namespaced_network_policy(
                rig.namespace, label_selector=f"{RUN_LABEL}={uid}"
            ).items
            assert policies == [], (run["metadata"]["name"], [p.metadata.name for p in policies])
            assert marked_pods(rig.api, rig.namespace, f"{RUN_LABEL}={uid}") == [], run["metadata"]["name"]


def assert_recovered_without_restart(rig: Rig, pid: int) -> None:
    """The same operator process is alive, its /healthz answers, and it carries out a new run now
    that the API server is healthy again."""
    op = rig.operator
    assert op.process.pid == pid and op.process.poll() is None, op.process.returncode
    assert wait_for(op.healthy, timeout=10, message="the operator's /healthz")
    rig.chaos.create_experiment(
        experiment("after", app=APP, fault=partition("1s"), objective="10s", timeout="20s")
    )
    run = wait_for(
        lambda: rig.chaos.finished_run("after"), timeout=RECOVERY_OBJECTIVE, message="a run after the toxics"
    )
    status = run["status"]
    assert status["phase"] == "Completed" and status["verdict"] == "Passed", status
    assert status["claimedBy"] == rig.identity
    wait_for(
        lambda: not our_network_policies(rig.api, rig.namespace) and not marked_pods(rig.api, rig.namespace),
        timeout=10,
        message="nothing left by the run after the toxics",
    )
    assert op.process.poll() is None and op.healthy()


def assert_completed_or_skipped_behind(runs: list[dict[str, Any]], at_least: int) -> None:
    """Under a slow or flaky API server every run still completes (and passes: the workload never
    suffered); a slot due while the previous run was active is Skipped (Forbid), nothing else."""
    for run in runs:
        status = run.get("status") or {}
        if status.get("phase") == "Skipped":
            assert status.get("reason") == "ConcurrencyForbid", _summary(runs)
        else:
            assert status.get("phase") == "Completed" and status.get("verdict") == "Passed", _summary(runs)
            assert status.get("revertedAt"), status
    assert len(_done(runs)) >= at_least, _summary(runs)


# --- the scenarios ---------------------------------------------------------------------------


def test_500ms_latency_on_every_api_call(rig: Rig) -> None:
    pid = rig.operator.process.pid
    every = 6
    with PolicyCreations(rig.api, rig.namespace) as creations:
        slow = rig.proxy.latency(LATENCY_MS)
        with rig.proxy.toxic(slow):
            rig.chaos.create_experiment(scheduled("slow", every, "2s"))
            # the latency stays while two runs go all the way through under it
            wait_for(
                lambda: len(_done(rig.chaos.runs("slow"))) >= 2, timeout=90, message="two runs completed"
            )
            suspend(rig.chaos, "slow")
            runs = wait_all_finished(rig, "slow", timeout=60)
    assert_completed_or_skipped_behind(runs, at_least=2)
    assert_nothing_left_by_finished_runs(rig, runs)
    assert_one_run_per_slot(rig, "slow", runs, every)
    assert_each_fault_injected_once(runs, creations)
    assert_recovered_without_restart(rig, pid)


def test_connection_resets(rig: Rig) -> None:
    pid = rig.operator.process.pid
    every = 6
    with PolicyCreations(rig.api, rig.namespace) as creations:
        # half of the connections are reset 300 ms after the API server first answers on them;
        # which ones is drawn again every 3 s, so keep-alive connections do not escape it
        resets = rig.proxy.reset_peer(toxicity=0.5, after_ms=300)
        with rig.proxy.toxic(resets):
            rig.chaos.create_experiment(scheduled("flaky", every, "2s"))

            def two_completed() -> bool:
                rig.proxy.reroll(resets)
                return len(_done(rig.chaos.runs("flaky"))) >= 2

            wait_for(two_completed, timeout=90, interval=3, message="two runs completed")
            suspend(rig.chaos, "flaky")
            runs = wait_all_finished(rig, "flaky", timeout=60)
    assert_completed_or_skipped_behind(runs, at_least=2)
    assert_nothing_left_by_finished_runs(rig, runs)
    assert_one_run_per_slot(rig, "flaky", runs, every)
    assert_each_fault_injected_once(runs, creations)
    retries = [
        line
        for line in rig.operator.metrics().splitlines()
        if line.startswith("aftershock_api_retries_total{")
    ]
    assert retries, "the resets never reached the operator's API calls"
    assert_recovered_without_restart(rig, pid)


def test_30s_blackhole_while_a_fault_is_held(rig: Rig) -> None:
    """The API server swallows every byte for 30 s while a partition is held. The operator cannot
    revert in the meantime; once the API server answers again, it reverts the fault and completes
    the run (its deadline, duration + recovery timeout + grace, is still ahead), and goes on."""
    pid = rig.operator.process.pid
    every = 5
    with PolicyCreations(rig.api, rig.namespace) as creations:
        rig.chaos.create_experiment(scheduled("held", every, "10s", objective="10s", timeout="60s"))

        def observing() -> str | None:
            runs = [r for r in rig.chaos.runs("held") if _phase(r) == "Observing"]
            return (
                runs[0]["metadata"]["name"] if runs and our_network_policies(rig.api, rig.namespace) else None
            )

        held = wait_for(observing, timeout=30, message="a run holding its partition")
        silence = rig.proxy.blackhole()
        with rig.proxy.toxic(*silence):
            time.sleep(BLACKHOLE_SECONDS)  # the scenario itself: the API server is unreachable this long
            # nobody could have reverted it: the operator did not reach the API server
            assert our_network_policies(rig.api, rig.namespace), "the fault was reverted during the blackhole"
        back = dt.datetime.now(dt.UTC)
        run = wait_for(
            lambda: _terminal(rig.chaos.get("chaosruns", held)),
            timeout=RECOVERY_OBJECTIVE,
            message=f"run {held} to end within {RECOVERY_OBJECTIVE:.0f} s of the API server's return",
        )
        status = run["status"]
        assert status["phase"] == "Completed" and status["verdict"] == "Passed", status
        assert _time(status["revertedAt"]) >= back - dt.timedelta(seconds=1), status
        suspend(rig.chaos, "held")
        runs = wait_all_finished(rig, "held", timeout=60)
    assert_completed_or_skipped_behind(runs, at_least=1)
    assert_nothing_left_by_finished_runs(rig, runs)
    assert_one_run_per_slot(rig, "held", runs, every)
    assert_each_fault_injected_once(runs, creations)
    assert_recovered_without_restart(rig, pid)
