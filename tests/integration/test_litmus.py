"""The Litmus engine end to end on the real API server, with Litmus played by the test simulator
(tests/support/litmus/simulator.py) over the Litmus CRDs (stand-ins unless the real ones are given;
see tests/support/litmus/crds.yaml).

Covered: Pass, Fail with probe failures, an engine that never completes (deadline → stop → clean
up), Litmus not installed, the Litmus ChaosExperiment missing, a stuck Litmus finalizer with Litmus
gone, the operator killed mid-engine (no second engine, result still recorded), and the policy.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from tests.integration.conftest import LITMUS_TIMING
from tests.support.chaos import Chaos, experiment
from tests.support.cluster import Cluster
from tests.support.litmus.crds import install, uninstall
from tests.support.litmus.objects import Litmus
from tests.support.litmus.simulator import (
    ENGINES,
    EXPERIMENTS,
    FINALIZER,
    GROUP,
    RESULTS,
    VERSION,
    LitmusSimulator,
    Outcome,
    litmus_experiment,
    release_engines,
)
from tests.support.operator import OperatorProcess, start_operator
from tests.support.policies import extra_policy
from tests.support.waiting import wait_for
from tests.support.workloads import deployment, ready_pods

Body = dict[str, Any]
SA = "litmus-admin"
TERMINAL = {"Completed", "Aborted", "Skipped", "Errored"}


def litmus_fault(experiment_name: str, duration: str = "20s", **env: str) -> Body:
    return {
        "duration": duration,
        "litmus": {"experiment": experiment_name, "chaosServiceAccount": SA, "env": env},
    }


PROBE: Body = {
    "name": "shop-up",
    "type": "httpProbe",
    "mode": "Continuous",
    "runProperties": {"probeTimeout": "5s", "interval": "2s"},
    "httpProbe/inputs": {"url": "http://shop", "method": {"get": {"criteria": "==", "responseCode": "200"}}},
}


class EngineEvents:
    """Every change of the ChaosEngines in a namespace, from a watch: (type, engineState,
    engineStatus, finalizers, deleting) — evidence of what was done to them and in which order."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.objects = client.CustomObjectsApi(api)
        self.namespace = namespace
        self.events: list[tuple[str, str, str, tuple[str, ...], bool]] = []
        self._watch = watch.Watch()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with contextlib.suppress(Exception):  # stop() closes the stream mid-read
            version = self.objects.list_namespaced_custom_object(GROUP, VERSION, self.namespace, ENGINES)[
                "metadata"
            ]["resourceVersion"]
            self._ready.set()
            for event in self._watch.stream(
                self.objects.list_namespaced_custom_object,
                GROUP,
                VERSION,
                self.namespace,
                ENGINES,
                resource_version=version,
                timeout_seconds=600,
            ):
                obj = event["object"]
                self.events.append(
                    (
                        event["type"],
                        (obj.get("spec") or {}).get("engineState", ""),
                        (obj.get("status") or {}).get("engineStatus", ""),
                        tuple(obj["metadata"].get("finalizers") or ()),
                        bool(obj["metadata"].get("deletionTimestamp")),
                    )
                )
        self._ready.set()

    def __enter__(self) -> EngineEvents:
        self._thread.start()
        self._ready.wait(timeout=30)
        return self

    def __exit__(self, *exc: object) -> None:
        self._watch.stop()

    def added(self) -> int:
        return sum(1 for e in self.events if e[0] == "ADDED")


@pytest.fixture(scope="module")
def litmus_crds(cluster: Cluster, api: client.ApiClient) -> bool:
    return install(cluster, api)


def prepare(api: client.ApiClient, namespace: str, *experiments: str, replicas: int = 3) -> None:
    """What a platform team has in place: the Litmus ChaosExperiments, the chaos ServiceAccount, a workload."""
    for name in experiments:
        Litmus(api, namespace).create(EXPERIMENTS, litmus_experiment(name))
    core = client.CoreV1Api(api)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=SA))
    )
    client.AppsV1Api(api).create_namespaced_deployment(namespace, deployment("shop", replicas=replicas))
    wait_for(lambda: len(ready_pods(api, namespace, "shop")) == replicas, timeout=60, message="Ready pods")


