"""ChaosPolicy end to end: admission through the real webhook (TLS on loopback), the checks again
before injecting, tenants, the kill switch and PodDisruptionBudgets."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.integration.conftest import OPERATOR_NAMESPACE
from tests.support.chaos import GROUP, VERSION, Chaos, experiment, our_network_policies, partition
from tests.support.cluster import Cluster
from tests.support.operator import OperatorProcess
from tests.support.policies import (
    OPT_IN,
    SUITE_POLICY,
    apply_policy,
    delete_policy,
    extra_policy,
    permissive,
)
from tests.support.waiting import wait_for
from tests.support.workloads import deployment, pods_of, ready_pods

TERMINAL = {"Completed", "Aborted", "Skipped", "Errored"}


@pytest.fixture
def chaos(api: client.ApiClient, namespace: str, operator: OperatorProcess) -> Chaos:
    return Chaos(api, namespace)


@contextmanager
def suite_policy_changed(api: client.ApiClient, **changes: Any) -> Iterator[None]:
    body = permissive()
    body["spec"].update(changes)
    apply_policy(api, body)
    try:
        yield
    finally:
        apply_policy(api, permissive())


def _namespace(api: client.ApiClient, labels: dict[str, str] | None = None, name: str | None = None) -> str:
    name = name or f"t-pol-{uuid.uuid4().hex[:8]}"
    try:
        client.CoreV1Api(api).create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels or {}))
        )
    except ApiException as exc:
        if exc.status != 409:
            raise
    return name


def _refused(
    objects: client.CustomObjectsApi, namespace: str, body: dict[str, Any], plural: str = "chaosexperiments"
) -> str:
    with pytest.raises(ApiException) as refused:
        objects.create_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, body, field_validation="Strict"
        )
    assert refused.value.status in (400, 403, 404, 422), refused.value.body
    return str(json.loads(refused.value.body)["message"])


def _cluster_snapshot(api: client.ApiClient, namespaces: set[str] | None = None) -> dict[str, Any]:
    """Pods, nodes and NetworkPolicies of the cluster; namespaces that earlier tests are still
    deleting are left out (their pods vanish by themselves)."""
    core = client.CoreV1Api(api)
    if namespaces is None:
        namespaces = {n.metadata.name for n in core.list_namespace().items if n.status.phase == "Active"}
    return {
        "namespaces": namespaces,
        "pods": sorted(
            p.metadata.uid
            for p in core.list_pod_for_all_namespaces().items
            if p.metadata.namespace in namespaces
        ),
        "nodes": sorted(
            (
                n.metadata.name,
                n.metadata.uid,
                bool(n.spec.unschedulable),
                json.dumps(n.metadata.labels, sort_keys=True),
            )
            for n in core.list_node().items
        ),
        "network_policies": sorted(
            p.metadata.uid
            for p in client.NetworkingV1Api(api).list_network_policy_for_all_namespaces().items
            if p.metadata.namespace in namespaces
        ),
    }


def _finished(chaos: Chaos, name: str, timeout: float = 60) -> dict[str, Any]:
    return wait_for(lambda: chaos.finished_run(name), timeout=timeout, message=f"a finished run of {name}")


def test_hostile_and_mistaken_experiments_are_refused_and_change_nothing(
    api: client.ApiClient, namespace: str, chaos: Chaos
) -> None:
    objects = client.CustomObjectsApi(api)
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(namespace, deployment("shop", replicas=4))
    wait_for(lambda: len(ready_pods(api, namespace, "shop")) == 4, timeout=60, message="steady state")
    other = _namespace(api, OPT_IN)
    unlabelled = _namespace(api)
    operator_ns = _namespace(api, OPT_IN, name=OPERATOR_NAMESPACE)
    for ns in (other, unlabelled, operator_ns):
        try:
            apps.create_namespaced_deployment(ns, deployment("shop", replicas=2))
        except ApiException as exc:  # the operator's namespace outlives a test run
            if exc.status != 409:
                raise
    for ns in (other, unlabelled, operator_ns):
        wait_for(lambda ns=ns: len(ready_pods(api, ns, "shop")) >= 2, timeout=60, message=f"pods in {ns}")
    before = _cluster_snapshot(api)
    seen: list[str] = []

    def refused(
        case: str, body: dict[str, Any], expected: str, ns: str = namespace, plural: str = "chaosexperiments"
    ) -> None:
        message = _refused(objects, ns, body, plural)
        assert expected in message, f"{case}: {message}"
        seen.append(case)

    def exp(**target: Any) -> dict[str, Any]:
        body = experiment(f"x-{uuid.uuid4().hex[:6]}", app="shop")
        body["spec"]["target"].update(target)
        return body

    def with_spec(body: dict[str, Any], **spec: Any) -> dict[str, Any]:
        body["spec"].update(spec)
        return body

    # --- refused at admission ----------------------------------------------------------------
    refused("another namespace", exp(namespace=other), "crossNamespace")
    refused("kube-system", exp(namespace="kube-system"), "kube-system is a system namespace")
    refused("kube-node-lease", exp(namespace="kube-node-lease"), "kube-node-lease is a system namespace")
    refused("the operator's namespace", exp(namespace=operator_ns), "operator")
    refused(
        "namespace without the opt-in label",
        experiment("unlabelled", app="shop"),
        "aftershock.dev/chaos",
        ns=unlabelled,
    )
    with extra_policy(api, blastRadius={"maxPodsPercent": 50}) as strict:
        refused("mode all beyond the blast radius", exp(mode="all"), strict)
        refused("percent beyond the blast radius", exp(mode="percent", value=100), strict)
    with extra_policy(api, blastRadius={"maxPodsPercent": 100, "maxPods": 2}) as capped:
        refused("fixed count beyond maxPods", exp(mode="fixed", value=3), capped)
    with extra_policy(api, namespaces={"selector": {"matchLabels": OPT_IN}, "deny": [namespace]}) as deny:
        refused("namespace on a deny list", exp(), deny)
    with extra_policy(api, allowedFaults=["podDelete"]) as only_delete:
        body = experiment("cut", app="shop", fault=partition("30s"))
        refused("fault kind not allowed", body, only_delete)
    closed_day = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][
        (dt.datetime.now(dt.UTC).weekday() + 3) % 7
    ]
    with extra_policy(
        api, windows=[{"days": [closed_day], "start": "00:00", "end": "00:01", "timeZone": "UTC"}]
    ) as win:
        refused("outside the windows", exp(), win)
    now = dt.datetime.now(dt.UTC)
    blackout = {
        "start": (now - dt.timedelta(hours=1)).isoformat(),
        "end": (now + dt.timedelta(hours=1)).isoformat(),
    }
    with extra_policy(api, blackouts=[blackout]) as black:
        refused("inside a blackout", exp(), black)
    refused("malformed cron", with_spec(exp(), schedule="61 * * * *"), "minute 61")
    refused(
        "cron with seconds", with_spec(exp(), schedule="0 */5 * * * *"), ""
    )  # CRD: 6 fields fail the pattern
    refused("unknown time zone", with_spec(exp(), schedule="@daily", timeZone="Mars/Olympus"), "Mars/Olympus")
    refused("interval below a second", with_spec(exp(), schedule="@every 500ms"), "1s")
    long_name = experiment("x" * 53, app="shop")
    refused("over-long name", long_name, "at most 52 characters")
    refused("empty selector", exp(selector={}), "selector must not be empty")
    refused(
        "objective longer than timeout",
        with_spec(exp(), recovery={"objective": "5m", "timeout": "1m"}),
        "objective",
    )
    refused(
        "partition without a duration",
        with_spec(exp(), fault={"networkPartition": {}}),
        "fault.duration is required",
    )
    run = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ChaosRun",
        "metadata": {"name": f"r-{uuid.uuid4().hex[:6]}"},
        "spec": {"experiment": "no-such-experiment"},
    }
    refused("run of a missing experiment", run, "does not exist", plural="chaosruns")

    # --- ended Skipped or Errored at run time ------------------------------------------------
    # a policy edited between admission and injection: the target is admitted, then opted out
    apps.create_namespaced_deployment(namespace, deployment("late", replicas=1, ready_delay="6s"))
    chaos.create_experiment(experiment("edited", app="late"))
    client.CoreV1Api(api).patch_namespace(namespace, {"metadata": {"labels": {"aftershock.dev/chaos": None}}})
    try:
        status = _finished(chaos, "edited")["status"]
    finally:
        client.CoreV1Api(api).patch_namespace(namespace, {"metadata": {"labels": OPT_IN}})
    assert status["phase"] == "Skipped" and "aftershock.dev/chaos" in status["message"], status
    seen.append("policy edited between admission and injection")

    with extra_policy(api, respectDisruptionBudgets=True):
        client.PolicyV1Api(api).create_namespaced_pod_disruption_budget(
            namespace,
            {
                "metadata": {"name": "shop"},
                "spec": {"maxUnavailable": 0, "selector": {"matchLabels": {"app": "shop"}}},
            },
        )
        chaos.create_experiment(experiment("budget", app="shop"))
        status = _finished(chaos, "budget")["status"]
        assert status["phase"] == "Skipped" and "PodDisruptionBudget shop" in status["message"], status
        seen.append("a PodDisruptionBudget allowing no disruption")

    chaos.create_experiment(experiment("nothing", app="no-such-app"))
    status = _finished(chaos, "nothing")["status"]
    assert status["phase"] == "Errored" and "no-such-app" in status["message"], status
    seen.append("a selector matching nothing")

    # no policy at all: admitted with a warning, nothing injected, the experiment says why
    delete_policy(api, SUITE_POLICY)
    try:
        wait_for(
            lambda: not objects.list_cluster_custom_object(GROUP, VERSION, "chaospolicies")["items"],
            timeout=10,
            message="no policy left",
        )
        chaos.create_experiment(experiment("unguarded", app="shop"))
        status = _finished(chaos, "unguarded")["status"]
        assert status["phase"] == "Skipped" and status["reason"] == "NoChaosPolicy", status
        stalled = wait_for(
            lambda: next(
                (
                    c
                    for c in (chaos.get("chaosexperiments", "unguarded").get("status") or {}).get(
                        "conditions", []
                    )
                    if c["type"] == "Stalled" and c["status"] == "True"
                ),
                None,
            ),
            timeout=20,
            message="the experiment to say it is Stalled",
        )
        assert stalled["reason"] == "NoChaosPolicy" and "ChaosPolicy" in stalled["message"]
        seen.append("no ChaosPolicy at all")
    finally:
        apply_policy(api, permissive())

    assert len(seen) >= 25, seen
    after = _cluster_snapshot(api, before["namespaces"])
    new_pods = set(after["pods"]) - set(before["pods"])
    # the only new pods are the "late" Deployment's own (created by the test, never touched)
    late = {p.metadata.uid for p in pods_of(api, namespace, "late")}
    assert new_pods <= late
    assert set(before["pods"]) <= set(after["pods"]), "a pod was deleted"
    assert after["nodes"] == before["nodes"]
    assert after["network_policies"] == before["network_policies"]
    for ns in (other, unlabelled):
        client.CoreV1Api(api).delete_namespace(ns)


def test_kill_switch_aborts_active_runs_and_skips_new_slots(
    api: client.ApiClient, namespace: str, chaos: Chaos
) -> None:
    apps = client.AppsV1Api(api)
    for i in range(3):
        apps.create_namespaced_deployment(namespace, deployment(f"svc{i}", replicas=2))
    wait_for(
        lambda: all(len(ready_pods(api, namespace, f"svc{i}")) == 2 for i in range(3)),
        timeout=60,
        message="steady",
    )
    for i in range(3):
        chaos.create_experiment(experiment(f"hold{i}", app=f"svc{i}", fault=partition("5m")))
    wait_for(
        lambda: len(our_network_policies(api, namespace)) == 3, timeout=30, message="three faults in place"
    )
    ticking = experiment("ticking", app="svc0", objective="5s", timeout="10s")
    ticking["spec"]["schedule"] = "@every 3s"
    with suite_policy_changed(api, suspend=True):
        try:
            flipped = dt.datetime.now(dt.UTC)
            wait_for(
                lambda: our_network_policies(api, namespace) == [], timeout=10, message="every fault reverted"
            )
            for i in range(3):
                run = _finished(chaos, f"hold{i}", timeout=10)
                assert run["status"]["phase"] == "Aborted" and run["status"]["reason"] == "PolicySuspended", (
                    run["status"]
                )
                done = dt.datetime.fromisoformat(run["status"]["completionTime"].replace("Z", "+00:00"))
                assert (done - flipped).total_seconds() < 10
            chaos.create_experiment(ticking)
            skipped = _finished(chaos, "ticking", timeout=20)["status"]
            assert skipped["phase"] == "Skipped" and skipped["reason"] == "PolicySuspended", skipped
        finally:  # before the kill switch is released
            chaos.objects.delete_namespaced_custom_object(
                GROUP, VERSION, namespace, "chaosexperiments", "ticking"
            )
    assert (
        client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector="aftershock.dev/run").items == []
    )


def test_pdb_limits_mode_all_to_the_allowed_disruptions(
    api: client.ApiClient, namespace: str, chaos: Chaos
) -> None:
    client.AppsV1Api(api).create_namespaced_deployment(namespace, deployment("guarded", replicas=4))
    ready = wait_for(
        lambda: (found := ready_pods(api, namespace, "guarded")) and len(found) == 4 and found,
        timeout=60,
        message="4 Ready",
    )
    before = {p.metadata.uid for p in ready}
    pdbs = client.PolicyV1Api(api)
    pdbs.create_namespaced_pod_disruption_budget(
        namespace,
        {
            "metadata": {"name": "guarded"},
            "spec": {"minAvailable": 3, "selector": {"matchLabels": {"app": "guarded"}}},
        },
    )
    wait_for(
        lambda: (
            (pdbs.read_namespaced_pod_disruption_budget("guarded", namespace).status.disruptions_allowed or 0)
            == 1
        ),
        timeout=30,
        message="the disruption controller to allow one disruption",
    )
    chaos.create_experiment(experiment("all-but-budget", app="guarded", mode="all"))
    status = _finished(chaos, "all-but-budget")["status"]
    assert status["phase"] == "Completed", status
    assert len(status["targets"]) == 1
    gone = before - {p.metadata.uid for p in pods_of(api, namespace, "guarded")}
    assert gone == {status["targets"][0]["uid"]}


TENANT_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": ["aftershock.dev"],
        "resources": ["chaosexperiments", "chaosruns"],
        "verbs": ["create", "get", "list", "watch", "delete"],
    },
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "delete"]},
    {
        "apiGroups": ["networking.k8s.io"],
        "resources": ["networkpolicies"],
        "verbs": ["get", "list", "create"],
    },
]


def _tenant(api: client.ApiClient, name: str, rules: list[dict[str, Any]] | None = None) -> tuple[str, str]:
    ns = _namespace(api, OPT_IN, name=f"t-tenant-{name}-{uuid.uuid4().hex[:5]}")
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(ns, {"metadata": {"name": name}})
    rbac.create_namespaced_role(ns, {"metadata": {"name": "chaos"}, "rules": rules or TENANT_RULES})
    rbac.create_namespaced_role_binding(
        ns,
        {
            "metadata": {"name": "chaos"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "chaos"},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}],
        },
    )
    return ns, f"system:serviceaccount:{ns}:{name}"


def test_tenant_cannot_touch_another_tenants_pods(
    cluster: Cluster, api: client.ApiClient, operator: OperatorProcess
) -> None:
    ns_a, user_a = _tenant(api, "a")
    ns_b, _ = _tenant(api, "b")
    apps = client.AppsV1Api(api)
    for ns in (ns_a, ns_b):
        apps.create_namespaced_deployment(ns, deployment("app", replicas=2))
    wait_for(
        lambda: all(len(ready_pods(api, ns, "app")) == 2 for ns in (ns_a, ns_b)), timeout=60, message="steady"
    )
    b_pods = {p.metadata.uid for p in pods_of(api, ns_b, "app")}
    as_a = client.CustomObjectsApi(cluster.api_client(impersonate=user_a))
    attempts: list[tuple[str, Callable[[], object]]] = []
    # cross-namespace experiments are allowed by policy here, so what stops A is A's own rights
    with suite_policy_changed(api, crossNamespace=True):
        into_b = experiment("into-b", app="app")
        into_b["spec"]["target"]["namespace"] = ns_b
        attempts.append(
            (
                "experiment in A targeting B",
                lambda: as_a.create_namespaced_custom_object(
                    GROUP, VERSION, ns_a, "chaosexperiments", into_b
                ),
            )
        )
        cut_b = experiment("cut-b", app="app", fault=partition("1m"))
        cut_b["spec"]["target"]["namespace"] = ns_b
        attempts.append(
            (
                "partition of B from A",
                lambda: as_a.create_namespaced_custom_object(GROUP, VERSION, ns_a, "chaosexperiments", cut_b),
            )
        )
        attempts.append(
            (
                "experiment created in B",
                lambda: as_a.create_namespaced_custom_object(
                    GROUP, VERSION, ns_b, "chaosexperiments", experiment("in-b", app="app")
                ),
            )
        )
        own = as_a.create_namespaced_custom_object(
            GROUP, VERSION, ns_a, "chaosexperiments", experiment("own", app="app")
        )
        assert own["metadata"]["name"] == "own"  # A may break A's own pods
        crafted_run = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ChaosRun",
            "metadata": {"name": "crafted"},
            "spec": {
                "experiment": "own",
                **{k: v for k, v in into_b["spec"].items() if k in ("target", "fault", "recovery")},
            },
        }
        attempts.append(
            (
                "hand-made run in A aimed at B",
                lambda: as_a.create_namespaced_custom_object(GROUP, VERSION, ns_a, "chaosruns", crafted_run),
            )
        )
        attempts.append(
            (
                "run created in B",
                lambda: as_a.create_namespaced_custom_object(
                    GROUP, VERSION, ns_b, "chaosruns", {**crafted_run, "spec": {"experiment": "own"}}
                ),
            )
        )
        for case, attempt in attempts:
            with pytest.raises(ApiException) as denied:
                attempt()
            assert denied.value.status in (403, 404), f"{case}: {denied.value.body}"
        chaos_a = Chaos(api, ns_a)
        assert _finished(chaos_a, "own")["status"]["phase"] == "Completed"
    assert {p.metadata.uid for p in pods_of(api, ns_b, "app")} == b_pods
    assert our_network_policies(api, ns_b) == []
    for ns in (ns_a, ns_b):
        client.CoreV1Api(api).delete_namespace(ns)


def _litmus_experiment(name: str, litmus_experiment: str) -> dict[str, Any]:
    """Admitted or refused, it never runs here: scheduled once a year and suspended."""
    fault = {"duration": "30s", "litmus": {"experiment": litmus_experiment, "chaosServiceAccount": "litmus"}}
    body = experiment(name, app="app", fault=fault)
    body["spec"].update(schedule="@yearly", suspend=True)
    return body


def test_a_node_fault_needs_rights_on_nodes_cluster_wide_not_a_namespace_role(
    cluster: Cluster, api: client.ApiClient, operator: OperatorProcess
) -> None:
    """Admission asks what the fault's engine declares it does. A Litmus node experiment patches
    nodes, which belong to no namespace: a Role in the author's namespace that names nodes (it can
    never let anyone patch a node) does not count; a ClusterRole does."""
    rules = [
        *TENANT_RULES,
        {"apiGroups": ["litmuschaos.io"], "resources": ["chaosengines"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["patch"]},
        # Litmus runs as chaosServiceAccount: its author must be allowed to act as it
        {
            "apiGroups": [""],
            "resources": ["serviceaccounts"],
            "verbs": ["impersonate"],
            "resourceNames": ["litmus"],
        },
    ]
    ns, user = _tenant(api, "n", rules)
    as_user = client.CustomObjectsApi(cluster.api_client(impersonate=user))
    rbac = client.RbacAuthorizationV1Api(api)

    def create(name: str, litmus_experiment: str) -> dict[str, Any]:
        body = _litmus_experiment(name, litmus_experiment)
        created: dict[str, Any] = as_user.create_namespaced_custom_object(
            GROUP, VERSION, ns, "chaosexperiments", body
        )
        return created

    with pytest.raises(ApiException) as refused:
        create("hog", "node-cpu-hog")
    assert refused.value.status == 403, refused.value.body
    message = json.loads(refused.value.body)["message"]
    assert "may not patch nodes," in message and "litmusNode" in message, message
    # the engine's pod experiments touch only the author's namespace: no review needed there
    assert create("latency", "pod-network-latency")["metadata"]["name"] == "latency"

    grant = f"t-nodes-{uuid.uuid4().hex[:6]}"
    rbac.create_cluster_role(
        {
            "metadata": {"name": grant},
            "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["patch"]}],
        }
    )
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": grant},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": grant},
            "subjects": [{"kind": "ServiceAccount", "name": "n", "namespace": ns}],
        }
    )
    try:

        def admitted() -> bool:
            try:
                create("hog", "node-cpu-hog")
            except ApiException as exc:  # until the authorizer has seen the new binding
                if exc.status != 403:
                    raise
                return False
            return True

        wait_for(admitted, timeout=30, message="the node experiment admitted with nodes patch cluster-wide")
    finally:
        rbac.delete_cluster_role_binding(grant)
        rbac.delete_cluster_role(grant)
        client.CoreV1Api(api).delete_namespace(ns)
