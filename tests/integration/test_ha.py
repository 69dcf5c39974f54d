"""Two replicas: both watch, one claims each run; SIGKILL the one driving a live fault and the
other carries that run and every later slot on once its Lease lapses — nothing doubled, nothing
left behind. The failover time is printed (measured, not asserted; the deadline is generous)."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

from kubernetes import client

from tests.support.chaos import Chaos, experiment, our_network_policies, partition
from tests.support.cluster import Cluster
from tests.support.npwatch import PolicyCreations
from tests.support.operator import OperatorProcess, solo_operator
from tests.support.waiting import wait_for
from tests.support.workloads import deployment, ready_pods

TERMINAL = {"Completed", "Aborted", "Skipped", "Errored"}
LEASE_SECONDS = 15


def _operator(cluster: Cluster, tmp_path: Path, namespace: str, identity: str, **env: str) -> OperatorProcess:
    return solo_operator(cluster.kubeconfig, tmp_path, namespace, identity, **env)


def test_killing_the_active_replica_hands_runs_and_slots_to_the_other(
    cluster: Cluster, api: client.ApiClient, solo_namespace: str, tmp_path: Path
) -> None:
    ns = solo_namespace
    chaos = Chaos(api, ns)
    for app in ("ha", "tick"):
        client.AppsV1Api(api).create_namespaced_deployment(ns, deployment(app, replicas=2))
    wait_for(
        lambda: len(ready_pods(api, ns, "ha")) == 2 and len(ready_pods(api, ns, "tick")) == 2,
        timeout=60,
        message="steady state",
    )
    replicas = {name: _operator(cluster, tmp_path, ns, name) for name in ("replica-a", "replica-b")}
    try:
        with PolicyCreations(api, ns) as creations:
            held = experiment("held", app="ha", fault=partition("40s"), objective="10s", timeout="30s")
            chaos.create_experiment(held)
            run = wait_for(
                lambda: next(
                    (r for r in chaos.runs("held") if (r.get("status") or {}).get("phase") == "Observing"),
                    None,
                ),
                timeout=30,
                message="the fault held by one replica",
            )
            holder = run["status"]["claimedBy"]
            other = next(name for name in replicas if name != holder)
            ticking = experiment("ticking", app="tick", objective="10s", timeout="20s")
            ticking["spec"].update(schedule="@every 4s", successfulRunsHistoryLimit=50)
            chaos.create_experiment(ticking)
            wait_for(lambda: len(chaos.runs("ticking")) >= 1, timeout=20, message="the first slot")
            replicas[holder].stop(signal.SIGKILL)
            killed = time.monotonic()
            wait_for(
                lambda: chaos.get("chaosruns", run["metadata"]["name"])["status"].get("claimedBy") == other,
                timeout=LEASE_SECONDS + 30,
                message=f"{other} taking the held run over",
            )
            failover = time.monotonic() - killed
            print(
                f"failover: the run was taken over {failover:.1f} s after the SIGKILL (Lease {LEASE_SECONDS} s)"
            )
            slots_at_takeover = len(chaos.runs("ticking"))
            wait_for(
                lambda: len(chaos.runs("ticking")) >= slots_at_takeover + 2,
                timeout=30,
                message="later slots scheduled by the survivor",
            )
            finished = wait_for(
                lambda: (
                    (r := chaos.get("chaosruns", run["metadata"]["name"]))["status"].get("phase") in TERMINAL
                    and r
                ),
                timeout=90,
                message="the held run finished",
            )
            chaos.objects.patch_namespaced_custom_object(
                "aftershock.dev", "v1alpha1", ns, "chaosexperiments", "ticking", {"spec": {"suspend": True}}
            )

            def all_finished() -> list[dict[str, Any]] | None:
                runs = chaos.runs("ticking")
                return runs if all((r.get("status") or {}).get("phase") in TERMINAL for r in runs) else None

            ticks = wait_for(all_finished, timeout=60, message="every slot's run finished")
            wait_for(lambda: our_network_policies(api, ns) == [], timeout=20, message="no NetworkPolicy left")
    finally:
        for replica in replicas.values():
            replica.stop()
    status = finished["status"]
    assert status["phase"] == "Completed" and status["claimedBy"] == other, status
    assert status["revertedAt"]
    # the held fault was created once, whoever drove it
    assert [len(uids) for uids in creations.uids_by_run.values()] == [1], creations.uids_by_run
    # one run per slot, and slots after the kill were run by the survivor
    names = [r["metadata"]["name"] for r in ticks]
    assert len(names) == len(set(names))
    assert {r["status"]["claimedBy"] for r in ticks if r["status"].get("claimedBy")} <= set(replicas)
    assert client.CoreV1Api(api).list_namespaced_pod(ns, label_selector="aftershock.dev/run").items == []
