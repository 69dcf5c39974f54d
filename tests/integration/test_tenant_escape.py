"""Hostile tenants (issue 12): nothing a tenant writes may widen what a run touches.

Each case acts as a tenant through impersonation against the real API server and the real
webhook, and asserts what a person would read (the refusal, or the run's reason) and that nothing
outside the declared scope changed: pod UIDs, NetworkPolicies and nodes of both the tenant's and
a victim namespace.

Tenants, as a cluster admin would grant them:
- the *author* holds every verb on `aftershock.dev` `*` in its own namespace (which includes
  `chaosruns/status`: RBAC's `*` covers subresources) and may delete pods there;
- the *runner* holds the same `aftershock.dev` rights but may not touch pods itself.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.support.chaos import GROUP, VERSION, Chaos, experiment
from tests.support.cluster import Cluster
from tests.support.operator import OperatorProcess
from tests.support.policies import OPT_IN
from tests.support.waiting import wait_for
from tests.support.workloads import deployment, pods_of, ready_pods

AFTERSHOCK_ALL = {"apiGroups": [GROUP], "resources": ["*"], "verbs": ["*"]}
READ_PODS = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}
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


def _namespace(api: client.ApiClient, prefix: str) -> str:
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
    home, victim = _namespace(api, "tenant"), _namespace(api, "victim")
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
