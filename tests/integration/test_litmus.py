"""The Litmus engine end to end on the real API server with real LitmusChaos: its CRDs, the ChaosHub's
ChaosExperiments (kubectl apply, as a user installs them), its chaos-operator as a local process,
and its chaos-runner and litmus-go experiments run by the pod executor (tests/support/pod_executor.py)
for the pods Litmus creates. Only litmus-go's helpers (network, stress: they need a container
runtime or tc) are a stand-in (tests/support/litmus/helper_stand_in.py).

Covered: pod-delete through Litmus (the real experiment deletes exactly the chosen pods; its
ChaosResult is the verdict), node-drain through Litmus (the real experiment's `kubectl drain`
cordons and empties exactly the node of the chosen pod, then uncordons it), Fail from real probe failures, Error from Litmus (a helper failing),
an engine that never completes (deadline → engineState stop → clean up), Litmus not installed,
the ChaosExperiment or ServiceAccount missing, a stuck finalizer with Litmus's operator stopped,
the operator killed mid-engine (no second engine, result still recorded), a node experiment's
target, the policy, provisioning, the sweeper, the kill switch and an engine Litmus never takes up.
"""

from __future__ import annotations

import contextlib
import http.server
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from aftershock.core.litmus import rules_for
from tests.integration.conftest import LITMUS_TIMING
from tests.support.chaos import Chaos, experiment
from tests.support.cluster import Cluster
from tests.support.litmus.crds import (
    ENGINES,
    FINALIZER,
    GROUP,
    RESULTS,
    VERSION,
    install,
    install_hub,
    uninstall,
)
from tests.support.litmus.objects import Litmus
from tests.support.litmus.processes import Binaries, ChaosOperator, LitmusPrograms, litmus_executor
from tests.support.litmus.rbac import grant_in_namespace, granted_cluster_wide, namespaced_experiments
from tests.support.nodes import CordonWatch, kwok_nodes
from tests.support.npwatch import PolicyCreations
from tests.support.operator import OperatorProcess, solo_operator, start_operator
from tests.support.pod_executor import PodExecutor
from tests.support.policies import OPT_IN, apply_policy, extra_policy, permissive
from tests.support.waiting import wait_for
from tests.support.workloads import deployment, ready_pods

Body = dict[str, Any]
SA = "litmus-admin"
TERMINAL = {"Completed", "Aborted", "Skipped", "Errored"}
# one pass, at once: Litmus's pod-delete deletes every target, waits CHAOS_INTERVAL, checks recovery
QUICK_DELETE = {"SEQUENCE": "parallel", "CHAOS_INTERVAL": "1", "FORCE": "true"}
PROVISIONED = "aftershock-litmus-pod-network-partition"
DRAIN_POOL = "aftershock.dev/drain-test"  # label and taint of the nodes a drain test has to itself


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


@pytest.fixture(scope="module")
def binaries() -> Binaries:
    return Binaries.from_cache()


@pytest.fixture(scope="module")
def executor(
    cluster: Cluster, binaries: Binaries, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[PodExecutor, LitmusPrograms]]:
    """Litmus's pods run for real, for the whole module: one watch, one loop."""
    pods, programs = litmus_executor(cluster.kubeconfig, tmp_path_factory.mktemp("litmus-pods"), binaries)
    with pods:
        yield pods, programs


@pytest.fixture(scope="module")
def chaos_operator(
    cluster: Cluster,
    litmus_crds: bool,
    binaries: Binaries,
    executor: tuple[PodExecutor, LitmusPrograms],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ChaosOperator]:
    """The real chaos-operator, one process for the module (a test that stops it gets a new one)."""
    op = ChaosOperator(
        binaries.operator, cluster.kubeconfig, tmp_path_factory.mktemp("litmus") / "operator.log"
    )
    op.start()
    yield op
    op.stop()


@pytest.fixture
def litmus(
    chaos_operator: ChaosOperator,
    executor: tuple[PodExecutor, LitmusPrograms],
    request: pytest.FixtureRequest,
) -> Iterator[ChaosOperator]:
    """Real Litmus for one test; on failure, what its processes logged."""
    pods, programs = executor
    programs.helper_mode = "pass"
    chaos_operator.start()
    first, failed = len(pods.started), request.session.testsfailed
    yield chaos_operator
    if request.session.testsfailed > failed:
        print(f"Litmus processes of this test:\n{pods.report(since=first)}")
        print(f"chaos-operator log (last lines):\n{chaos_operator.tail()}")
    chaos_operator.start()  # a test that stopped it: Litmus releases what it still holds


