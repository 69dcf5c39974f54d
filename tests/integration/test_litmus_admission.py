"""No privilege through Litmus, through the real webhook: a tenant (a ServiceAccount with a Role
in its own opted-in namespace, acting by impersonation) is refused a Litmus experiment whose probe
type no ChaosPolicy allows, whose k8sProbe would do what the tenant may not, whose
chaosServiceAccount the tenant may not impersonate, or whose parameter carries shell syntax — each
with the message kubectl shows, and nothing is created. A tenant holding those rights is admitted
(the control). Admitted experiments are suspended and yearly: nothing runs, so Litmus itself is not
needed here."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.support.chaos import GROUP, VERSION, experiment
from tests.support.cluster import Cluster
from tests.support.operator import OperatorProcess
from tests.support.policies import OPT_IN, apply_policy, permissive

ACCOUNT = "litmus"
BASE_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": ["aftershock.dev"],
        "resources": ["chaosexperiments", "chaosruns"],
        "verbs": ["create", "get", "list", "watch", "delete"],
    },
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
    {"apiGroups": ["litmuschaos.io"], "resources": ["chaosengines"], "verbs": ["create"]},
]
ACT_AS_ACCOUNT = {
    "apiGroups": [""],
    "resources": ["serviceaccounts"],
    "verbs": ["impersonate"],
    "resourceNames": [ACCOUNT],
}
K8S_PROBE = {
    "name": "evict-peers",
    "type": "k8sProbe",
    "mode": "EOT",
    "runProperties": {"probeTimeout": "5s", "interval": "2s", "retry": 1},
    "k8sProbe/inputs": {
        "version": "v1",
        "resource": "pods",
        "namespace": "",  # filled per tenant
        "labelSelector": "app=peer",
        "operation": "delete",
    },
}
CMD_PROBE = {
    "name": "shell",
    "type": "cmdProbe",
    "mode": "EOT",
    "runProperties": {"probeTimeout": "5s", "interval": "2s", "retry": 1},
    "cmdProbe/inputs": {
        "command": "cat /var/run/secrets/kubernetes.io/serviceaccount/token",
        "comparator": {},
    },
}


@pytest.fixture(scope="module")
def k8s_probes_allowed(api: client.ApiClient, operator: OperatorProcess) -> Iterator[None]:
    """The suite's policy, allowing k8sProbe as well (cmdProbe stays off): what stops a tenant
    then is the tenant's own rights."""
    body = permissive()
    body["spec"]["litmus"] = {"allowedProbeTypes": ["httpProbe", "promProbe", "k8sProbe"]}
    apply_policy(api, body)
    try:
        yield
    finally:
        apply_policy(api, permissive())


@contextmanager
def tenant(
    cluster: Cluster, api: client.ApiClient, rules: list[dict[str, Any]]
) -> Iterator[tuple[str, client.CustomObjectsApi]]:
    ns = f"t-lit-adm-{uuid.uuid4().hex[:8]}"
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns, labels=OPT_IN)))
    try:
        for name in ("author", ACCOUNT):
            core.create_namespaced_service_account(ns, {"metadata": {"name": name}})
        rbac.create_namespaced_role(ns, {"metadata": {"name": "author"}, "rules": rules})
        rbac.create_namespaced_role_binding(
            ns,
            {
                "metadata": {"name": "author"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "author"},
                "subjects": [{"kind": "ServiceAccount", "name": "author", "namespace": ns}],
            },
        )
        yield (
            ns,
            client.CustomObjectsApi(cluster.api_client(impersonate=f"system:serviceaccount:{ns}:author")),
        )
    finally:
        core.delete_namespace(ns)


def litmus_experiment(name: str, probes: list[dict[str, Any]] | None = None, **env: str) -> dict[str, Any]:
    fault = {
        "duration": "30s",
        "litmus": {"experiment": "pod-network-latency", "chaosServiceAccount": ACCOUNT, "env": env},
    }
    if probes:
        fault["litmus"]["probes"] = probes
    body = experiment(name, app="shop", fault=fault)
    body["spec"].update(schedule="@yearly", suspend=True)
    return body


def refused(as_tenant: client.CustomObjectsApi, ns: str, body: dict[str, Any]) -> tuple[int, str]:
    with pytest.raises(ApiException) as denied:
        as_tenant.create_namespaced_custom_object(GROUP, VERSION, ns, "chaosexperiments", body)
    return denied.value.status, str(json.loads(denied.value.body)["message"])