@contextlib.contextmanager
def simulated_litmus(
    api: client.ApiClient, namespace: str, outcome: Outcome = Outcome.PASS, scale: float = 0.05
) -> Iterator[LitmusSimulator]:
    sim = LitmusSimulator(api, namespace, outcome, seconds_per_chaos_second=scale).start()
    try:
        yield sim
    finally:
        sim.stop()
        release_engines(api, namespace)
    assert not sim.errors, sim.errors


def finished(chaos: Chaos, name: str, timeout: float = 120) -> Body:
    run: Body = wait_for(
        lambda: chaos.finished_run(name), timeout=timeout, message=f"a finished run of {name}"
    )
    return run


def engines(api: client.ApiClient, namespace: str) -> list[Body]:
    try:
        items: list[Body] = client.CustomObjectsApi(api).list_namespaced_custom_object(
            GROUP, VERSION, namespace, ENGINES
        )["items"]
    except ApiException as exc:
        if exc.status == 404:
            return []
        raise
    return items


# --- prerequisites (first: the module installs the CRDs only after these) -----------------------


def test_litmus_not_installed_ends_errored_with_what_to_install(
    cluster: Cluster, api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    uninstall(cluster, api)
    prepare(api, namespace)
    chaos = Chaos(api, namespace)
    chaos.create_experiment(
        experiment("lat", app="shop", fault=litmus_fault("pod-network-latency", NETWORK_LATENCY="300"))
    )
    status = finished(chaos, "lat", timeout=60)["status"]
    assert status["phase"] == "Errored" and status["reason"] == "LitmusNotInstalled", status
    assert "chaosengines.litmuschaos.io" in status["message"] and "Install Litmus 3.x" in status["message"]
    assert not status.get("targets"), "nothing was chosen, nothing was injected"
    # not retried: it stays Errored, and the experiment made no second run
    assert len(chaos.runs("lat")) == 1


def test_missing_litmus_experiment_ends_errored_and_creates_no_engine(
    api: client.ApiClient, namespace: str, operator: OperatorProcess, litmus_crds: bool
) -> None:
    prepare(api, namespace)  # no Litmus ChaosExperiment in the namespace
    chaos = Chaos(api, namespace)
    chaos.create_experiment(experiment("kill", app="shop", fault=litmus_fault("pod-delete")))
    status = finished(chaos, "kill", timeout=60)["status"]
    assert status["phase"] == "Errored" and status["reason"] == "LitmusExperimentNotFound", status
    assert f"does not exist in namespace {namespace}" in status["message"]
    assert "faults/kubernetes/pod-delete/fault.yaml" in status["message"]  # the exact thing to install
    assert engines(api, namespace) == []


def test_missing_chaos_service_account_ends_errored(
    api: client.ApiClient, namespace: str, operator: OperatorProcess, litmus_crds: bool
) -> None:
    prepare(api, namespace, "pod-delete")
    chaos = Chaos(api, namespace)
    body = experiment("kill", app="shop", fault=litmus_fault("pod-delete"))
    body["spec"]["fault"]["litmus"]["chaosServiceAccount"] = "nobody"
    chaos.create_experiment(body)
    status = finished(chaos, "kill", timeout=60)["status"]
    assert status["phase"] == "Errored" and status["reason"] == "ChaosServiceAccountNotFound", status
    assert engines(api, namespace) == []


# --- runs -----------------------------------------------------------------------------------


def test_pass_pod_delete_through_litmus(
    api: client.ApiClient, namespace: str, operator: OperatorProcess, litmus_crds: bool
) -> None:
    prepare(api, namespace, "pod-delete")
    before = {p.metadata.name: p.metadata.uid for p in ready_pods(api, namespace, "shop")}
    chaos = Chaos(api, namespace)
    with simulated_litmus(api, namespace) as sim, EngineEvents(api, namespace) as seen:
        chaos.create_experiment(
            experiment(
                "kill", app="shop", mode="fixed", value=2, fault=litmus_fault("pod-delete", FORCE="true")
            )
        )
        run = finished(chaos, "kill")
    status = run["status"]
    assert status["phase"] == "Completed" and status["verdict"] == "Passed", status
    targets = [t["name"] for t in status["targets"]]
    assert len(targets) == 2 and set(targets) <= set(before)
    engine_name = run["metadata"]["name"]
    reported = status["engine"]
    assert reported["name"] == "litmus" and reported["object"] == engine_name
    assert reported["verdict"] == "Pass" and reported["details"]["probeSuccessPercentage"] == "100"
    assert reported["details"]["result"] == f"{engine_name}-pod-delete"
    assert status["recoverySeconds"] is not None
    # exactly one engine, with the chosen pods, the duration and the run's labels
    assert list(sim.seen.values()) == [engine_name] and seen.added() == 1
    # Litmus (simulated) really deleted those pods; their Deployment replaced them
    after = {p.metadata.name for p in ready_pods(api, namespace, "shop")}
    assert not set(targets) & after
    # cleaned up: engine and result removed once the verdict is in the run's status
    assert engines(api, namespace) == []
    assert Litmus(api, namespace).get(RESULTS, f"{engine_name}-pod-delete") is None


def test_engine_spec_carries_targets_duration_and_parameters(
    api: client.ApiClient, namespace: str, operator: OperatorProcess, litmus_crds: bool
) -> None:
    prepare(api, namespace, "pod-network-latency")
    chaos = Chaos(api, namespace)
    with simulated_litmus(api, namespace, Outcome.HANG):
        chaos.create_experiment(
            experiment(
                "lat",
                app="shop",
                mode="one",
                fault={
                    **litmus_fault("pod-network-latency", duration="45s", NETWORK_LATENCY="300", JITTER="10"),
                    "litmus": {
                        **litmus_fault("pod-network-latency", NETWORK_LATENCY="300", JITTER="10")["litmus"],
                        "probes": [PROBE],
                    },
                },
            )
        )
        engine = wait_for(lambda: next(iter(engines(api, namespace)), None), timeout=60, message="an engine")
        run = chaos.runs("lat")[0]
        spec = engine["spec"]
        env = {e["name"]: e["value"] for e in spec["experiments"][0]["spec"]["components"]["env"]}
        assert env == {
            "NETWORK_LATENCY": "300",
            "JITTER": "10",
            "TOTAL_CHAOS_DURATION": "45",
            "TARGET_PODS": wait_for(
                lambda: ",".join(
                    t["name"]
                    for t in (chaos.get("chaosruns", run["metadata"]["name"]).get("status") or {}).get(
                        "targets"
                    )
                    or []
                ),
                timeout=30,
                message="recorded targets",
            ),
            "PODS_AFFECTED_PERC": "100",
        }
        assert spec["appinfo"] == {"appns": namespace, "applabel": "app=shop", "appkind": "deployment"}
        assert spec["experiments"][0]["spec"]["probe"] == [PROBE]  # passed to Litmus as written
        assert spec["chaosServiceAccount"] == SA and spec["engineState"] == "active"
        labels = engine["metadata"]["labels"]
        assert labels["aftershock.dev/run"] == run["metadata"]["uid"]
        assert engine["metadata"]["ownerReferences"][0]["uid"] == run["metadata"]["uid"]
        chaos.delete("chaosexperiments", "lat")  # aborts the run: the engine is stopped and removed
        wait_for(lambda: engines(api, namespace) == [], timeout=60, message="the engine removed")


def test_fail_with_probe_failures_is_a_high_finding(
    api: client.ApiClient, namespace: str, operator: OperatorProcess, litmus_crds: bool
) -> None:
    prepare(api, namespace, "pod-network-latency")
    chaos = Chaos(api, namespace)
    with simulated_litmus(api, namespace, Outcome.FAIL_PROBES):
        chaos.create_experiment(
            experiment("lat", app="shop", fault=litmus_fault("pod-network-latency", NETWORK_LATENCY="300"))
        )
        status = finished(chaos, "lat")["status"]
    assert status["phase"] == "Completed" and status["verdict"] == "Failed", status
    assert status["severity"] == "high"
    (finding,) = [f for f in status["findings"] if f["title"] == "Litmus verdict: Fail"]
    assert finding["severity"] == "high" and "probe success 50%" in finding["detail"]
    reported = status["engine"]
    assert reported["verdict"] == "Fail" and reported["details"]["probeSuccessPercentage"] == "50"
    assert reported["phase"] == "Completed_With_Probe_Failure"
    assert engines(api, namespace) == []


def test_litmus_error_ends_errored_with_its_error_output(
    api: client.ApiClient, namespace: str, operator: OperatorProcess, litmus_crds: bool
) -> None:
    prepare(api, namespace, "pod-cpu-hog")
    chaos = Chaos(api, namespace)
    with simulated_litmus(api, namespace, Outcome.ERROR):
        chaos.create_experiment(
            experiment("hog", app="shop", fault=litmus_fault("pod-cpu-hog", CPU_LOAD="80"))
        )
        status = finished(chaos, "hog")["status"]
    assert status["phase"] == "Errored" and status["reason"] == "LitmusError", status
    assert "TARGET_SELECTION_ERROR" in status["message"]
    assert "TARGET_SELECTION_ERROR" in status["engine"]["details"]["errorOutput"]
    assert engines(api, namespace) == []


def test_an_engine_that_never_completes_is_stopped_at_the_deadline_and_cleaned_up(
    api: client.ApiClient, namespace: str, operator: OperatorProcess, litmus_crds: bool
) -> None:
    prepare(api, namespace, "pod-network-loss")
    chaos = Chaos(api, namespace)
    with simulated_litmus(api, namespace, Outcome.HANG) as sim, EngineEvents(api, namespace) as seen:
        chaos.create_experiment(
            experiment(
                "loss",
                app="shop",
                objective="2s",
                timeout="4s",
                fault=litmus_fault("pod-network-loss", duration="2s", NETWORK_PACKET_LOSS_PERCENTAGE="50"),
            )
        )
        run = finished(chaos, "loss", timeout=120)
        status = run["status"]
        assert status["phase"] == "Aborted" and status["reason"] == "DeadlineExceeded", status
        assert engines(api, namespace) == []
        assert Litmus(api, namespace).get(RESULTS, f"{run['metadata']['name']}-pod-network-loss") is None
        assert len(sim.seen) == 1
    # the abort was Litmus's own: engineState stop (merge patch) while running, Litmus stopped it,
    # and only then was the engine deleted
    kinds = [(e[0], e[1], e[2], e[4]) for e in seen.events]
    stop = next(i for i, e in enumerate(kinds) if e[1] == "stop" and e[2] == "initialized")
    stopped = next(i for i, e in enumerate(kinds) if e[2] == "stopped")
    deleted = next(i for i, e in enumerate(kinds) if e[0] == "DELETED")
    assert stop < stopped < deleted, kinds
    assert not any(e[3] for e in kinds[:stopped]), "nothing was deleted before Litmus stopped"


def test_a_stuck_litmus_finalizer_is_removed_when_litmus_is_gone_and_the_run_says_so(
    api: client.ApiClient, namespace: str, operator: OperatorProcess, litmus_crds: bool
) -> None:
    prepare(api, namespace, "pod-network-corruption")
    chaos = Chaos(api, namespace)
    with simulated_litmus(api, namespace, Outcome.DEAD), EngineEvents(api, namespace) as seen:
        chaos.create_experiment(
            experiment(
                "corrupt",
                app="shop",
                objective="2s",
                timeout="4s",
                fault=litmus_fault("pod-network-corruption", duration="2s"),
            )
        )
        run = finished(chaos, "corrupt", timeout=150)
    status = run["status"]
    assert status["phase"] == "Aborted", status
    (note,) = [f for f in status["findings"] if f["title"] == "Litmus finalizer removed"]
    assert note["severity"] == "low" and "evidently" in note["detail"] and FINALIZER in note["detail"]
    assert engines(api, namespace) == []
    # Litmus's finalizer was on the engine until aftershock removed it, after asking Litmus to stop
    assert any(FINALIZER in e[3] and e[4] for e in seen.events), seen.events
    assert any(e[1] == "stop" for e in seen.events)


def test_operator_killed_mid_engine_makes_no_second_engine_and_records_the_result(
    cluster: Cluster, api: client.ApiClient, solo_namespace: str, tmp_path: Path, litmus_crds: bool
) -> None:
    prepare(api, solo_namespace, "pod-memory-hog")
    chaos = Chaos(api, solo_namespace)
    args = ["--namespace", solo_namespace, "--webhook-port", "0", "--sweep-interval", "2"]
    first: OperatorProcess | None = start_operator(
        cluster.kubeconfig, tmp_path / "first.log", *args, "--identity", "first", env=LITMUS_TIMING
    )
    second: OperatorProcess | None = None
    try:
        # 20 chaos seconds at 1 s each: long enough to kill the operator while Litmus runs
        with (
            simulated_litmus(api, solo_namespace, Outcome.PASS, scale=1.0) as sim,
            EngineEvents(api, solo_namespace) as seen,
        ):
            chaos.create_experiment(
                experiment("hog", app="shop", fault=litmus_fault("pod-memory-hog", MEMORY_CONSUMPTION="100"))
            )
            wait_for(
                lambda: (
                    any((r.get("status") or {}).get("phase") == "Observing" for r in chaos.runs("hog"))
                    and engines(api, solo_namespace)
                ),
                timeout=60,
                message="the engine running",
            )
            assert first is not None
            first.stop(signal.SIGKILL)
            first = None
            second = start_operator(
                cluster.kubeconfig, tmp_path / "second.log", *args, "--identity", "second", env=LITMUS_TIMING
            )
            run = finished(chaos, "hog", timeout=120)
            assert len(sim.seen) == 1 and seen.added() == 1, "one engine, never a second"
        status = run["status"]
        assert status["phase"] == "Completed" and status["verdict"] == "Passed", status
        assert status["claimedBy"] == "second"
        assert status["engine"]["verdict"] == "Pass"
    finally:
        for op in (first, second):
            if op is not None:
                op.stop()


# --- the policy applies as to native faults -------------------------------------------------------


def test_policy_applies_to_litmus_and_node_experiments_are_node_faults(
    api: client.ApiClient, namespace: str, operator: OperatorProcess, litmus_crds: bool
) -> None:
    prepare(api, namespace, "node-drain", "node-cpu-hog")
    chaos = Chaos(api, namespace)

    def refused(body: Body, words: str) -> None:
        with pytest.raises(ApiException) as info:
            chaos.create_experiment(body)
        assert words in (info.value.body or ""), info.value.body

    drain = experiment("drain", app="shop", fault=litmus_fault("node-drain"))
    with extra_policy(api, allowedFaults=["podDelete", "litmus"]) as pods_only:
        refused(drain, "litmusNode is a node fault")
        refused(drain, pods_only)
    with extra_policy(api, allowedFaults=["podDelete"]) as no_litmus:
        refused(experiment("lat", app="shop", fault=litmus_fault("pod-network-latency")), no_litmus)
    # node experiments name nodes: the node of the chosen pod, and maxNodes caps them
    with simulated_litmus(api, namespace):
        chaos.create_experiment(drain)
        run = finished(chaos, "drain", timeout=60)
        assert run["status"]["phase"] == "Completed", run["status"]
        (target,) = run["status"]["targets"]
        assert target["kind"] == "Node"
        assert target["name"] in {p.spec.node_name for p in ready_pods(api, namespace, "shop")} | {
            p.spec.node_name for p in client.CoreV1Api(api).list_namespaced_pod(namespace).items
        }
        with extra_policy(
            api, allowedFaults=["litmusNode"], blastRadius={"maxPodsPercent": 100, "maxNodes": 0}
        ) as no_nodes:
            chaos.create_experiment(experiment("hog", app="shop", fault=litmus_fault("node-cpu-hog")))
            status = finished(chaos, "hog", timeout=60)["status"]
    assert status["phase"] == "Skipped" and status["reason"] == "BlastRadiusExceeded", status
    assert no_nodes in status["message"] and "node" in status["message"]
    assert engines(api, namespace) == []


# --- provisioning the chaosServiceAccount -------------------------------------------------------


def test_provisioned_service_account_has_what_the_experiment_needs(
    api: client.ApiClient, namespace: str, operator: OperatorProcess, litmus_crds: bool
) -> None:
    from aftershock.core import litmus

    prepare(api, namespace, "pod-network-partition")
    chaos = Chaos(api, namespace)
    provisioned = {
        "duration": "10s",
        "litmus": {"experiment": "pod-network-partition", "provisionServiceAccount": True},
    }
    with simulated_litmus(api, namespace), EngineEvents(api, namespace):
        chaos.create_experiment(experiment("cut", app="shop", fault=provisioned))
        engine = wait_for(lambda: next(iter(engines(api, namespace)), None), timeout=60, message="an engine")
        name = "aftershock-litmus-pod-network-partition"
        assert engine["spec"]["chaosServiceAccount"] == name
        status = finished(chaos, "cut")["status"]
    assert status["phase"] == "Completed", status
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    assert (
        core.read_namespaced_service_account(name, namespace).metadata.labels["app.kubernetes.io/managed-by"]
        == "aftershock"
    )
    role = rbac.read_namespaced_role(name, namespace)
    granted = {(tuple(r.api_groups), tuple(r.resources)): set(r.verbs) for r in role.rules}
    for needed in litmus.rules_for("pod-network-partition"):
        assert set(needed["verbs"]) <= granted[(tuple(needed["apiGroups"]), tuple(needed["resources"]))]
    binding = rbac.read_namespaced_role_binding(name, namespace)
    assert binding.role_ref.name == name and binding.subjects[0].name == name


def test_provisioning_is_refused_for_node_experiments_and_needs_one_account(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    chaos = Chaos(api, namespace)
    for litmus_spec, words in (
        ({"experiment": "node-drain", "provisionServiceAccount": True}, "pod experiments only"),
        ({"experiment": "pod-delete"}, "exactly one of chaosServiceAccount"),
        (
            {"experiment": "pod-delete", "chaosServiceAccount": SA, "provisionServiceAccount": True},
            "exactly one",
        ),
    ):
        with pytest.raises(ApiException) as info:
            chaos.create_experiment(
                experiment("x", app="shop", fault={"duration": "10s", "litmus": litmus_spec})
            )
        assert info.value.status == 422 and words in (info.value.body or ""), info.value.body


def test_provisioning_needs_an_author_who_could_grant_it_directly(
    cluster: Cluster, api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "tenant"}})
    rules = [
        {
            "apiGroups": ["aftershock.dev"],
            "resources": ["chaosexperiments"],
            "verbs": ["get", "list", "create"],
        },
        # the damage of a Litmus fault: starting a ChaosEngine (every author is checked for it)
        {"apiGroups": ["litmuschaos.io"], "resources": ["chaosengines"], "verbs": ["create"]},
    ]
    rbac.create_namespaced_role(namespace, {"metadata": {"name": "tenant"}, "rules": rules})
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "tenant"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "tenant"},
            "subjects": [{"kind": "ServiceAccount", "name": "tenant", "namespace": namespace}],
        },
    )
    as_tenant = client.CustomObjectsApi(
        cluster.api_client(impersonate=f"system:serviceaccount:{namespace}:tenant")
    )
    provisioned = {"duration": "10s", "litmus": {"experiment": "pod-delete", "provisionServiceAccount": True}}
    with pytest.raises(ApiException) as info:
        as_tenant.create_namespaced_custom_object(
            "aftershock.dev",
            "v1alpha1",
            namespace,
            "chaosexperiments",
            experiment("grant", app="shop", fault=provisioned),
        )
    assert info.value.status == 403
    assert "may not create serviceaccounts" in (info.value.body or ""), info.value.body
    # with a ServiceAccount of its own naming, the same tenant is admitted (Litmus's rights are Litmus's)
    named = {"duration": "10s", "litmus": {"experiment": "pod-delete", "chaosServiceAccount": SA}}
    created = as_tenant.create_namespaced_custom_object(
        "aftershock.dev",
        "v1alpha1",
        namespace,
        "chaosexperiments",
        experiment("named", app="shop", fault=named),
    )
    assert created["metadata"]["name"] == "named"


