"""Input that cannot be misread (issue 12, class 6), proven as a tenant.

A tenant is a ServiceAccount with every aftershock.dev right (`resources: ["*"]`, which includes
the status subresources) in its own namespace only, acting through impersonation against the real
API server and the real webhook. Every hostile case in HOSTILE is self-contained (what the tenant
submits, the message a person reads) and asserts that nothing changed: not the tenant's own
objects, pods and NetworkPolicies, nor a neighbour's.

The 409 case: a tenant takes the name of the NetworkPolicy a partition run would create; the run
ends Errored (ArtifactNameTaken), the tenant's NetworkPolicy is left exactly as it was, and no pod
is marked.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.support.chaos import GROUP, VERSION, Chaos, experiment, partition
from tests.support.cluster import Cluster
from tests.support.operator import OperatorProcess
from tests.support.policies import OPT_IN
from tests.support.waiting import wait_for
from tests.support.workloads import deployment, pods_of, ready_pods

YEARLY = "0 0 1 1 *"  # a schedule that never fires during the test: nothing runs unless asked

TENANT_RULES: list[dict[str, Any]] = [
    # what an aggregated "edit" role gives: every aftershock.dev resource, subresources included
    {"apiGroups": ["aftershock.dev"], "resources": ["*"], "verbs": ["*"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "patch", "delete"]},
    {
        "apiGroups": ["networking.k8s.io"],
        "resources": ["networkpolicies"],
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
    },
]


def _set(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `body` with the dotted `path` set to `value`."""
    body = copy.deepcopy(body)
    node = body
    *parents, last = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return body


def exp(name: str = "hostile", **changes: Any) -> dict[str, Any]:
    """A valid, never-firing experiment on the tenant's `app` pods, with spec paths (a__b) changed."""
    body = experiment(name, app="app", extra_spec={"schedule": YEARLY})
    for path, value in changes.items():
        body = _set(body, "spec." + path.replace("__", "."), value)
    return body


def run(name: str = "hostile-run", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ChaosRun",
        "metadata": {"name": name},
        "spec": {"experiment": "hostile", **spec},
    }


def policy(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ChaosPolicy",
        "metadata": {"name": f"t-tenant-{uuid.uuid4().hex[:6]}"},
        "spec": spec,
    }


@dataclass(frozen=True)
class Hostile:
    """One thing a tenant tries: create `body` (kind by `plural`), or, with `update_of`, create that
    valid object first and then merge-patch it with `body`. `expected` is part of the message."""

    id: str
    plural: str
    body: dict[str, Any]
    expected: str
    update_of: dict[str, Any] | None = None


KEY_MESSAGE = "every matchLabels key must be a label key"
VALUE_MESSAGE = "every matchLabels value must be a label value"
_GOOD_TARGET = {"kind": "Deployment", "selector": {"matchLabels": {"app": "app"}}}

