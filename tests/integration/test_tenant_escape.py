"""Hostile tenants (issue 12): nothing a tenant writes may widen what a run touches.

Each case acts as a tenant through impersonation against the real API server and the real
webhook, and asserts what a person would read (the refusal, or the run's reason) and that nothing
outside the declared scope changed: pod UIDs, NetworkPolicies and nodes of both the tenant's and
a victim namespace.

Tenants, as a cluster admin would grant them:
- the *author* holds every verb on `aftershock.dev` `*` in its own namespace (which includes
  `chaosruns/status`: RBAC's `*` covers subresources) and may delete pods there;
- the *runner* holds the same `aftershock.dev` rights but may not touch pods itself.

Class 6 (input that cannot be misread) has a tenant of its own: every aftershock.dev right plus
pods and NetworkPolicies in its namespace; each case in HOSTILE is self-contained (what the tenant
submits, the message a person reads). Its 409 case: a tenant takes the name of the NetworkPolicy a
partition run would create; the run ends Errored (ArtifactNameTaken), the tenant's NetworkPolicy
is left exactly as it was, and no pod is marked.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.integration.conftest import WEBHOOK_CONFIG, remove_webhooks
from tests.support.chaos import GROUP, VERSION, Chaos, experiment, partition
from tests.support.cluster import Cluster
from tests.support.operator import OperatorProcess
from tests.support.policies import OPT_IN
from tests.support.waiting import wait_for
from tests.support.workloads import deployment, pods_of, ready_pods

AFTERSHOCK_ALL = {"apiGroups": [GROUP], "resources": ["*"], "verbs": ["*"]}
READ_PODS = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}
REVIEW = "aftershock.dev/review"
DELETE_PODS = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "delete"]}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Scene:
    api: client.ApiClient
    home: str  # the tenants' namespace
    victim: str  # another team's namespace
    author: client.CustomObjectsApi
    runner: client.CustomObjectsApi
    pods: dict[str, list[dict[str, str]]]  # app → [{name, uid, namespace}]
    node: str

    def pod(self, app: str, index: int = 0, **extra: Any) -> dict[str, Any]:
        return {"kind": "Pod", **self.pods[app][index], **extra}

    def snapshot(self) -> dict[str, Any]:
        core, net = client.CoreV1Api(self.api), client.NetworkingV1Api(self.api)
        return {
            ns: {
                "pods": sorted(p.metadata.uid for p in core.list_namespaced_pod(ns).items),
                "network_policies": sorted(
                    p.metadata.uid for p in net.list_namespaced_network_policy(ns).items
                ),
            }
            for ns in (self.home, self.victim)
        } | {"nodes": sorted((n.metadata.name, bool(n.spec.unschedulable)) for n in core.list_node().items)}


def _opted_in_namespace(api: client.ApiClient, prefix: str) -> str:
    name = f"t-{prefix}-{uuid.uuid4().hex[:5]}"
    client.CoreV1Api(api).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=OPT_IN))
    )
    return name


def _tenant(cluster: Cluster, ns: str, name: str, rules: list[dict[str, Any]]) -> client.CustomObjectsApi:
    core, rbac = client.CoreV1Api(cluster.api_client()), client.RbacAuthorizationV1Api(cluster.api_client())
    core.create_namespaced_service_account(ns, {"metadata": {"name": name}})
    rbac.create_namespaced_role(ns, {"metadata": {"name": name}, "rules": rules})
    rbac.create_namespaced_role_binding(
        ns,
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}],
        },
    )
    return client.CustomObjectsApi(cluster.api_client(impersonate=f"system:serviceaccount:{ns}:{name}"))


@pytest.fixture(scope="module")
def scene(cluster: Cluster, api: client.ApiClient, operator: OperatorProcess) -> Iterator[Scene]:
    home, victim = _opted_in_namespace(api, "tenant"), _opted_in_namespace(api, "victim")
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(home, deployment("app", replicas=2))
    apps.create_namespaced_deployment(home, deployment("db", replicas=1))
    # scheduled but not Ready for ten minutes: a run of it waits in Pending for steady state
    apps.create_namespaced_deployment(home, deployment("stuck", replicas=2, ready_delay="600s"))
    apps.create_namespaced_deployment(victim, deployment("victim", replicas=2))
    wait_for(
        lambda: (
            len(ready_pods(api, home, "app")) == 2
            and len(ready_pods(api, home, "db")) == 1
            and len(ready_pods(api, victim, "victim")) == 2
            and len([p for p in pods_of(api, home, "stuck") if p.spec.node_name]) == 2
        ),
        timeout=90,
        message="the tenant's and the victim's workloads",
    )
    author = _tenant(cluster, home, "author", [AFTERSHOCK_ALL, DELETE_PODS])
    runner = _tenant(cluster, home, "runner", [AFTERSHOCK_ALL, READ_PODS])
    pods = {
        app: [
            {"name": p.metadata.name, "uid": p.metadata.uid, "namespace": ns}
            for p in sorted(pods_of(api, ns, app), key=lambda p: p.metadata.name)
        ]
        for ns, app in ((home, "app"), (home, "db"), (home, "stuck"), (victim, "victim"))
    }
    node = str(pods_of(api, home, "app")[0].spec.node_name)
    # the author's experiments: a pod delete of the stuck workload (its runs wait in Pending), and
    # a dry run and a suspended one of the ready workload
    stuck = experiment("stuck", app="stuck", timeout="120s")
    dry = experiment("dry", app="app", extra_spec={"dryRun": True})
    paused = experiment("paused", app="app", extra_spec={"schedule": "@yearly", "suspend": True})
    for body in (stuck, dry, paused):
        author.create_namespaced_custom_object(GROUP, VERSION, home, "chaosexperiments", body)
    yield Scene(api, home, victim, author, runner, pods, node)
    for ns in (home, victim):
        client.CoreV1Api(api).delete_namespace(ns)


# --- class 1: status is a journal, not an authority ------------------------------------------


@dataclass(frozen=True)
class Forged:
    """A status a tenant writes over a run the operator has accepted (Pending)."""

    id: str
    status: Callable[[Scene], dict[str, Any]]
    expect: str  # in the run's message when it ends Errored (JournalRejected)


def _injecting(targets: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"phase": "Injecting", "targets": targets, "startTime": _stamp(_now()), **extra}


FORGED = [
    Forged(
        "pod-in-another-namespace",
        lambda s: _injecting([s.pod("victim")]),
        "is outside the run's target namespace",
    ),
    Forged(
        "pod-the-selector-does-not-match",
        lambda s: _injecting([s.pod("db")]),
        "is not a live pod the run's selector matches",
    ),
    Forged(
        "live-name-with-a-made-up-uid",
        lambda s: _injecting([s.pod("stuck", uid=str(uuid.uuid4()))]),
        "is not a live pod the run's selector matches",
    ),
    Forged(
        "more-targets-than-the-mode-yields",
        lambda s: _injecting([s.pod("stuck", 0), s.pod("stuck", 1)]),
        "yields at most 1",
    ),
    Forged(
        "the-same-pod-twice",
        lambda s: _injecting([s.pod("stuck", 0), s.pod("stuck", 0)]),
        "recorded twice",
    ),
    Forged(
        "a-node-for-a-pod-fault",
        lambda s: _injecting([{"kind": "Node", "name": s.node}]),
        "not a Pod",
    ),
    Forged(
        "start-time-in-the-future",
        lambda s: _injecting([s.pod("stuck")], startTime=_stamp(_now() + dt.timedelta(hours=1))),
        "lies outside the run's life",
    ),
    Forged(
        "deadline-stretched-to-keep-a-fault",
        lambda s: _injecting([s.pod("stuck")], deadline=_stamp(_now() + dt.timedelta(days=30))),
        "later than the spec allows",
    ),
    Forged(
        "injected-in-the-future",
        lambda s: _injecting([s.pod("stuck", injectedAt=_stamp(_now() + dt.timedelta(days=1)))]),
        "outside the run's own time",
    ),
    Forged(
        "claimed-by-a-ghost-with-a-far-deadline",
        lambda s: _injecting(
            [s.pod("stuck", injectedAt=_stamp(_now()))],
            claimedBy="ghost",
            claimLease="kube-system/ghost",
            deadline=_stamp(_now() + dt.timedelta(days=365)),
        ),
        "later than the spec allows",
    ),
]


@pytest.mark.parametrize("case", FORGED, ids=[c.id for c in FORGED])
def test_a_forged_journal_is_rejected_and_touches_nothing(scene: Scene, case: Forged) -> None:
    chaos = Chaos(scene.api, scene.home)
    before = scene.snapshot()
    name = f"forged-{case.id}"[:52]
    run = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ChaosRun", "metadata": {"name": name}}
    scene.author.create_namespaced_custom_object(
        GROUP, VERSION, scene.home, "chaosruns", {**run, "spec": {"experiment": "stuck"}}
    )
    wait_for(
        lambda: (chaos.get("chaosruns", name).get("status") or {}).get("phase") == "Pending",
        timeout=30,
        message=f"{name} accepted (it waits for the stuck workload)",
    )
    scene.author.patch_namespaced_custom_object_status(
        GROUP, VERSION, scene.home, "chaosruns", name, {"status": case.status(scene)}
    )
    ended = wait_for(
        lambda: (
            (s := chaos.get("chaosruns", name).get("status") or {}).get("phase") in ("Errored", "Completed")
            and s
        ),
        timeout=30,
        message=f"{name} ended",
    )
    assert (ended["phase"], ended["reason"]) == ("Errored", "JournalRejected"), ended
    assert case.expect in ended["message"], ended["message"]
    assert "nothing more is injected" in ended["message"]
    assert scene.snapshot() == before


# --- class 2: admission of runs, on CREATE and UPDATE ----------------------------------------


@dataclass(frozen=True)
class Refusal:
    """Something a tenant tries that the API server (schema, CEL) or the webhook must refuse."""

    id: str
    act: Callable[[Scene], object]
    expect: str  # in the message kubectl shows


def _run(name: str, spec: dict[str, Any], labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ChaosRun",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": spec,
    }


def _create_run(tenant: str, body: dict[str, Any]) -> Callable[[Scene], object]:
    def act(s: Scene) -> object:
        objects = s.author if tenant == "author" else s.runner
        return objects.create_namespaced_custom_object(GROUP, VERSION, s.home, "chaosruns", body)

    return act


def _filled_then(patch: dict[str, Any], subject: str = "spec") -> Callable[[Scene], object]:
    """The author makes a bare run of the dry-run experiment, lets the operator fill it, then
    patches it."""

    def act(s: Scene) -> object:
        name = f"fill-{uuid.uuid4().hex[:6]}"
        s.author.create_namespaced_custom_object(
            GROUP, VERSION, s.home, "chaosruns", _run(name, {"experiment": "dry"})
        )
        chaos = Chaos(s.api, s.home)
        wait_for(
            lambda: chaos.get("chaosruns", name)["spec"].get("dryRun") is not None,
            timeout=30,
            message=f"{name} filled in by the operator",
        )
        body = {subject: patch} if subject == "spec" else {"metadata": patch}
        return s.author.patch_namespaced_custom_object(GROUP, VERSION, s.home, "chaosruns", name, body)

    return act


REFUSALS = [
    Refusal(
        "run-lifts-dry-run-of-its-experiment",
        _create_run("runner", _run("lift-dry", {"experiment": "dry", "dryRun": False})),
        "sets dryRun: false although its experiment is a dry run",
    ),
    Refusal(
        "run-of-a-suspended-experiment",
        _create_run("runner", _run("wake-paused", {"experiment": "paused"})),
        "is suspended",
    ),
    Refusal(
        "run-with-another-target-by-someone-who-may-not-delete-pods",
        _create_run(
            "runner",
            _run(
                "other-target",
                {
                    "experiment": "dry",
                    "dryRun": True,
                    "target": {
                        "kind": "Deployment",
                        "selector": {"matchLabels": {"app": "db"}},
                        "mode": "all",
                    },
                },
            ),
        ),
        "may not delete pods",
    ),
    Refusal(
        "run-posing-as-a-schedule-slot",
        _create_run(
            "author", _run("slot-poser", {"experiment": "dry"}, {"aftershock.dev/trigger": "schedule"})
        ),
        "only aftershock creates runs for schedule slots",
    ),
    Refusal(
        "run-named-for-a-future-slot",
        _create_run("author", _run(f"paused-{int(_now().timestamp()) + 7200}", {"experiment": "paused"})),
        "future schedule slot",
    ),
    Refusal(
        "spec-changed-after-it-was-filled",
        _filled_then({"dryRun": False}),
        "",  # the CEL rule or the webhook: either way it is refused (message checked below)
    ),
    Refusal(
        "trigger-label-added-later",
        _filled_then({"labels": {"aftershock.dev/trigger": "schedule"}}, subject="metadata"),
        "cannot be changed",
    ),
]


@pytest.mark.parametrize("case", REFUSALS, ids=[c.id for c in REFUSALS])
def test_a_run_cannot_do_more_than_its_experiment(scene: Scene, case: Refusal) -> None:
    before = scene.snapshot()
    with pytest.raises(ApiException) as refused:
        case.act(scene)
    assert refused.value.status in (400, 403, 422), refused.value.body
    message = str(json.loads(refused.value.body)["message"])
    assert case.expect in message, message
    if not case.expect:
        assert "immutable" in message or "cannot be changed" in message or "frozen" in message, message
    assert scene.snapshot() == before


# --- class 6: input that cannot be misread ----------------------------------------------

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


def test_hostile_tables_are_large_and_unique() -> None:
    ids = [c.id for c in (*FORGED, *REFUSALS, *HOSTILE)]
    # issue 12: at least 40 hostile cases (with the 409 case below, which is one more)
    assert len(ids) >= 40 and len(set(ids)) == len(ids)


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


# --- class 3: with the webhook disabled, nothing unreviewed runs --------------------------------


@contextlib.contextmanager
def webhook_disabled(api: client.ApiClient) -> Iterator[None]:
    """The session operator's webhook configurations removed (as a cluster admin might, or as
    failurePolicy Ignore behaves while it is unreachable), then put back exactly as they were."""
    admission = client.AdmissionregistrationV1Api(api)
    selector = f"metadata.name={WEBHOOK_CONFIG}"
    saved = [
        (kind, api.sanitize_for_serialization(item))
        for kind, items in (
            ("validating", admission.list_validating_webhook_configuration(field_selector=selector).items),
            ("mutating", admission.list_mutating_webhook_configuration(field_selector=selector).items),
        )
        for item in items
    ]
    assert len(saved) == 2, saved
    remove_webhooks(api)
    try:
        yield
    finally:
        for kind, body in saved:
            body["metadata"] = {"name": body["metadata"]["name"]}
            if kind == "validating":
                admission.create_validating_webhook_configuration(body)
            else:
                admission.create_mutating_webhook_configuration(body)


def _ended(chaos: Chaos, name: str) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        status = chaos.get("chaosruns", name).get("status") or {}
        return status if status.get("phase") in ("Completed", "Aborted", "Skipped", "Errored") else None

    return wait_for(finished, timeout=60, message=f"run {name} to end")


def _review_of(chaos: Chaos, plural: str, name: str) -> dict[str, Any] | None:
    raw = (chaos.get(plural, name)["metadata"].get("annotations") or {}).get(REVIEW)
    return json.loads(raw) if raw else None


def test_with_the_webhook_disabled_nothing_unreviewed_runs(scene: Scene) -> None:
    """Issue 12, class 3. The runner may write experiments but may not delete pods. With the webhook
    gone it writes a pod-delete experiment (run once, by the operator), one carrying a review stamp
    copied from the author's experiment, and a run of the author's experiment aimed elsewhere:
    each run ends Errored (AuthorNotReviewed) and no pod changes; a run posing as a schedule slot
    ends Errored (PosesAsSlot). A bare run of a reviewed
    experiment still runs. Once the webhook is back, the runner cannot bless its own experiment by
    touching it; the author, who may delete pods, can — and becomes its reviewed author."""
    chaos = Chaos(scene.api, scene.home)
    before = scene.snapshot()
    reviewed = _review_of(chaos, "chaosexperiments", "dry")
    assert reviewed is not None and reviewed["author"] == f"system:serviceaccount:{scene.home}:author"
    raw_review = chaos.get("chaosexperiments", "dry")["metadata"]["annotations"][REVIEW]
    with webhook_disabled(scene.api):
        runner = scene.runner
        runner.create_namespaced_custom_object(
            GROUP, VERSION, scene.home, "chaosexperiments", experiment("unreviewed", app="app")
        )
        copied = experiment("copied", app="db")
        copied["metadata"]["annotations"] = {REVIEW: raw_review}
        copied["spec"]["suspend"] = True  # runs only when asked
        copied["spec"]["schedule"] = YEARLY
        runner.create_namespaced_custom_object(GROUP, VERSION, scene.home, "chaosexperiments", copied)
        runner.create_namespaced_custom_object(
            GROUP, VERSION, scene.home, "chaosruns", _run("copied-now", {"experiment": "copied"})
        )
        elsewhere = experiment("x", app="app")["spec"]
        runner.create_namespaced_custom_object(
            GROUP,
            VERSION,
            scene.home,
            "chaosruns",
            _run("aimed-elsewhere", {"experiment": "stuck", "target": elsewhere["target"]}),
        )
        runner.create_namespaced_custom_object(
            GROUP, VERSION, scene.home, "chaosruns", _run("bare-dry", {"experiment": "dry"})
        )
        slot_label = {"aftershock.dev/trigger": "schedule"}
        runner.create_namespaced_custom_object(
            GROUP, VERSION, scene.home, "chaosruns", _run("posing-dry", {"experiment": "dry"}, slot_label)
        )
        once = wait_for(
            lambda: next(iter(chaos.runs("unreviewed")), None), timeout=30, message="the once run"
        )
        expected = {
            once["metadata"]["name"]: (
                "AuthorNotReviewed",
                "ChaosExperiment unreviewed was never checked by the admission webhook: it carries no"
                " review stamp",
            ),
            "copied-now": (
                "AuthorNotReviewed",
                "ChaosExperiment copied was never checked by the admission webhook: its review stamp"
                " does not match it",
            ),
            "aimed-elsewhere": (
                "AuthorNotReviewed",
                "it does more than its experiment (it targets something other than its experiment)",
            ),
            "posing-dry": ("PosesAsSlot", "only aftershock creates runs for schedule slots"),
        }
        for name, (reason, text) in expected.items():
            status = _ended(chaos, name)
            assert (status["phase"], status.get("reason")) == ("Errored", reason), (name, status)
            assert text in status["message"], (name, status["message"])
            assert "nothing was injected" in status["message"]
        bare = _ended(chaos, "bare-dry")
        assert bare.get("reason") != "AuthorNotReviewed", bare
        assert bare["phase"] in ("Completed", "Skipped"), bare
    assert scene.snapshot() == before
    assert _review_of(chaos, "chaosexperiments", "unreviewed") is None

    # the webhook is back: the runner touching its experiment does not make it reviewed …
    wait_for(lambda: _registered(scene.api), timeout=30, message="the webhook configurations back")
    touch = {
        "metadata": {"annotations": {REVIEW: "renew"}}
    }  # asks the webhook for a review (docs/security.md)
    scene.runner.patch_namespaced_custom_object(
        GROUP, VERSION, scene.home, "chaosexperiments", "unreviewed", touch
    )
    assert _review_of(chaos, "chaosexperiments", "unreviewed") is None
    # … the author's does, with the author as the reviewed author
    scene.author.patch_namespaced_custom_object(
        GROUP, VERSION, scene.home, "chaosexperiments", "unreviewed", touch
    )
    stamp = _review_of(chaos, "chaosexperiments", "unreviewed")
    assert stamp is not None and stamp["author"] == f"system:serviceaccount:{scene.home}:author", stamp
    # and nobody can change or drop a stamp by hand: it is put back as it was
    forged = {"metadata": {"annotations": {REVIEW: json.dumps({**stamp, "author": "system:admin"})}}}
    scene.author.patch_namespaced_custom_object(
        GROUP, VERSION, scene.home, "chaosexperiments", "unreviewed", forged
    )
    assert _review_of(chaos, "chaosexperiments", "unreviewed") == stamp
    dropped = {"metadata": {"annotations": {REVIEW: None}}}
    scene.author.patch_namespaced_custom_object(
        GROUP, VERSION, scene.home, "chaosexperiments", "unreviewed", dropped
    )
    assert _review_of(chaos, "chaosexperiments", "unreviewed") == stamp
    # a dry run of it now starts (and, being dry, changes nothing)
    scene.runner.create_namespaced_custom_object(
        GROUP,
        VERSION,
        scene.home,
        "chaosruns",
        _run("blessed-dry", {"experiment": "unreviewed", "dryRun": True}),
    )
    blessed = _ended(chaos, "blessed-dry")
    assert blessed.get("reason") != "AuthorNotReviewed", blessed
    assert scene.snapshot() == before


def _registered(api: client.ApiClient) -> bool:
    admission = client.AdmissionregistrationV1Api(api)
    selector = f"metadata.name={WEBHOOK_CONFIG}"
    return bool(
        admission.list_validating_webhook_configuration(field_selector=selector).items
        and admission.list_mutating_webhook_configuration(field_selector=selector).items
    )
