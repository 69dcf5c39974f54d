"""The shared cluster cache against the real API server: what it lists and watches appears and
goes, active runs are counted, a namespaced cache reads only its namespaces (under RBAC that
grants nothing else), and waiters wake on a change."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from aftershock.cluster.cache import ClusterCache
from aftershock.cluster.store import NotWatched
from tests.support.chaos import GROUP, VERSION, Chaos, experiment
from tests.support.cluster import Cluster
from tests.support.waiting import wait_for
from tests.support.workloads import deployment

Obj = dict[str, Any]
MakeCache = Callable[..., ClusterCache]


@pytest.fixture
def make_cache(api: client.ApiClient) -> Iterator[MakeCache]:
    """Start caches (synced before they are returned); all are stopped after the test."""
    started: list[ClusterCache] = []

    def make(
        scope: tuple[str, ...] | None, kinds: list[str], *, using: client.ApiClient = api
    ) -> ClusterCache:
        cache = ClusterCache(using, scope, kinds=kinds)
        started.append(cache)
        cache.start()
        return cache

    yield make
    for cache in started:
        cache.stop(timeout=10)
    for cache in started:
        assert not any(i.thread.is_alive() for i in cache._informers), "an informer did not stop"


def _uids(objs: list[Obj]) -> set[str]:
    return {o["metadata"]["uid"] for o in objs}


def test_deployment_replicaset_and_pods_appear_and_a_deleted_pod_goes(
    api: client.ApiClient, namespace: str, make_cache: MakeCache
) -> None:
    cache = make_cache((namespace,), ["Pod", "ReplicaSet", "Deployment"])
    assert cache.wait_synced(30)
    assert cache.list("Pod", namespace) == []  # synced and empty, not "unknown"
    created = client.AppsV1Api(api).create_namespaced_deployment(namespace, deployment("web", replicas=2))
    owner = created.metadata.uid

    def pods() -> list[Obj]:
        replicasets = cache.replicasets_controlled_by(namespace, [owner])
        return cache.pods_controlled_by(namespace, _uids(replicasets))

    def two_pods() -> list[Obj] | None:
        current = pods()
        return current if len(current) == 2 else None

    found = wait_for(two_pods, timeout=60, message="two pods in the cache")
    deployment_obj = cache.get("Deployment", namespace, "web")
    assert deployment_obj is not None and deployment_obj["metadata"]["uid"] == owner
    assert deployment_obj["kind"] == "Deployment" and deployment_obj["apiVersion"] == "apps/v1"
    assert "managedFields" not in deployment_obj["metadata"]
    live = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector="app=web").items
    assert _uids(found) == {p.metadata.uid for p in live}
    assert _uids(cache.list("Pod", namespace, {"matchLabels": {"app": "web"}})) == _uids(found)
    assert cache.list("Pod", namespace, "app=other") == []

    victim = found[0]["metadata"]
    client.CoreV1Api(api).delete_namespaced_pod(victim["name"], namespace, grace_period_seconds=0)
    wait_for(
        lambda: victim["uid"] not in _uids(cache.list("Pod", namespace)),
        timeout=30,
        message="the deleted pod gone from the cache",
    )
    # its replacement, controlled by the same ReplicaSet, appears
    wait_for(
        lambda: len(pods()) == 2 and victim["uid"] not in _uids(pods()),
        timeout=60,
        message="the replacement pod in the cache",
    )
    assert cache.count("Pod") == len(cache.list("Pod"))


def test_wait_for_change_returns_promptly_after_a_change(
    api: client.ApiClient, namespace: str, make_cache: MakeCache
) -> None:
    cache = make_cache((namespace,), ["Deployment"])
    assert cache.wait_synced(30)
    apps = client.AppsV1Api(api)

    def change_once_waiting() -> None:
        wait_for(lambda: cache._waiters.get(namespace), timeout=10, interval=0.01, message="a waiter")
        apps.create_namespaced_deployment(namespace, deployment("watched", replicas=0))

    async def scenario() -> tuple[int, int, float]:
        seen = cache.version(namespace)
        changing = asyncio.get_running_loop().run_in_executor(None, change_once_waiting)
        started = time.monotonic()
        version = await cache.wait_for_change(namespace, seen, timeout=30)
        elapsed = time.monotonic() - started
        await changing
        return seen, version, elapsed

    seen, version, elapsed = asyncio.run(scenario())
    assert version > seen
    assert elapsed < 15, elapsed  # the watch event woke it, long before the timeout
    assert cache.get("Deployment", namespace, "watched") is not None


def test_active_runs_are_counted_and_uncounted(
    api: client.ApiClient, solo_namespace: str, make_cache: MakeCache
) -> None:
    ns = solo_namespace  # no operator serves it: the test moves the run's phase itself
    cache = make_cache((ns,), ["ChaosRun", "ChaosPolicy"])
    assert cache.wait_synced(30)
    assert cache.active_runs(ns) == []
    chaos = Chaos(api, ns)
    chaos.create_experiment(experiment("exp", app="web", extra_spec={"schedule": "@yearly", "suspend": True}))
    objects = client.CustomObjectsApi(api)
    run = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ChaosRun", "metadata": {"name": "by-hand"}}
    objects.create_namespaced_custom_object(
        GROUP, VERSION, ns, "chaosruns", {**run, "spec": {"experiment": "exp"}}
    )
    wait_for(lambda: cache.get("ChaosRun", ns, "by-hand"), timeout=30, message="the run in the cache")
    assert cache.active_runs() == []  # no phase yet

    def set_phase(phase: str) -> None:
        objects.patch_namespaced_custom_object_status(
            GROUP, VERSION, ns, "chaosruns", "by-hand", {"status": {"phase": phase}}
        )

    set_phase("Injecting")
    wait_for(
        lambda: [r["metadata"]["name"] for r in cache.active_runs(ns)] == ["by-hand"],
        timeout=30,
        message="the run counted as active",
    )
    set_phase("Completed")
    wait_for(lambda: cache.active_runs() == [], timeout=30, message="the run no longer counted")
    set_run = cache.get("ChaosRun", ns, "by-hand")
    assert set_run is not None and set_run["status"]["phase"] == "Completed"
    # the suite's policy is there, read cluster-wide even though runs are read in one namespace
    assert cache.list("ChaosPolicy")


def test_namespaced_cache_reads_only_its_namespaces(
    cluster: Cluster,
    api: client.ApiClient,
    solo_namespace: str,
    another_solo_namespace: str,
    make_cache: MakeCache,
) -> None:
    mine, other = solo_namespace, another_solo_namespace
    # an identity that may list and watch pods in `mine` and nowhere else
    user = f"aftershock-cache-{uuid.uuid4().hex[:8]}"
    rbac = client.RbacAuthorizationV1Api(api)
    rbac.create_namespaced_role(
        mine,
        {
            "metadata": {"name": user},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        mine,
        {
            "metadata": {"name": user},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": user},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
    )
    as_user = cluster.api_client(impersonate=user)
    core = client.CoreV1Api(api)
    pod = {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "app", "image": "registry.invalid/aftershock/fake:1"}]},
    }
    core.create_namespaced_pod(other, pod)
    core.create_namespaced_pod(mine, pod)

    namespaced = make_cache((mine,), ["Pod"], using=as_user)
    wait_for(namespaced.wait_synced, timeout=30, message="the namespaced cache synced under its Role")
    wait_for(lambda: namespaced.get("Pod", mine, "p"), timeout=30, message="the pod of its namespace")
    with pytest.raises(NotWatched):
        namespaced.list("Pod", other)
    assert {p["metadata"]["namespace"] for p in namespaced.list("Pod")} == {mine}

    # the same identity cannot read cluster-wide: a cluster-wide cache never gets its first LIST
    cluster_wide = make_cache(None, ["Pod"], using=as_user)
    wait_for(lambda: cluster_wide._informers[0].failures >= 1, timeout=30, message="a refused LIST")
    assert not cluster_wide.synced
    # while an identity that may sees both pods
    admin_cache = make_cache(None, ["Pod"])
    assert admin_cache.wait_synced(30)
    wait_for(
        lambda: admin_cache.get("Pod", mine, "p") and admin_cache.get("Pod", other, "p"),
        timeout=30,
        message="both pods in a cluster-wide cache",
    )