HOSTILE: list[Hostile] = [
    # selector keys and values are label keys and values
    Hostile(
        "key-with-space",
        "chaosexperiments",
        exp(target__selector={"matchLabels": {"app name": "x"}}),
        KEY_MESSAGE,
    ),
    Hostile(
        "key-leading-dash",
        "chaosexperiments",
        exp(target__selector={"matchLabels": {"-bad/x": "x"}}),
        KEY_MESSAGE,
    ),
    Hostile(
        "key-upper-case-prefix",
        "chaosexperiments",
        exp(target__selector={"matchLabels": {"Example.com/app": "x"}}),
        KEY_MESSAGE,
    ),
    Hostile(
        "key-two-slashes",
        "chaosexperiments",
        exp(target__selector={"matchLabels": {"a/b/c": "x"}}),
        KEY_MESSAGE,
    ),
    Hostile(
        "key-name-64", "chaosexperiments", exp(target__selector={"matchLabels": {"k" * 64: "x"}}), KEY_MESSAGE
    ),
    Hostile(
        "value-64",
        "chaosexperiments",
        exp(target__selector={"matchLabels": {"app": "v" * 64}}),
        "spec.target.selector.matchLabels.app: Too long",
    ),
    Hostile(
        "value-with-space",
        "chaosexperiments",
        exp(target__selector={"matchLabels": {"app": "a b"}}),
        VALUE_MESSAGE,
    ),
    Hostile(
        "value-smuggles-a-selector",
        "chaosexperiments",
        exp(target__selector={"matchLabels": {"app": "app,tier!=db"}}),
        VALUE_MESSAGE,
    ),
    Hostile(
        "expression-key-with-space",
        "chaosexperiments",
        exp(target__selector={"matchExpressions": [{"key": "app name", "operator": "Exists"}]}),
        "matchExpressions key must be a label key",
    ),
    Hostile(
        "expression-value-with-comma",
        "chaosexperiments",
        exp(target__selector={"matchExpressions": [{"key": "app", "operator": "In", "values": ["a,b"]}]}),
        "every matchExpressions value must be a label value",
    ),
    Hostile(
        "update-selector-key",
        "chaosexperiments",
        {"spec": {"target": {"selector": {"matchLabels": {"app name": "x"}}}}},
        KEY_MESSAGE,
        update_of=exp("updated"),
    ),
    # every number and list has a bound
    Hostile(
        "history-limit-101",
        "chaosexperiments",
        exp(successfulRunsHistoryLimit=101),
        "spec.successfulRunsHistoryLimit: Invalid value: 101",
    ),
    Hostile(
        "update-history-limit",
        "chaosexperiments",
        {"spec": {"failedRunsHistoryLimit": 100000}},
        "spec.failedRunsHistoryLimit: Invalid value: 100000",
        update_of=exp("limited"),
    ),
    Hostile(
        "grace-period-3601",
        "chaosexperiments",
        exp(fault={"podDelete": {"gracePeriodSeconds": 3601}}),
        "spec.fault.podDelete.gracePeriodSeconds: Invalid value: 3601",
    ),
    Hostile("fixed-count-10001", "chaosexperiments", exp(target__mode="fixed", target__value=10001), "10000"),
    Hostile(
        "fault-duration-25h",
        "chaosexperiments",
        exp(fault=partition("25h")),
        "fault.duration (25h) must be at most 24h",
    ),
    Hostile(
        "recovery-timeout-25h",
        "chaosexperiments",
        exp(recovery={"objective": "30s", "timeout": "25h"}),
        "recovery.timeout (25h) must be at most 24h",
    ),
    Hostile(
        "starting-deadline-48h",
        "chaosexperiments",
        exp(startingDeadline="48h"),
        "startingDeadline (48h) must be at most 24h",
    ),
    Hostile(
        "litmus-env-33",
        "chaosexperiments",
        exp(
            fault={
                "duration": "30s",
                "litmus": {
                    "experiment": "pod-delete",
                    "chaosServiceAccount": "litmus",
                    "env": {f"K{i}": "v" for i in range(33)},
                },
            }
        ),
        "spec.fault.litmus.env: Too many",
    ),
    # hand-made runs are held to the same rules
    Hostile(
        "run-with-bad-selector",
        "chaosruns",
        run(target={**_GOOD_TARGET, "selector": {"matchLabels": {"app name": "x"}}}),
        KEY_MESSAGE,
    ),
    Hostile(
        "run-grace-period-3601",
        "chaosruns",
        run(target=_GOOD_TARGET, fault={"podDelete": {"gracePeriodSeconds": 3601}}),
        "spec.fault.podDelete.gracePeriodSeconds: Invalid value: 3601",
    ),
    Hostile("run-experiment-name-53", "chaosruns", run(experiment="e" * 53), "spec.experiment: Too long"),
    # guardrails are not the tenant's to write, however well-formed or not
    Hostile(
        "policy-with-bad-namespace-selector",
        "chaospolicies",
        policy(namespaces={"selector": {"matchLabels": {"team name": "x"}}}),
        "chaospolicies.aftershock.dev is forbidden",
    ),
]