def test_the_sweeper_stops_and_removes_an_engine_whose_run_is_gone(
    api: client.ApiClient, namespace: str, operator: OperatorProcess, litmus_crds: bool
) -> None:
    from aftershock.core import litmus

    prepare(api, namespace, "pod-delete", replicas=1)
    orphan = litmus.engine_manifest(
        litmus.EngineRequest(
            name="orphan",
            namespace=namespace,
            experiment="pod-delete",
            env={},
            duration_seconds=600,
            service_account=SA,
            app_kind="Deployment",
            app_label="app=shop",
            target_pods=[],
            labels={"aftershock.dev/run": "no-such-run", "aftershock.dev/run-namespace": namespace},
        )
    )
    with simulated_litmus(api, namespace, Outcome.HANG), EngineEvents(api, namespace) as seen:
        Litmus(api, namespace).create(ENGINES, orphan)
        wait_for(lambda: engines(api, namespace) == [], timeout=60, message="the orphaned engine removed")
    states = [e[1] for e in seen.events]
    assert "stop" in states, seen.events  # Litmus was asked to stop it, not just had it deleted


def test_the_kill_switch_stops_a_running_engine(
    api: client.ApiClient, namespace: str, operator: OperatorProcess, litmus_crds: bool
) -> None:
    prepare(api, namespace, "pod-network-duplication")
    chaos = Chaos(api, namespace)
    with simulated_litmus(api, namespace, Outcome.HANG), EngineEvents(api, namespace) as seen:
        chaos.create_experiment(
            experiment(
                "dup",
                app="shop",
                fault=litmus_fault("pod-network-duplication", duration="10m"),
                timeout="10m",
            )
        )
        wait_for(
            lambda: any((r.get("status") or {}).get("phase") == "Observing" for r in chaos.runs("dup")),
            timeout=60,
            message="the run observing",
        )
        # Litmus has taken the engine up (an engine it never saw is simply deleted, nothing to stop)
        Litmus(api, namespace).engine_when(chaos.runs("dup")[0]["metadata"]["name"], "initialized")
        with extra_policy(api, suspend=True):
            status = finished(chaos, "dup", timeout=60)["status"]
    assert status["phase"] == "Aborted" and status["reason"] == "PolicySuspended", status
    assert engines(api, namespace) == []
    assert any(e[1] == "stop" and e[2] == "initialized" for e in seen.events), seen.events


def test_an_engine_litmus_never_takes_up_is_aborted_and_removed(
    api: client.ApiClient, namespace: str, operator: OperatorProcess, litmus_crds: bool
) -> None:
    prepare(api, namespace, "pod-delete")  # the CRDs are there, but no Litmus operator answers
    chaos = Chaos(api, namespace)
    with EngineEvents(api, namespace) as seen:
        chaos.create_experiment(
            experiment("kill", app="shop", fault=litmus_fault("pod-delete", duration="5m"), timeout="5m")
        )
        status = finished(chaos, "kill", timeout=90)["status"]
    assert status["phase"] == "Aborted" and status["reason"] == "LitmusNotResponding", status
    assert "is the Litmus operator running?" in status["message"]
    assert engines(api, namespace) == []
    assert seen.added() == 1 and any(e[0] == "DELETED" for e in seen.events)
