"""The shared cluster cache without a cluster: informer planning, the store fed events directly
(indexes, selectors, active runs, versions, relists), waiters woken across threads, and the
informer's handling of raw watch lines."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from aftershock.cluster.cache import ClusterCache, Gone, WatchFailed, _clean, _lines, backoff_delay
from aftershock.cluster.kinds import KINDS, Partition, plan
from aftershock.cluster.store import CacheStore, NotSynced, NotWatched
from aftershock.core.selectors import SelectorError, parse_label_selector
from tests.support.waiting import wait_for

Obj = dict[str, Any]


def obj(
    kind: str,
    name: str,
    namespace: str | None = "shop",
    *,
    rv: str = "1",
    labels: dict[str, str] | None = None,
    owner: str | None = None,
    uid: str | None = None,
    phase: str | None = None,
) -> Obj:
    meta: Obj = {"name": name, "resourceVersion": rv, "uid": uid or f"uid-{namespace}-{name}"}
    if namespace:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = labels
    if owner:
        meta["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "o", "uid": "other", "controller": False},
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "o", "uid": owner, "controller": True},
        ]
    body: Obj = {"kind": kind, "metadata": meta}
    if phase:
        body["status"] = {"phase": phase}
    return body


def names(objs: list[Obj]) -> list[str]:
    return [o["metadata"]["name"] for o in objs]


def synced_store(scope: tuple[str, ...] | None = ("shop", "payments"), *kinds: str) -> CacheStore:
    store = CacheStore(plan(kinds or ("Pod", "ReplicaSet", "ChaosRun", "ChaosPolicy"), scope))
    for p in store.partitions:
        store.replace(p.kind, p.namespace, [])
    return store


# --- planning ---------------------------------------------------------------------------------


def test_whole_cluster_scope_is_one_informer_per_kind() -> None:
    assert plan(["Pod", "ChaosRun", "ChaosPolicy"], None) == (
        Partition("Pod", None),
        Partition("ChaosRun", None),
        Partition("ChaosPolicy", None),
    )


def test_namespaced_scope_never_watches_namespaced_kinds_cluster_wide() -> None:
    partitions = plan(["Pod", "ChaosPolicy", "Pod"], ("shop", "payments"))
    assert partitions == (
        Partition("Pod", "shop"),
        Partition("Pod", "payments"),
        Partition("ChaosPolicy", None),  # cluster-scoped: the only cluster-wide watch
    )


def test_lease_only_in_the_operators_namespace() -> None:
    assert plan(["Pod"], None, lease_namespace="aftershock-system")[-1] == Partition(
        "Lease", "aftershock-system"
    )
    assert plan(["Lease"], ("shop",), lease_namespace="ops") == (Partition("Lease", "ops"),)
    with pytest.raises(ValueError, match="lease_namespace"):
        plan(["Lease"], None)
    with pytest.raises(ValueError, match="ConfigMap"):
        plan(["ConfigMap"], None)


def test_every_default_kind_is_known() -> None:
    assert {"Pod", "ReplicaSet", "PodDisruptionBudget", "ChaosRun", "ChaosPolicy", "Lease"} <= set(KINDS)
    assert KINDS["PodDisruptionBudget"].api_version == "policy/v1"
    assert KINDS["Pod"].api_version == "v1"


# --- sync ---------------------------------------------------------------------------------


def test_not_synced_is_not_empty_and_unwatched_is_neither() -> None:
    store = CacheStore(plan(["Pod", "ChaosPolicy"], ("shop", "payments")))
    assert not store.synced and not store.wait_synced(0)
    with pytest.raises(NotSynced):
        store.list("Pod", "shop")
    store.replace("Pod", "shop", [])
    assert store.list("Pod", "shop") == []  # listed, and empty
    with pytest.raises(NotSynced):
        store.list("Pod", "payments")
    with pytest.raises(NotSynced):
        store.list("Pod")  # every namespace needs its first LIST
    with pytest.raises(NotWatched):
        store.list("Pod", "elsewhere")
    with pytest.raises(NotWatched):
        store.list("Deployment", "shop")
    assert store.is_synced("Pod", "shop") and not store.is_synced("Pod")
    store.replace("Pod", "payments", [])
    store.replace("ChaosPolicy", None, [])
    assert store.synced and store.wait_synced(0)


def test_wait_synced_wakes_when_the_last_partition_is_listed() -> None:
    store = CacheStore(plan(["Pod"], ("shop",)))
    result: list[bool] = []
    waiter = threading.Thread(target=lambda: result.append(store.wait_synced(30)))
    waiter.start()
    store.replace("Pod", "shop", [])
    waiter.join(30)
    assert result == [True]


# --- reads ---------------------------------------------------------------------------------


def test_events_add_change_and_remove_objects() -> None:
    store = synced_store()
    assert store.apply("Pod", "ADDED", obj("Pod", "a", rv="1"))
    assert not store.apply("Pod", "MODIFIED", obj("Pod", "a", rv="1"))  # nothing new
    assert store.apply("Pod", "MODIFIED", obj("Pod", "a", rv="2", labels={"x": "y"}))
    found = store.get("Pod", "shop", "a")
    assert found is not None and found["metadata"]["labels"] == {"x": "y"}
    assert store.get("Pod", "shop", "nope") is None
    assert store.count("Pod") == 1
    assert store.apply("Pod", "DELETED", obj("Pod", "a", rv="3"))
    assert not store.apply("Pod", "DELETED", obj("Pod", "a", rv="3"))
    assert store.get("Pod", "shop", "a") is None and store.count("Pod") == 0


def test_get_of_a_cluster_scoped_kind_ignores_the_namespace() -> None:
    store = synced_store()
    store.apply("ChaosPolicy", "ADDED", obj("ChaosPolicy", "default", None))
    assert store.get("ChaosPolicy", None, "default") is not None
    assert store.get("ChaosPolicy", "shop", "default") is not None
    with pytest.raises(ValueError, match="namespaced"):
        store.get("Pod", None, "a")


def test_list_filters_by_namespace_and_selector_in_both_forms() -> None:
    store = synced_store()
    for name, ns, labels in [
        ("web-1", "shop", {"app": "web", "tier": "front"}),
        ("web-2", "shop", {"app": "web", "tier": "back", "legacy": "1"}),
        ("db-1", "shop", {"app": "db"}),
        ("web-3", "payments", {"app": "web"}),
    ]:
        store.apply("Pod", "ADDED", obj("Pod", name, ns, labels=labels))
    assert names(store.list("Pod")) == ["web-3", "db-1", "web-1", "web-2"]  # by namespace, then name
    assert names(store.list("Pod", "shop", {"matchLabels": {"app": "web"}})) == ["web-1", "web-2"]
    assert names(store.list("Pod", "shop", "app=web")) == ["web-1", "web-2"]
    assert names(store.list("Pod", "shop", "app==web,tier!=back")) == ["web-1"]
    assert names(store.list("Pod", None, "app in (web, db),!legacy")) == ["web-3", "db-1", "web-1"]
    assert names(store.list("Pod", "shop", "tier")) == ["web-1", "web-2"]
    assert names(store.list("Pod", "shop", "tier notin (front)")) == ["db-1", "web-2"]
    selector = {"matchExpressions": [{"key": "app", "operator": "In", "values": ["db"]}]}
    assert names(store.list("Pod", "shop", selector)) == ["db-1"]
    assert names(store.list("Pod", "shop", "")) == ["db-1", "web-1", "web-2"]
    # the adapters engines/workloads.py reads through
    assert names(store.list_pods("shop", "app=db")) == ["db-1"]
    assert store.list_replicasets("shop", "") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {}),
        ("a=b", {"matchExpressions": [{"key": "a", "operator": "In", "values": ["b"]}]}),
        ("a!=", {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": [""]}]}),
        (
            "x.io/a in (1, 2),!b",
            {
                "matchExpressions": [
                    {"key": "x.io/a", "operator": "In", "values": ["1", "2"]},
                    {"key": "b", "operator": "DoesNotExist"},
                ]
            },
        ),
    ],
)
def test_label_selector_strings_parse(text: str, expected: dict[str, Any]) -> None:
    assert parse_label_selector(text) == expected


@pytest.mark.parametrize("text", ["a=b=c", "a in b", "a,,b", "a>1"])
def test_unreadable_selector_strings_are_refused(text: str) -> None:
    with pytest.raises(SelectorError):
        parse_label_selector(text)


def test_pods_are_indexed_by_their_controller() -> None:
    store = synced_store()
    store.apply("Pod", "ADDED", obj("Pod", "a", owner="rs-1"))
    store.apply("Pod", "ADDED", obj("Pod", "b", owner="rs-2"))
    store.apply("Pod", "ADDED", obj("Pod", "c"))  # no controller
    store.apply("Pod", "ADDED", obj("Pod", "d", "payments", owner="rs-1"))  # other namespace
    assert names(store.pods_controlled_by("shop", {"rs-1", "rs-2"})) == ["a", "b"]
    assert names(store.pods_controlled_by("shop", ["rs-1"])) == ["a"]
    assert names(store.pods_controlled_by("payments", ["rs-1"])) == ["d"]
    # released by its controller (ownerReference removed), then adopted by another
    store.apply("Pod", "MODIFIED", obj("Pod", "a", rv="2"))
    assert names(store.pods_controlled_by("shop", ["rs-1"])) == []
    store.apply("Pod", "MODIFIED", obj("Pod", "a", rv="3", owner="rs-2"))
    assert names(store.pods_controlled_by("shop", ["rs-2"])) == ["a", "b"]
    store.apply("Pod", "DELETED", obj("Pod", "b", rv="4", owner="rs-2"))
    assert names(store.pods_controlled_by("shop", ["rs-2"])) == ["a"]
    store.apply("ReplicaSet", "ADDED", obj("ReplicaSet", "web-abc", owner="deploy-1"))
    assert names(store.replicasets_controlled_by("shop", ["deploy-1"])) == ["web-abc"]


def test_active_runs_follow_the_phase() -> None:
    store = synced_store()
    store.apply("ChaosRun", "ADDED", obj("ChaosRun", "r1", rv="1", phase="Pending"))
    store.apply("ChaosRun", "ADDED", obj("ChaosRun", "r2", "payments", rv="1", phase="Observing"))
    store.apply("ChaosRun", "ADDED", obj("ChaosRun", "old", rv="1", phase="Completed"))
    assert names(store.active_runs()) == ["r2"]
    for rv, phase in enumerate(["Injecting", "Observing", "Reverting"], start=2):
        store.apply("ChaosRun", "MODIFIED", obj("ChaosRun", "r1", rv=str(rv), phase=phase))
        assert names(store.active_runs()) == ["r2", "r1"], phase
    assert names(store.active_runs("shop")) == ["r1"]
    store.apply("ChaosRun", "MODIFIED", obj("ChaosRun", "r1", rv="9", phase="Aborted"))
    assert names(store.active_runs()) == ["r2"]
    store.apply("ChaosRun", "DELETED", obj("ChaosRun", "r2", "payments", rv="2", phase="Observing"))
    assert store.active_runs() == []


def test_relist_replaces_its_partition_only() -> None:
    store = synced_store()
    events: list[tuple[str, str]] = []
    store.subscribe("ChaosRun", lambda kind, o: events.append((kind, o["metadata"]["name"])))
    store.apply("ChaosRun", "ADDED", obj("ChaosRun", "kept", rv="1", phase="Observing"))
    store.apply("ChaosRun", "ADDED", obj("ChaosRun", "gone", rv="1", phase="Injecting", owner="x"))
    store.apply("ChaosRun", "ADDED", obj("ChaosRun", "elsewhere", "payments", rv="1", phase="Injecting"))
    events.clear()
    changed = store.replace(
        "ChaosRun",
        "shop",
        [
            obj("ChaosRun", "kept", rv="5", phase="Completed"),
            obj("ChaosRun", "new", rv="6", phase="Reverting"),
        ],
    )
    assert changed == 3
    assert sorted(events) == [("ADDED", "new"), ("DELETED", "gone"), ("MODIFIED", "kept")]
    assert names(store.list("ChaosRun")) == ["elsewhere", "kept", "new"]
    assert names(store.active_runs()) == ["elsewhere", "new"]
    assert store.controlled_by("ChaosRun", "shop", ["x"]) == []
    assert store.replace("ChaosRun", "shop", list(store.list("ChaosRun", "shop"))) == 0


def test_cluster_wide_relist_drops_what_is_gone_everywhere() -> None:
    store = synced_store(None, "Pod")
    store.apply("Pod", "ADDED", obj("Pod", "a", "shop"))
    store.apply("Pod", "ADDED", obj("Pod", "b", "payments"))
    store.replace("Pod", None, [obj("Pod", "b", "payments")])
    assert names(store.list("Pod")) == ["b"] and store.count("Pod") == 1


# --- change notification ---------------------------------------------------------------------


def test_versions_grow_per_namespace() -> None:
    store = synced_store()
    shop, payments, anywhere = store.version("shop"), store.version("payments"), store.version()
    store.apply("Pod", "ADDED", obj("Pod", "a", "shop"))
    assert store.version("shop") > shop and store.version("payments") == payments
    assert store.version() > anywhere
    shop = store.version("shop")
    store.apply("Pod", "MODIFIED", obj("Pod", "a", "shop"))  # same resourceVersion: no change
    assert store.version("shop") == shop
    store.replace("Pod", "shop", [obj("Pod", "a", "shop")])  # a relist that changes nothing
    assert store.version("shop") == shop
    # a policy change concerns every namespace (the kill switch)
    store.apply("ChaosPolicy", "ADDED", obj("ChaosPolicy", "p", None))
    assert store.version("shop") > shop and store.version("payments") > payments
    assert store.version("never-seen") == store.version("payments")


def test_async_waiter_is_woken_from_another_thread() -> None:
    store = synced_store()

    def change_once_waiting() -> None:
        wait_for(lambda: store._waiters.get("shop"), timeout=10, interval=0.01, message="a waiter")
        store.apply("Pod", "ADDED", obj("Pod", "a", "shop"))

    async def scenario() -> tuple[int, int, float]:
        seen = store.version("shop")
        feeder = asyncio.get_running_loop().run_in_executor(None, change_once_waiting)
        started = time.monotonic()
        version = await store.wait_for_change("shop", seen, timeout=20)
        elapsed = time.monotonic() - started
        await feeder
        return seen, version, elapsed

    seen, version, elapsed = asyncio.run(scenario())
    assert version > seen
    assert elapsed < 10  # woken by the change, not by the timeout
    assert store._waiters == {}


def test_waiters_of_other_namespaces_sleep_on_and_time_out() -> None:
    store = synced_store()

    async def scenario() -> tuple[int, int, int]:
        seen = store.version("payments")
        waiting = asyncio.ensure_future(store.wait_for_change("payments", seen, timeout=0.3))
        await asyncio.sleep(0)  # let it register
        store.apply("Pod", "ADDED", obj("Pod", "a", "shop"))
        return seen, await waiting, await store.wait_for_change("shop", 0, timeout=5)

    seen, after, shop = asyncio.run(scenario())
    assert after == seen  # timed out: nothing changed in payments
    assert shop > 0  # already past `since`: returns at once


def test_sync_waiter_and_global_waiter() -> None:
    store = synced_store()
    results: dict[str, int] = {}
    seen_ns, seen_all = store.version("shop"), store.version()
    threads = [
        threading.Thread(target=lambda: results.update(ns=store.wait_for_change_sync("shop", seen_ns, 20))),
        threading.Thread(target=lambda: results.update(all=store.wait_for_change_sync(None, seen_all, 20))),
    ]
    for t in threads:
        t.start()
    wait_for(lambda: store._waiters.get("shop") and store._waiters.get(None), timeout=10, interval=0.01)
    store.apply("Pod", "ADDED", obj("Pod", "a", "shop"))
    for t in threads:
        t.join(20)
    assert results["ns"] > seen_ns and results["all"] > seen_all


def test_becoming_synced_wakes_waiters() -> None:
    store = CacheStore(plan(["Pod"], ("shop",)))
    seen = store.version("shop")
    store.replace("Pod", "shop", [])
    assert store.version("shop") > seen


def test_subscribers_see_events_and_a_failing_one_stops_nothing() -> None:
    store = synced_store()
    seen: list[tuple[str, str]] = []

    def broken(event_type: str, o: Obj) -> None:
        raise RuntimeError("observer bug")

    store.subscribe("ChaosPolicy", broken)
    unsubscribe = store.subscribe("ChaosPolicy", lambda t, o: seen.append((t, o["metadata"]["name"])))
    store.apply("ChaosPolicy", "ADDED", obj("ChaosPolicy", "p", None, rv="1"))
    store.apply("ChaosPolicy", "MODIFIED", obj("ChaosPolicy", "p", None, rv="2"))
    store.apply("Pod", "ADDED", obj("Pod", "a"))
    unsubscribe()
    store.apply("ChaosPolicy", "DELETED", obj("ChaosPolicy", "p", None, rv="3"))
    assert seen == [("ADDED", "p"), ("MODIFIED", "p")]
    assert store.get("ChaosPolicy", None, "p") is None


# --- the informer's pure parts -----------------------------------------------------------------


def test_backoff_grows_is_jittered_and_capped() -> None:
    assert backoff_delay(0, rand=lambda: 0.0) == 0.25 and backoff_delay(0, rand=lambda: 1.0) == 0.5
    assert backoff_delay(3, rand=lambda: 1.0) == 4.0
    assert backoff_delay(1000, rand=lambda: 1.0) == 30.0
    assert backoff_delay(1000, rand=lambda: 0.0) == 15.0  # never a tight loop
    throttled = ApiException(status=429, reason="Too Many Requests")
    throttled.headers = {"Retry-After": "7"}
    assert backoff_delay(0, throttled, rand=lambda: 0.0) == 7.25  # the server's wish, plus ours
    throttled.headers = {"Retry-After": "3600"}
    assert backoff_delay(0, throttled, rand=lambda: 0.0) == 60.25  # but not an hour


def test_objects_are_cleaned_to_one_shape() -> None:
    raw = {"metadata": {"name": "a", "managedFields": [{"manager": "kubectl"}]}, "spec": {}}
    cleaned = _clean(raw, KINDS["ReplicaSet"])
    assert cleaned == {"metadata": {"name": "a"}, "spec": {}, "apiVersion": "apps/v1", "kind": "ReplicaSet"}


def test_the_cache_keeps_only_what_the_operator_reads() -> None:
    pod = {
        "metadata": {"name": "p", "labels": {"app": "a"}, "ownerReferences": [{"uid": "rs"}]},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "env": [{"name": "X", "value": "y" * 100}]}]},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "podIP": "1.2.3.4",
        },
    }
    slim = _clean(pod, KINDS["Pod"])
    assert slim["spec"] == {"nodeName": "n1"}
    assert slim["status"] == {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    assert slim["metadata"] == {"name": "p", "labels": {"app": "a"}, "ownerReferences": [{"uid": "rs"}]}
    deployment = {
        "metadata": {"name": "d"},
        "spec": {"replicas": 3, "selector": {}, "template": {"spec": {}}},
    }
    assert _clean(deployment, KINDS["Deployment"])["spec"] == {"replicas": 3, "selector": {}}
    run = {
        "metadata": {"name": "r"},
        "spec": {"experiment": "e"},
        "status": {"phase": "Pending", "targets": []},
    }
    assert _clean(run, KINDS["ChaosRun"])["status"] == {"phase": "Pending", "targets": []}  # runs: all of it


class _Chunks:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def stream(self, amt: int | None = None, decode_content: bool = True) -> Iterator[bytes]:
        yield from self.chunks


def test_watch_lines_are_reassembled_across_chunks() -> None:
    chunks = [b'{"type":"ADDED"', b',"object":{}}\n{"type":"BOOK', b'MARK"}\n\n', b'{"tail":1}']
    assert list(_lines(_Chunks(chunks))) == [
        b'{"type":"ADDED","object":{}}',
        b'{"type":"BOOKMARK"}',
        b'{"tail":1}',
    ]


@pytest.fixture
def offline_cache() -> Iterator[ClusterCache]:
    configuration = client.Configuration()
    configuration.host = "https://127.0.0.1:1"
    cache = ClusterCache(client.ApiClient(configuration), ("shop",), kinds=["Pod"])
    yield cache
    cache.stop(timeout=1)


def test_informer_applies_events_and_follows_bookmarks(offline_cache: ClusterCache) -> None:
    informer = offline_cache._informers[0]
    offline_cache.replace("Pod", "shop", [])
    pod = obj("Pod", "a", rv="7")
    pod["metadata"]["managedFields"] = [{}]
    informer.handle({"type": "ADDED", "object": pod})
    stored = offline_cache.get("Pod", "shop", "a")
    assert stored is not None and "managedFields" not in stored["metadata"]
    assert informer.resource_version == "7"
    informer.handle({"type": "BOOKMARK", "object": {"kind": "Pod", "metadata": {"resourceVersion": "12"}}})
    assert informer.resource_version == "12" and offline_cache.count("Pod") == 1
    with pytest.raises(Gone):
        informer.handle({"type": "ERROR", "object": {"kind": "Status", "code": 410}})
    with pytest.raises(WatchFailed):
        informer.handle({"type": "ERROR", "object": {"kind": "Status", "code": 500, "message": "etcd"}})


def test_unreachable_server_backs_off_and_stop_is_prompt(offline_cache: ClusterCache) -> None:
    offline_cache.start()
    informer = offline_cache._informers[0]
    wait_for(lambda: informer.failures >= 1, timeout=30, interval=0.05, message="a failed LIST")
    assert not offline_cache.synced
    started = time.monotonic()
    offline_cache.stop(timeout=10)
    assert not informer.thread.is_alive()
    assert time.monotonic() - started < 10


def test_informer_loop_relists_on_gone_and_backs_off_on_errors(offline_cache: ClusterCache) -> None:
    """The loop's decisions, with LIST and WATCH replaced by a script of outcomes."""
    informer = offline_cache._informers[0]
    calls: list[str] = []
    pauses: list[float] = []
    now = [1000.0]

    def relist() -> None:
        calls.append("list")
        outcome = script.pop(0)
        if outcome is not None:
            raise outcome
        informer.listed_at = now[0]
        informer.resource_version = "10"

    def watch() -> None:
        calls.append("watch")
        now[0] += 60  # every watch lasts a while, unless the script says it fails at once
        outcome = script.pop(0) if script else None
        if not script:
            offline_cache._stop.set()
        if outcome is not None:
            raise outcome

    script: list[BaseException | None] = [
        ConnectionError("refused"),  # list fails: pause
        ConnectionError("refused"),  # again: a longer pause
        None,  # list works
        Gone(),  # watch expired a minute after the list: list again at once
        None,
        WatchFailed("the watch ended at once"),  # pause, then watch again from the same version
        None,
    ]
    informer.relist = relist  # type: ignore[method-assign]
    informer.watch = watch  # type: ignore[method-assign]
    informer.sleep = pauses.append
    informer.clock = lambda: now[0]
    informer.run()
    assert calls == ["list", "list", "list", "watch", "list", "watch", "watch"]
    # jittered, growing, and never an immediate retry
    assert len(pauses) == 3 and 0.25 <= pauses[0] <= 0.5 <= pauses[1] <= 1.0 <= pauses[2] <= 2.0


def test_gone_right_after_a_list_pauses_instead_of_looping(offline_cache: ClusterCache) -> None:
    informer = offline_cache._informers[0]
    pauses: list[float] = []
    lists = [0]

    def relist() -> None:
        lists[0] += 1
        informer.listed_at = time.monotonic()
        informer.resource_version = "10"

    def watch() -> None:
        if lists[0] >= 3:
            offline_cache._stop.set()
        raise Gone()

    informer.relist = relist  # type: ignore[method-assign]
    informer.watch = watch  # type: ignore[method-assign]
    informer.sleep = pauses.append
    informer.run()
    assert lists[0] == 3 and len(pauses) == 2  # every relist that expired at once was paused