@dataclass(frozen=True)
class Tenant:
    namespace: str
    user: str
    objects: client.CustomObjectsApi
    network: client.NetworkingV1Api


def _namespace(api: client.ApiClient, stem: str) -> str:
    name = f"t-tenant-{stem}-{uuid.uuid4().hex[:5]}"
    client.CoreV1Api(api).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=dict(OPT_IN)))
    )
    return name


@pytest.fixture(scope="module")
def tenant(cluster: Cluster, api: client.ApiClient, operator: OperatorProcess) -> Iterator[Tenant]:
    ns = _namespace(api, "input")
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(ns, {"metadata": {"name": "tenant"}})
    rbac.create_namespaced_role(ns, {"metadata": {"name": "tenant"}, "rules": TENANT_RULES})
    rbac.create_namespaced_role_binding(
        ns,
        {
            "metadata": {"name": "tenant"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "tenant"},
            "subjects": [{"kind": "ServiceAccount", "name": "tenant", "namespace": ns}],
        },
    )
    client.AppsV1Api(api).create_namespaced_deployment(ns, deployment("app", replicas=2))
    wait_for(lambda: len(ready_pods(api, ns, "app")) == 2, timeout=60, message="tenant pods ready")
    user = f"system:serviceaccount:{ns}:tenant"
    as_tenant = cluster.api_client(impersonate=user)
    yield Tenant(ns, user, client.CustomObjectsApi(as_tenant), client.NetworkingV1Api(as_tenant))
    core.delete_namespace(ns, propagation_policy="Background")


@pytest.fixture(scope="module")
def neighbour(api: client.ApiClient, operator: OperatorProcess) -> Iterator[str]:
    """Another tenant's namespace, with pods a misread selector could reach."""
    ns = _namespace(api, "next")
    client.AppsV1Api(api).create_namespaced_deployment(ns, deployment("app", replicas=2))
    wait_for(lambda: len(ready_pods(api, ns, "app")) == 2, timeout=60, message="neighbour pods ready")
    yield ns
    client.CoreV1Api(api).delete_namespace(ns, propagation_policy="Background")


def _snapshot(api: client.ApiClient, namespaces: tuple[str, ...]) -> dict[str, Any]:
    """What a tenant must not change: our objects' specs, pods (UIDs and labels), NetworkPolicies,
    and the ChaosPolicies."""
    objects = client.CustomObjectsApi(api)
    core, net = client.CoreV1Api(api), client.NetworkingV1Api(api)
    state: dict[str, Any] = {
        "policies": sorted(
            (p["metadata"]["name"], p["metadata"]["generation"])
            for p in objects.list_cluster_custom_object(GROUP, VERSION, "chaospolicies")["items"]
        )
    }
    for ns in namespaces:
        for plural in ("chaosexperiments", "chaosruns"):
            state[f"{ns}/{plural}"] = sorted(
                (o["metadata"]["name"], json.dumps(o["spec"], sort_keys=True))
                for o in objects.list_namespaced_custom_object(GROUP, VERSION, ns, plural)["items"]
            )
        state[f"{ns}/pods"] = sorted(
            (p.metadata.uid, json.dumps(p.metadata.labels, sort_keys=True))
            for p in core.list_namespaced_pod(ns).items
        )
        state[f"{ns}/networkpolicies"] = sorted(
            (p.metadata.uid, p.metadata.resource_version)
            for p in net.list_namespaced_network_policy(ns).items
        )
    return state


def _message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body)["message"])
    except (TypeError, ValueError, KeyError):
        return str(exc.body or exc.reason)