def prepare(
    cluster: Cluster,
    api: client.ApiClient,
    namespace: str,
    *,
    hub: bool = True,
    replicas: int = 3,
    wait: bool = True,
    workload: Body | None = None,
) -> None:
    """What a platform team has in place: the ChaosHub's experiments, the chaos ServiceAccount with
    their namespaced permissions, a workload (`shop`, or `workload`: a Deployment named shop)."""
    if hub:
        install_hub(cluster, namespace)
    core = client.CoreV1Api(api)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=SA))
    )
    # what the hub's namespaced experiments need (Litmus's processes act with exactly this)
    grant_in_namespace(api, namespace, SA, namespaced_experiments())
    client.AppsV1Api(api).create_namespaced_deployment(
        namespace, workload or deployment("shop", replicas=replicas)
    )
    if wait:
        wait_for(
            lambda: len(ready_pods(api, namespace, "shop")) == replicas, timeout=60, message="Ready pods"
        )


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


def ran(pods: PodExecutor, namespace: str, program: str) -> int:
    """How many processes the executor started in `namespace` whose command line names `program`."""
    return sum(1 for r in pods.started if r.namespace == namespace and program in " ".join(r.argv))


@contextlib.contextmanager
def http_endpoints() -> Iterator[str]:
    """A local HTTP server for Litmus's httpProbes (the experiment runs as a local process):
    /up answers 200, /down 503. Yields its base URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/up" else 503)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


# --- prerequisites (first: the module installs the CRDs only after these) -----------------------


def test_litmus_not_installed_ends_errored_with_what_to_install(
    cluster: Cluster, api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    uninstall(cluster, api)
    prepare(cluster, api, namespace, hub=False)
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
    cluster: Cluster, api: client.ApiClient, namespace: str, operator: OperatorProcess, litmus: ChaosOperator
) -> None:
    prepare(cluster, api, namespace, hub=False)  # no Litmus ChaosExperiment in the namespace
    chaos = Chaos(api, namespace)
    chaos.create_experiment(experiment("kill", app="shop", fault=litmus_fault("pod-delete")))
    status = finished(chaos, "kill", timeout=60)["status"]
    assert status["phase"] == "Errored" and status["reason"] == "LitmusExperimentNotFound", status
    assert f"does not exist in namespace {namespace}" in status["message"]
    assert "faults/kubernetes/pod-delete/fault.yaml" in status["message"]  # the exact thing to install
    assert engines(api, namespace) == []


def test_a_parameter_the_installed_litmus_version_does_not_define_ends_errored(
    cluster: Cluster, api: client.ApiClient, namespace: str, operator: OperatorProcess, litmus: ChaosOperator
) -> None:
    """Version drift: the namespace's pod-network-latency (as an older hub had it) lacks JITTER, so
    Litmus would silently run without it; the run ends Errored naming it, and no engine is made."""
    prepare(cluster, api, namespace)
    objects = client.CustomObjectsApi(api)
    installed = objects.get_namespaced_custom_object(
        GROUP, VERSION, namespace, "chaosexperiments", "pod-network-latency"
    )
    env = installed["spec"]["definition"]["env"]
    assert any(e["name"] == "JITTER" for e in env), "the hub's definition has JITTER"
    installed["spec"]["definition"]["env"] = [e for e in env if e["name"] != "JITTER"]
    objects.replace_namespaced_custom_object(
        GROUP, VERSION, namespace, "chaosexperiments", "pod-network-latency", installed
    )
    chaos = Chaos(api, namespace)
    chaos.create_experiment(
        experiment(
            "lat", app="shop", fault=litmus_fault("pod-network-latency", NETWORK_LATENCY="300", JITTER="50")
        )
    )
    status = finished(chaos, "lat", timeout=60)["status"]
    assert status["phase"] == "Errored" and status["reason"] == "LitmusParameterUndefined", status
    assert "does not define JITTER" in status["message"], status["message"]
    assert engines(api, namespace) == []


def test_missing_chaos_service_account_ends_errored(
    cluster: Cluster, api: client.ApiClient, namespace: str, operator: OperatorProcess, litmus: ChaosOperator
) -> None:
    prepare(cluster, api, namespace)
    chaos = Chaos(api, namespace)
    body = experiment("kill", app="shop", fault=litmus_fault("pod-delete"))
    body["spec"]["fault"]["litmus"]["chaosServiceAccount"] = "nobody"
    chaos.create_experiment(body)
    status = finished(chaos, "kill", timeout=60)["status"]
    assert status["phase"] == "Errored" and status["reason"] == "ChaosServiceAccountNotFound", status
    assert engines(api, namespace) == []


# --- full Litmus runs, started together -------------------------------------------------------
# Litmus's own loops poll every 2 s, so a real run takes 30-45 s however little it does; these
# four runs share nothing, so the module starts them at once and each test asserts its own.


@dataclass
class Started:
    namespace: str
    chaos: Chaos
    before: dict[str, str]  # the workload's pods (name → uid) before the run
    events: EngineEvents | None = None
    policies: PolicyCreations | None = None
    placed: dict[str, str] | None = None  # drain: the workload's pods (name → node) before the run
    cordons: CordonWatch | None = None


@pytest.fixture(scope="module")
def concurrent_runs(
    cluster: Cluster,
    api: client.ApiClient,
    operator: OperatorProcess,
    chaos_operator: ChaosOperator,
    executor: tuple[PodExecutor, LitmusPrograms],
) -> Iterator[dict[str, Started]]:
    """pod-delete, Fail from probes, Error, provisioning and node-drain, each in its own namespace.
    The drain's workload runs on two nodes of its own that only it tolerates, so that the drain
    touches nothing of other tests' and Litmus's own pods never run where they would be evicted."""
    programs = executor[1]
    chaos_operator.start()
    core = client.CoreV1Api(api)
    made: dict[str, Started] = {}
    for scenario in ("delete", "probes", "error", "provision", "drain"):
        ns = f"t-litmus-{scenario}-{uuid.uuid4().hex[:6]}"
        core.create_namespace(
            client.V1Namespace(
                metadata=client.V1ObjectMeta(name=ns, labels={"aftershock.dev/test": "true", **OPT_IN})
            )
        )
        made[scenario] = Started(ns, Chaos(api, ns), {})
    pool = made["drain"].namespace
    taint = client.V1Taint(key=DRAIN_POOL, value=pool, effect="NoSchedule")
    drain_nodes = kwok_nodes(api, [f"{pool}-a", f"{pool}-b"], labels={DRAIN_POOL: pool}, taints=[taint])
    drain_nodes.__enter__()
    drain_rights = granted_cluster_wide(api, pool, SA, ["node-drain"])
    drain_rights.__enter__()
    replicas = {name: 3 for name in made} | {"drain": 4}
    for scenario, started in made.items():
        workload = None
        if scenario == "drain":
            workload = deployment(
                "shop",
                replicas=4,
                node_selector={DRAIN_POOL: pool},
                tolerations=[{"key": DRAIN_POOL, "operator": "Equal", "value": pool, "effect": "NoSchedule"}],
            )
        prepare(cluster, api, started.namespace, wait=False, workload=workload)
    for scenario, started in made.items():
        count = replicas[scenario]

        def all_ready(ns: str = started.namespace, count: int = count) -> bool:
            return len(ready_pods(api, ns, "shop")) == count

        wait_for(all_ready, timeout=60, message="Ready pods")
        started.before = {p.metadata.name: p.metadata.uid for p in ready_pods(api, started.namespace, "shop")}
    made["drain"].placed = {p.metadata.name: p.spec.node_name for p in ready_pods(api, pool, "shop")}
    made["drain"].cordons = CordonWatch(api).__enter__()
    programs.helper_modes[made["error"].namespace] = "fail"
    one_engine = EngineEvents(api, made["delete"].namespace).__enter__()
    made["provision"].policies = PolicyCreations(api, made["provision"].namespace).__enter__()
    endpoints = http_endpoints()
    base = endpoints.__enter__()

    def probe(name: str, path: str) -> Body:
        return {
            "name": name,
            "type": "httpProbe",
            "mode": "EOT",
            "runProperties": {"probeTimeout": "2s", "interval": "1s", "attempt": 1},
            "httpProbe/inputs": {
                "url": f"{base}{path}",
                "method": {"get": {"criteria": "==", "responseCode": "200"}},
            },
        }

    made["delete"].chaos.create_experiment(
        experiment(
            "kill", app="shop", mode="fixed", value=2, fault=litmus_fault("pod-delete", "2s", **QUICK_DELETE)
        )
    )
    probed = litmus_fault("pod-delete", "2s", **QUICK_DELETE)
    probed["litmus"]["probes"] = [probe("shop-up", "/up"), probe("checkout-up", "/down")]
    made["probes"].chaos.create_experiment(experiment("kill", app="shop", mode="one", fault=probed))
    # the stress helper fails as it would on a node without a container runtime
    made["error"].chaos.create_experiment(
        experiment("hog", app="shop", mode="one", fault=litmus_fault("pod-cpu-hog", duration="5s"))
    )
    # the provisioned Role as an earlier aftershock made it: without the ReplicaSet lookup
    # litmus-go needs (a run with it alone ends Errored: Forbidden) — the run brings it up to date
    client.RbacAuthorizationV1Api(api).create_namespaced_role(
        made["provision"].namespace,
        {
            "metadata": {"name": PROVISIONED, "labels": {"app.kubernetes.io/managed-by": "aftershock"}},
            "rules": [r for r in rules_for("pod-network-partition") if "replicasets" not in r["resources"]],
        },
    )
    provisioned = {
        "duration": "3s",
        "litmus": {"experiment": "pod-network-partition", "provisionServiceAccount": True},
    }
    made["provision"].chaos.create_experiment(experiment("cut", app="shop", fault=provisioned))
    made["drain"].chaos.create_experiment(
        experiment("drain", app="shop", mode="one", fault=litmus_fault("node-drain", "5s"))
    )
    made["delete"].events = one_engine
    try:
        yield made
    finally:
        endpoints.__exit__(None, None, None)
        one_engine.__exit__()
        made["provision"].policies.__exit__(None, None, None)
        made["drain"].cordons.__exit__()
        for started in made.values():
            core.delete_namespace(started.namespace, propagation_policy="Background")
        drain_nodes.__exit__(None, None, None)
        drain_rights.__exit__(None, None, None)


@pytest.fixture
def logs_of(
    executor: tuple[PodExecutor, LitmusPrograms], request: pytest.FixtureRequest
) -> Iterator[list[str]]:
    """Namespaces whose Litmus processes a failing test shows."""
    namespaces: list[str] = []
    failed = request.session.testsfailed
    yield namespaces
    if request.session.testsfailed > failed:
        for ns in namespaces:
            print(f"Litmus processes in {ns}:\n{executor[0].report(namespace=ns)}")


def test_pod_delete_through_litmus_deletes_exactly_the_chosen_pods(
    api: client.ApiClient,
    concurrent_runs: dict[str, Started],
    executor: tuple[PodExecutor, LitmusPrograms],
    logs_of: list[str],
) -> None:
    started = concurrent_runs["delete"]
    logs_of.append(started.namespace)
    namespace, before = started.namespace, started.before
    run = finished(started.chaos, "kill")
    status = run["status"]
    assert status["phase"] == "Completed" and status["verdict"] == "Passed", status
    targets = {t["name"] for t in status["targets"]}
    assert len(targets) == 2 and targets <= set(before)
    engine_name = run["metadata"]["name"]
    reported = status["engine"]
    assert reported["name"] == "litmus" and reported["object"] == engine_name
    assert reported["verdict"] == "Pass" and reported["details"]["probeSuccessPercentage"] == "100"
    assert reported["details"]["result"] == f"{engine_name}-pod-delete"
    assert status["recoverySeconds"] is not None
    # Litmus's own processes did it: its runner pod ran chaos-runner, whose Job ran pod-delete (both
    # are stopped when the engine goes, once the verdict is in)
    pods, _ = executor
    assert ran(pods, namespace, "chaos-runner") == 1 and ran(pods, namespace, "-name pod-delete") == 1
    # exactly the chosen pods are gone; the one aftershock did not choose is untouched
    now = {
        p.metadata.name: p.metadata.uid for p in client.CoreV1Api(api).list_namespaced_pod(namespace).items
    }
    assert not targets & set(now)
    assert {n: u for n, u in before.items() if n not in targets}.items() <= now.items()
    assert started.events is not None and started.events.added() == 1, "exactly one engine"
    # cleaned up: engine and result removed once the verdict is in the run's status
    assert engines(api, namespace) == []
    assert Litmus(api, namespace).get(RESULTS, f"{engine_name}-pod-delete") is None


def test_node_drain_through_litmus_drains_exactly_the_node_of_the_chosen_pod(
    api: client.ApiClient,
    concurrent_runs: dict[str, Started],
    executor: tuple[PodExecutor, LitmusPrograms],
    logs_of: list[str],
) -> None:
    started = concurrent_runs["drain"]
    logs_of.append(started.namespace)
    namespace, placed, cordons = started.namespace, started.placed, started.cordons
    assert placed is not None and cordons is not None
    run = finished(started.chaos, "drain")
    status = run["status"]
    assert status["phase"] == "Completed" and status["verdict"] == "Passed", status
    (target,) = status["targets"]
    assert target["kind"] == "Node" and target["name"] in set(placed.values()), target
    drained = target["name"]
    assert status["engine"]["verdict"] == "Pass", status["engine"]
    # the real experiment ran `kubectl drain` on that node: it alone was cordoned, then uncordoned
    pods, _ = executor
    assert ran(pods, namespace, "-name node-drain") == 1
    assert cordons.cordoned() == {drained}, cordons.changes
    assert cordons.changes[-1] == (drained, False), cordons.changes
    assert not client.CoreV1Api(api).read_node(drained).spec.unschedulable
    # every pod that was on it was evicted, the others untouched; the workload is whole again
    now = {p.metadata.name: p for p in client.CoreV1Api(api).list_namespaced_pod(namespace).items}
    on_drained = {name for name, node in placed.items() if node == drained}
    assert on_drained and not on_drained & set(now), (placed, sorted(now))
    # ... as the run had listed and checked before Litmus started (the collateral rule): no one else's
    assert {d["name"] for d in status["displaced"]} == on_drained, status["displaced"]
    assert not any(d["collateral"] for d in status["displaced"])
    assert {n: u for n, u in started.before.items() if n not in on_drained}.items() <= {
        n: p.metadata.uid for n, p in now.items()
    }.items()
    assert status["recoverySeconds"] is not None
    assert len(ready_pods(api, namespace, "shop")) == len(placed)
    # Litmus's own pods ran elsewhere (the pool's taint keeps them off the drained node)
    litmus_nodes = {r.node for r in pods.started if r.namespace == namespace}
    assert len(litmus_nodes) >= 1 and "" not in litmus_nodes and drained not in litmus_nodes, litmus_nodes
    assert engines(api, namespace) == []


def test_fail_from_real_probe_failures_is_a_high_finding(
    api: client.ApiClient, concurrent_runs: dict[str, Started], logs_of: list[str]
) -> None:
    started = concurrent_runs["probes"]
    logs_of.append(started.namespace)
    status = finished(started.chaos, "kill")["status"]
    assert status["phase"] == "Completed" and status["verdict"] == "Failed", status
    assert status["severity"] == "high"
    (finding,) = [f for f in status["findings"] if f["title"] == "Litmus verdict: Fail"]
    assert finding["severity"] == "high" and "probe success 50%" in finding["detail"], finding
    assert "checkout-up" in finding["detail"] and "shop-up" not in finding["detail"], finding
    reported = status["engine"]
    assert reported["verdict"] == "Fail" and reported["details"]["probeSuccessPercentage"] == "50"
    assert reported["phase"] == "Completed_With_Probe_Failure"
    assert engines(api, started.namespace) == []


def test_litmus_error_ends_errored_with_its_error_output(
    api: client.ApiClient, concurrent_runs: dict[str, Started], logs_of: list[str]
) -> None:
    started = concurrent_runs["error"]
    logs_of.append(started.namespace)
    status = finished(started.chaos, "hog")["status"]
    assert status["phase"] == "Errored" and status["reason"] == "LitmusError", status
    assert "CONTAINER_RUNTIME_ERROR" in status["message"]
    assert "CONTAINER_RUNTIME_ERROR" in status["engine"]["details"]["errorOutput"]
    assert status["engine"]["verdict"] == "Error"
    assert engines(api, started.namespace) == []


def test_provisioned_partition_hits_only_the_chosen_pod_with_what_the_experiment_needs(
    api: client.ApiClient, concurrent_runs: dict[str, Started], logs_of: list[str]
) -> None:
    started = concurrent_runs["provision"]
    logs_of.append(started.namespace)
    namespace = started.namespace
    run = finished(started.chaos, "cut")
    status = run["status"]
    assert status["phase"] == "Completed" and status["engine"]["verdict"] == "Pass", status
    # exact scope: Litmus's policy selected the run's mark, which only the one chosen pod carried —
    # with the workload's label it would have cut off all three, with aftershock.dev/run Litmus's
    # own experiment pod as well (Litmus copies the engine's labels onto it); the mark is gone after
    (target,) = status["targets"]
    assert started.policies is not None
    assert started.policies.selected == [
        ({"aftershock.dev/target-of": run["metadata"]["uid"]}, {target["name"]})
    ]
    marked = (
        client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector="aftershock.dev/target-of").items
    )
    assert marked == [], [p.metadata.name for p in marked]
    name = PROVISIONED
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    assert (
        core.read_namespaced_service_account(name, namespace).metadata.labels["app.kubernetes.io/managed-by"]
        == "aftershock"
    )
    # Litmus ran with this Role alone (its processes act as the pod's ServiceAccount); the stale
    # Role left by "an earlier version" now holds today's rules
    role = rbac.read_namespaced_role(name, namespace)
    granted = {(tuple(r.api_groups), tuple(r.resources)): set(r.verbs) for r in role.rules}
    for needed in rules_for("pod-network-partition"):
        assert set(needed["verbs"]) <= granted[(tuple(needed["apiGroups"]), tuple(needed["resources"]))]
    binding = rbac.read_namespaced_role_binding(name, namespace)
    assert binding.role_ref.name == name and binding.subjects[0].name == name


# --- runs -----------------------------------------------------------------------------------


def test_engine_spec_carries_targets_duration_and_parameters(
    cluster: Cluster,
    api: client.ApiClient,
    namespace: str,
    operator: OperatorProcess,
    litmus: ChaosOperator,
    executor: tuple[PodExecutor, LitmusPrograms],
) -> None:
    prepare(cluster, api, namespace)
    executor[1].helper_mode = "hang"
    chaos = Chaos(api, namespace)
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
                for t in (chaos.get("chaosruns", run["metadata"]["name"]).get("status") or {}).get("targets")
                or []
            ),
            timeout=30,
            message="recorded targets",
        ),
        "PODS_AFFECTED_PERC": "100",
    }
    assert spec["appinfo"] == {"appns": namespace, "applabel": "app=shop", "appkind": "deployment"}
    assert spec["experiments"][0]["spec"]["probe"] == [PROBE]  # passed to Litmus as written
    assert spec["chaosServiceAccount"] == SA
    labels = engine["metadata"]["labels"]
    assert labels["aftershock.dev/run"] == run["metadata"]["uid"]
    assert engine["metadata"]["ownerReferences"][0]["uid"] == run["metadata"]["uid"]
    chaos.delete("chaosexperiments", "lat")  # aborts the run: the engine is stopped and removed
    wait_for(lambda: engines(api, namespace) == [], timeout=60, message="the engine removed")


def test_an_engine_that_never_completes_is_stopped_at_the_deadline_and_cleaned_up(
    cluster: Cluster,
    api: client.ApiClient,
    namespace: str,
    operator: OperatorProcess,
    litmus: ChaosOperator,
    executor: tuple[PodExecutor, LitmusPrograms],
) -> None:
    prepare(cluster, api, namespace)
    executor[1].helper_mode = "hang"
    chaos = Chaos(api, namespace)
    with EngineEvents(api, namespace) as seen:
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
        assert seen.added() == 1
    assert not any(f["title"] == "Litmus finalizer removed" for f in status.get("findings") or []), status
    # the abort was Litmus's own: engineState stop (merge patch) while running, Litmus stopped it,
    # and only then was the engine deleted
    kinds = [(e[0], e[1], e[2], e[4]) for e in seen.events]
    stop = next(i for i, e in enumerate(kinds) if e[1] == "stop" and e[2] == "initialized")
    stopped = next(i for i, e in enumerate(kinds) if e[2] == "stopped")
    deleted = next(i for i, e in enumerate(kinds) if e[0] == "DELETED")
    assert stop < stopped < deleted, kinds
    assert not any(e[3] for e in kinds[:stopped]), "nothing was deleted before Litmus stopped"


def test_a_stuck_litmus_finalizer_is_removed_when_litmus_is_gone_and_the_run_says_so(
    cluster: Cluster,
    api: client.ApiClient,
    namespace: str,
    operator: OperatorProcess,
    litmus: ChaosOperator,
    executor: tuple[PodExecutor, LitmusPrograms],
) -> None:
    prepare(cluster, api, namespace)
    executor[1].helper_mode = "hang"
    chaos = Chaos(api, namespace)
    with EngineEvents(api, namespace) as seen:
        chaos.create_experiment(
            experiment(
                "corrupt",
                app="shop",
                objective="2s",
                timeout="4s",
                fault=litmus_fault("pod-network-corruption", duration="2s"),
            )
        )
        engine = wait_for(lambda: next(iter(engines(api, namespace)), None), timeout=60, message="an engine")
        Litmus(api, namespace).engine_when(engine["metadata"]["name"], "initialized")
        litmus.stop()  # Litmus's operator is gone once it has taken the engine up
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
    cluster: Cluster, api: client.ApiClient, solo_namespace: str, tmp_path: Path, litmus: ChaosOperator
) -> None:
    prepare(cluster, api, solo_namespace)
    chaos = Chaos(api, solo_namespace)
    args = ["--namespace", solo_namespace, "--webhook-port", "0", "--sweep-interval", "2"]
    first: OperatorProcess | None = start_operator(
        cluster.kubeconfig, tmp_path / "first.log", *args, "--identity", "first", env=LITMUS_TIMING
    )
    second: OperatorProcess | None = None
    try:
        # the stand-in helper holds the chaos for 5 s after Litmus's start: the operator dies while Litmus runs
        with EngineEvents(api, solo_namespace) as seen:
            chaos.create_experiment(
                experiment(
                    "hog",
                    app="shop",
                    fault=litmus_fault("pod-memory-hog", duration="5s", MEMORY_CONSUMPTION="100"),
                )
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
            assert seen.added() == 1, "one engine, never a second"
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
    cluster: Cluster, api: client.ApiClient, namespace: str, operator: OperatorProcess, litmus: ChaosOperator
) -> None:
    prepare(cluster, api, namespace)
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
    # a node experiment names the node of the chosen pod (Litmus's operator is stopped: node
    # experiments do not run for real here, see docs/litmus.md)
    litmus.stop()
    # (NoSchedule: a NoExecute taint would evict the other pods of that shared node, which the
    # collateral rule judges; tests/integration/test_node_faults.py covers it)
    taint = litmus_fault("node-taint", TAINTS="aftershock-test=on:NoSchedule")
    chaos.create_experiment(experiment("taint", app="shop", fault=taint))
    (target,) = wait_for(
        lambda: (chaos.runs("taint") or [{}])[0].get("status", {}).get("targets"),
        timeout=60,
        message="the recorded target",
    )
    shop_nodes = {p.spec.node_name for p in client.CoreV1Api(api).list_namespaced_pod(namespace).items}
    assert target["kind"] == "Node" and target["name"] in shop_nodes, target
    chaos.delete("chaosexperiments", "taint")
    wait_for(lambda: engines(api, namespace) == [], timeout=60, message="the engine removed")
    litmus.start()
    with extra_policy(
        api, allowedFaults=["litmusNode"], blastRadius={"maxPodsPercent": 100, "maxNodes": 0}
    ) as no_nodes:
        chaos.create_experiment(experiment("hog", app="shop", fault=litmus_fault("node-cpu-hog")))
        status = finished(chaos, "hog", timeout=60)["status"]
    assert status["phase"] == "Skipped" and status["reason"] == "BlastRadiusExceeded", status
    assert no_nodes in status["message"] and "node" in status["message"]
    assert engines(api, namespace) == []


def test_a_probe_type_a_policy_stopped_allowing_skips_the_run(
    cluster: Cluster, api: client.ApiClient, namespace: str, operator: OperatorProcess, litmus: ChaosOperator
) -> None:
    """Admission judged the probes on the policies of that moment; the gate judges them again
    before every run: once a policy no longer lists k8sProbe, the next run is Skipped with the
    reason and no engine is made."""
    prepare(cluster, api, namespace)
    chaos = Chaos(api, namespace)
    probe = {
        "name": "peers-present",
        "type": "k8sProbe",
        "mode": "EOT",
        "runProperties": {"probeTimeout": "5s", "interval": "2s", "retry": 1},
        "k8sProbe/inputs": {
            "version": "v1",
            "resource": "pods",
            "namespace": namespace,
            "labelSelector": "app=shop",
            "operation": "present",
        },
    }
    fault = litmus_fault("pod-delete")
    fault["litmus"]["probes"] = [probe]
    suite = permissive()
    suite["spec"]["litmus"] = {"allowedProbeTypes": ["httpProbe", "promProbe", "k8sProbe"]}
    apply_policy(api, suite)
    try:
        # scheduled a year out: only the run made by hand below comes to the gate
        chaos.create_experiment(
            experiment("probed", app="shop", fault=fault, extra_spec={"schedule": "@yearly"})
        )
        with extra_policy(api, litmus={"allowedProbeTypes": ["httpProbe"]}) as stricter:
            chaos.objects.create_namespaced_custom_object(
                "aftershock.dev",
                "v1alpha1",
                namespace,
                "chaosruns",
                {
                    "apiVersion": "aftershock.dev/v1alpha1",
                    "kind": "ChaosRun",
                    "metadata": {"name": "probed-now"},
                    "spec": {"experiment": "probed"},
                },
            )
            status = wait_for(
                lambda: (
                    (s := chaos.get("chaosruns", "probed-now").get("status") or {}).get("completionTime")
                    and s
                ),
                timeout=60,
                message="the run decided",
            )
    finally:
        apply_policy(api, permissive())
    assert status["phase"] == "Skipped" and status["reason"] == "ProbeTypeNotAllowed", status
    assert "peers-present" in status["message"] and stricter in status["message"], status["message"]
    assert engines(api, namespace) == []


# --- provisioning the chaosServiceAccount -------------------------------------------------------


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
    # naming an existing ServiceAccount instead needs the right to act as it (Litmus and its probes
    # act with its rights): refused until the tenant may impersonate it, then admitted
    named = {"duration": "10s", "litmus": {"experiment": "pod-delete", "chaosServiceAccount": SA}}
    with pytest.raises(ApiException) as info:
        as_tenant.create_namespaced_custom_object(
            "aftershock.dev",
            "v1alpha1",
            namespace,
            "chaosexperiments",
            experiment("named", app="shop", fault=named),
        )
    assert info.value.status == 403
    assert f"may not impersonate serviceaccount {SA}" in (info.value.body or ""), info.value.body
    impersonate = {
        "apiGroups": [""],
        "resources": ["serviceaccounts"],
        "verbs": ["impersonate"],
        "resourceNames": [SA],
    }
    rbac.patch_namespaced_role("tenant", namespace, {"rules": [*rules, impersonate]})
    created = as_tenant.create_namespaced_custom_object(
        "aftershock.dev",
        "v1alpha1",
        namespace,
        "chaosexperiments",
        experiment("named", app="shop", fault=named),
    )
    assert created["metadata"]["name"] == "named"


def test_the_sweeper_stops_and_removes_an_engine_whose_run_is_gone(
    cluster: Cluster,
    api: client.ApiClient,
    namespace: str,
    operator: OperatorProcess,
    litmus: ChaosOperator,
    executor: tuple[PodExecutor, LitmusPrograms],
) -> None:
    from aftershock.core import litmus as core_litmus

    prepare(cluster, api, namespace, replicas=1)
    executor[1].helper_mode = "hang"
    pod = ready_pods(api, namespace, "shop")[0].metadata.name
    orphan = core_litmus.engine_manifest(
        core_litmus.EngineRequest(
            name="orphan",
            namespace=namespace,
            experiment="pod-network-loss",
            env={},
            duration_seconds=600,
            service_account=SA,
            app_kind="Deployment",
            app_label="app=shop",
            target_pods=[pod],
            labels={"aftershock.dev/run": "no-such-run", "aftershock.dev/run-namespace": namespace},
        )
    )
    with EngineEvents(api, namespace) as seen:
        Litmus(api, namespace).create(ENGINES, orphan)
        wait_for(lambda: engines(api, namespace) == [], timeout=60, message="the orphaned engine removed")
    states = [e[1] for e in seen.events]
    assert "stop" in states, seen.events  # Litmus was asked to stop it, not just had it deleted


def _held_duplication(api: client.ApiClient, namespace: str, chaos: Chaos) -> None:
    """A Litmus run that holds its fault (the helper hangs) for 10 minutes, taken up by Litmus."""
    chaos.create_experiment(
        experiment(
            "dup", app="shop", fault=litmus_fault("pod-network-duplication", duration="10m"), timeout="10m"
        )
    )
    wait_for(
        lambda: any((r.get("status") or {}).get("phase") == "Observing" for r in chaos.runs("dup")),
        timeout=60,
        message="the run observing",
    )
    # Litmus has taken the engine up (an engine it never saw is simply deleted, nothing to stop)
    Litmus(api, namespace).engine_when(chaos.runs("dup")[0]["metadata"]["name"], "initialized")


def test_the_kill_switch_stops_a_running_engine(
    cluster: Cluster,
    api: client.ApiClient,
    namespace: str,
    operator: OperatorProcess,
    litmus: ChaosOperator,
    executor: tuple[PodExecutor, LitmusPrograms],
) -> None:
    prepare(cluster, api, namespace)
    executor[1].helper_mode = "hang"
    chaos = Chaos(api, namespace)
    with EngineEvents(api, namespace) as seen:
        _held_duplication(api, namespace, chaos)
        with extra_policy(api, suspend=True):
            status = finished(chaos, "dup", timeout=60)["status"]
    assert status["phase"] == "Aborted" and status["reason"] == "PolicySuspended", status
    assert engines(api, namespace) == []
    assert any(e[1] == "stop" and e[2] == "initialized" for e in seen.events), seen.events
    assert any(e[2] == "stopped" for e in seen.events), "Litmus confirmed the stop"


def test_an_abort_waits_on_a_hung_litmus_for_seconds_not_minutes(
    cluster: Cluster,
    api: client.ApiClient,
    solo_namespace: str,
    tmp_path: Path,
    litmus: ChaosOperator,
    executor: tuple[PodExecutor, LitmusPrograms],
) -> None:
    """The kill-switch promise holds when Litmus hangs: an operator at the default waits (60 s for
    Litmus to confirm a stop, 15 s to release its finalizer — the suite's own operator runs with
    shorter ones) aborts a run whose engine Litmus took up and then stopped answering within the
    abort budget (ABORT_WAIT_SECONDS of waiting, about 10 s in all), not in 75 s; the forced
    finalizer removal names the Litmus pods aftershock cannot label."""
    ns = solo_namespace
    prepare(cluster, api, ns)
    executor[1].helper_mode = "hang"
    op = solo_operator(cluster.kubeconfig, tmp_path, ns, "abort-budget")
    try:
        chaos = Chaos(api, ns)
        _held_duplication(api, ns, chaos)
        litmus.stop()  # hung: it will neither confirm the stop nor release its finalizer
        began = time.monotonic()
        with extra_policy(api, suspend=True):
            status = finished(chaos, "dup", timeout=120)["status"]
        took = time.monotonic() - began
    finally:
        op.stop()
    print(f"abort with Litmus hung: {took:.1f} s from the policy's suspension to Aborted")
    assert status["phase"] == "Aborted" and status["reason"] == "PolicySuspended", status
    # the default waits alone would be 75 s; the budget is 8 s of waiting plus API calls
    assert took < 30, f"the abort took {took:.0f} s"
    (released,) = [f for f in status["findings"] if f["title"] == "Litmus finalizer removed"]
    assert "Litmus's pods of this engine" in released["detail"], released["detail"]
    assert engines(api, ns) == []


def test_an_engine_litmus_never_takes_up_is_aborted_and_removed(
    cluster: Cluster, api: client.ApiClient, namespace: str, operator: OperatorProcess, litmus: ChaosOperator
) -> None:
    prepare(cluster, api, namespace)  # the CRDs and experiments are there, but no Litmus operator answers
    litmus.stop()
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