def nothing_created(api: client.ApiClient, ns: str, *admitted: str) -> None:
    objects = client.CustomObjectsApi(api)
    for plural in ("chaosexperiments", "chaosruns"):
        names = {
            o["metadata"]["name"]
            for o in objects.list_namespaced_custom_object(GROUP, VERSION, ns, plural)["items"]
        }
        assert names == (set(admitted) if plural == "chaosexperiments" else set()), (plural, names)


def k8s_probe(ns: str) -> dict[str, Any]:
    probe = json.loads(json.dumps(K8S_PROBE))
    probe["k8sProbe/inputs"]["namespace"] = ns
    return dict(probe)


def test_a_probe_type_the_policy_does_not_list_is_refused(
    cluster: Cluster, api: client.ApiClient, k8s_probes_allowed: None
) -> None:
    with tenant(cluster, api, [*BASE_RULES, ACT_AS_ACCOUNT]) as (ns, as_tenant):
        status, message = refused(
            as_tenant, ns, litmus_experiment("shell", [CMD_PROBE], NETWORK_LATENCY="300")
        )
        assert status == 403, message
        assert "litmus.probes[0] (shell) is a cmdProbe" in message, message
        assert (
            "does not list it in litmus.allowedProbeTypes (allowed: httpProbe, promProbe, k8sProbe)"
            in message
        )
        assert "runs commands with the chaos ServiceAccount's token" in message
        nothing_created(api, ns)


def test_a_k8s_probe_needs_the_authors_own_rights_on_what_it_names(
    cluster: Cluster, api: client.ApiClient, k8s_probes_allowed: None
) -> None:
    with tenant(cluster, api, [*BASE_RULES, ACT_AS_ACCOUNT]) as (ns, as_tenant):
        status, message = refused(as_tenant, ns, litmus_experiment("evict", [k8s_probe(ns)]))
        assert status == 403, message
        assert f"system:serviceaccount:{ns}:author may not delete pods in namespace {ns}" in message, message
        assert (
            "which litmus.probes[0] (evict-peers) (k8sProbe) would do with the chaos ServiceAccount's rights"
            in message
        )
        nothing_created(api, ns)


def test_a_chaos_service_account_the_author_may_not_impersonate_is_refused(
    cluster: Cluster, api: client.ApiClient, k8s_probes_allowed: None
) -> None:
    with tenant(cluster, api, BASE_RULES) as (ns, as_tenant):
        status, message = refused(as_tenant, ns, litmus_experiment("as-litmus", NETWORK_LATENCY="300"))
        assert status == 403, message
        assert f"may not impersonate serviceaccount {ACCOUNT} in namespace {ns}" in message, message
        assert "Litmus and its probes act with that account's rights" in message
        nothing_created(api, ns)


@pytest.mark.parametrize(
    ("env", "words"),
    [
        (
            {"NETWORK_INTERFACE": "eth0; reboot"},
            "litmus.env.NETWORK_INTERFACE must be a network interface name",
        ),
        ({"DESTINATION_HOSTS": "db|$(id)"}, "litmus.env.DESTINATION_HOSTS must be host names"),
        ({"LIB_IMAGE": "attacker/helper:latest"}, "litmus.env must not set LIB_IMAGE"),
    ],
)
def test_a_shell_unsafe_or_withheld_parameter_is_refused_by_the_schema(
    cluster: Cluster, api: client.ApiClient, k8s_probes_allowed: None, env: dict[str, str], words: str
) -> None:
    with tenant(cluster, api, [*BASE_RULES, ACT_AS_ACCOUNT]) as (ns, as_tenant):
        status, message = refused(as_tenant, ns, litmus_experiment("unsafe", **env))
        assert status == 422, message
        assert words in message, message
        nothing_created(api, ns)


def test_an_author_with_those_rights_is_admitted(
    cluster: Cluster, api: client.ApiClient, k8s_probes_allowed: None
) -> None:
    """The control: the same experiments pass for a tenant who could do it all directly."""
    rules = [
        *BASE_RULES,
        ACT_AS_ACCOUNT,
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["delete", "list"]},
    ]
    with tenant(cluster, api, rules) as (ns, as_tenant):
        body = litmus_experiment("ok", [k8s_probe(ns)], NETWORK_INTERFACE="eth0", DESTINATION_HOSTS="db|5432")
        created = as_tenant.create_namespaced_custom_object(GROUP, VERSION, ns, "chaosexperiments", body)
        assert created["metadata"]["name"] == "ok"
        nothing_created(api, ns, "ok")