def _attempt(tenant: Tenant, case: Hostile) -> ApiException:
    objects, ns = tenant.objects, tenant.namespace
    with pytest.raises(ApiException) as refused:
        if case.plural == "chaospolicies":
            objects.create_cluster_custom_object(GROUP, VERSION, case.plural, case.body)
        elif case.update_of is not None:
            objects.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                ns,
                case.plural,
                case.update_of["metadata"]["name"],
                case.body,
                _content_type="application/merge-patch+json",
            )
        else:
            objects.create_namespaced_custom_object(
                GROUP, VERSION, ns, case.plural, case.body, field_validation="Strict"
            )
    return refused.value


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in HOSTILE])
def test_hostile_tenant_input_is_refused_and_changes_nothing(
    api: client.ApiClient, tenant: Tenant, neighbour: str, case: Hostile
) -> None:
    if case.update_of is not None:
        tenant.objects.create_namespaced_custom_object(
            GROUP, VERSION, tenant.namespace, case.plural, case.update_of
        )
    try:
        before = _snapshot(api, (tenant.namespace, neighbour))
        refused = _attempt(tenant, case)
        message = _message(refused)
        assert refused.status in (400, 403, 422), f"{case.id}: {refused.status} {message}"
        assert case.expected in message, f"{case.id}: {message}"
        assert _snapshot(api, (tenant.namespace, neighbour)) == before, case.id
    finally:
        if case.update_of is not None:
            tenant.objects.delete_namespaced_custom_object(
                GROUP, VERSION, tenant.namespace, case.plural, case.update_of["metadata"]["name"]
            )


def test_hostile_table_is_large_and_unique() -> None:
    ids = [c.id for c in HOSTILE]
    assert len(ids) >= 12 and len(set(ids)) == len(ids)


def test_a_409_from_a_tenants_network_policy_ends_the_run_errored_and_leaves_it_alone(
    api: client.ApiClient, tenant: Tenant, neighbour: str
) -> None:
    ns = tenant.namespace
    tenant.objects.create_namespaced_custom_object(
        GROUP, VERSION, ns, "chaosexperiments", exp("cut", fault=partition("30s"))
    )
    # the name a partition run named "cut-now" would give its NetworkPolicy, taken first and
    # without the run's label
    squatter = tenant.network.create_namespaced_network_policy(
        ns,
        {
            "metadata": {"name": "aftershock-cut-now", "labels": {"owner": "tenant"}},
            "spec": {"podSelector": {"matchLabels": {"app": "other"}}, "policyTypes": ["Ingress"]},
        },
    )
    pods_before = {p.metadata.uid: p.metadata.labels for p in pods_of(api, ns, "app")}
    neighbour_before = _snapshot(api, (neighbour,))
    tenant.objects.create_namespaced_custom_object(
        GROUP, VERSION, ns, "chaosruns", run("cut-now", experiment="cut")
    )

    chaos = Chaos(api, ns)

    def finished() -> dict[str, Any] | None:
        status = chaos.get("chaosruns", "cut-now").get("status") or {}
        terminal = status.get("phase") in ("Completed", "Aborted", "Skipped", "Errored")
        return status if terminal else None

    status = wait_for(finished, timeout=60, message="the run to finish")
    assert (status["phase"], status.get("reason")) == ("Errored", "ArtifactNameTaken"), status
    assert "a NetworkPolicy named aftershock-cut-now" in status["message"]
    assert "was not made by this run" in status["message"]
    after = client.NetworkingV1Api(api).read_namespaced_network_policy("aftershock-cut-now", ns)
    assert after.metadata.uid == squatter.metadata.uid
    assert after.metadata.resource_version == squatter.metadata.resource_version
    assert after.metadata.labels == {"owner": "tenant"}
    assert after.spec.pod_selector.match_labels == {"app": "other"}
    # no pod was marked, none deleted; nothing else in the namespace became a partition
    assert {p.metadata.uid: p.metadata.labels for p in pods_of(api, ns, "app")} == pods_before
    others = client.NetworkingV1Api(api).list_namespaced_network_policy(ns).items
    assert [p.metadata.name for p in others] == ["aftershock-cut-now"]
    assert _snapshot(api, (neighbour,)) == neighbour_before
