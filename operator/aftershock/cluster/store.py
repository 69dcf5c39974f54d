"""The in-memory side of the shared cache: objects, indexes, versions and waiters, fed events.

No I/O here: informers (cache.py) feed it LIST results (`replace`) and watch events (`apply`),
and tests feed it directly. Everything is guarded by one lock; reads are dictionary lookups.

Objects are stored as the API server sent them (camelCase JSON, `metadata.managedFields`
dropped) and are **shared, read-only**: the store never changes an object once stored (an
update replaces it), and readers must not mutate what they get. The lists returned are new.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import functools
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aftershock.api.common import RunPhase
from aftershock.cluster.kinds import KINDS, Partition
from aftershock.core.selectors import matches, parse_label_selector

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Objs = list[Obj]  # an alias: inside CacheStore, `list` is the method
Selector = Mapping[str, Any] | str | None
"""A metav1.LabelSelector mapping, its string form, or None (everything)."""
Callback = Callable[[str, Obj], None]
"""An observer: called with ("ADDED" | "MODIFIED" | "DELETED", object) on the feeding thread."""

ACTIVE_RUN_PHASES = frozenset({RunPhase.INJECTING, RunPhase.OBSERVING, RunPhase.REVERTING})
CLUSTER = ""
"""The namespace key of cluster-scoped objects."""


class CacheUnavailable(LookupError):
    """The cache cannot answer this read; the caller must not take it for "no such objects"."""


class NotSynced(CacheUnavailable):
    """The informers for this kind (and namespace) have not completed their first LIST yet."""


class NotWatched(CacheUnavailable):
    """The cache does not hold this kind, or not in this namespace (outside the watched scope)."""


def controller_uid(obj: Mapping[str, Any]) -> str | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref["uid"])
    return None


def _is_active_run(obj: Mapping[str, Any]) -> bool:
    return (obj.get("status") or {}).get("phase") in ACTIVE_RUN_PHASES


@functools.lru_cache(maxsize=256)
def _parsed(text: str) -> dict[str, Any]:
    return parse_label_selector(text)


def _selector(selector: Selector) -> Mapping[str, Any] | None:
    return _parsed(selector) if isinstance(selector, str) else selector


def _by_name(objs: Iterable[Obj]) -> list[Obj]:
    return sorted(objs, key=lambda o: (o["metadata"].get("namespace") or "", o["metadata"]["name"]))


class _Waiter:
    """One pending wait_for_change, woken from whichever thread applied the change."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop = loop
        self.future: asyncio.Future[None] | None = loop.create_future() if loop else None
        self.event = threading.Event()

    def wake(self) -> None:
        self.event.set()
        if self.loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
                self.loop.call_soon_threadsafe(self._resolve)

    def _resolve(self) -> None:
        if self.future is not None and not self.future.done():
            self.future.set_result(None)


class CacheStore:
    """Objects of the configured partitions (kind and namespace), with the indexes runs read."""

    def __init__(self, partitions: Iterable[Partition]) -> None:
        self.partitions = tuple(partitions)
        self._lock = threading.Lock()
        self._synced_cond = threading.Condition(self._lock)
        self._synced: set[Partition] = set()
        # kind -> namespace -> name -> object
        self._objects: dict[str, dict[str, dict[str, Obj]]] = {p.kind: {} for p in self.partitions}
        self._counts: dict[str, int] = dict.fromkeys(self._objects, 0)
        # kind -> controller uid -> {(namespace, name)}
        self._owned: dict[str, dict[str, set[tuple[str, str]]]] = {k: {} for k in self._objects}
        self._active: dict[tuple[str, str], Obj] = {}
        self._clock = 0
        self._cluster_version = 0
        self._ns_version: dict[str, int] = {}
        self._waiters: dict[str | None, set[_Waiter]] = {}
        self._subscribers: dict[str, list[Callback]] = {}

    # --- reads -----------------------------------------------------------------------------

    @property
    def synced(self) -> bool:
        """True once every partition has completed its first LIST."""
        with self._lock:
            return len(self._synced) == len(self.partitions)

    def wait_synced(self, timeout: float | None = None) -> bool:
        with self._synced_cond:
            return self._synced_cond.wait_for(lambda: len(self._synced) == len(self.partitions), timeout)

    def is_synced(self, kind: str, namespace: str | None = None) -> bool:
        """Whether reads of `kind` in `namespace` (None: everywhere) would be answered."""
        with self._lock:
            try:
                self._check(kind, namespace)
            except CacheUnavailable:
                return False
            return True

    def get(self, kind: str, namespace: str | None, name: str) -> Obj | None:
        """The object, or None when it does not exist. `namespace` is ignored for cluster-scoped
        kinds and required for the others."""
        spec = KINDS.get(kind)
        if spec is not None and not spec.namespaced:
            namespace = None
        elif not namespace:
            raise ValueError(f"{kind} is namespaced: get it with its namespace")
        with self._lock:
            self._check(kind, namespace)
            return self._objects[kind].get(namespace or CLUSTER, {}).get(name)

    def list(self, kind: str, namespace: str | None = None, selector: Selector = None) -> Objs:
        """Objects of `kind` in `namespace` (None: all the cache holds) whose labels match
        `selector`, sorted by namespace and name."""
        wanted = _selector(selector)
        with self._lock:
            self._check(kind, namespace)
            by_ns = self._objects[kind]
            spaces = by_ns.values() if namespace is None else [by_ns.get(namespace, {})]
            found = [
                obj
                for objs in spaces
                for obj in objs.values()
                if not wanted or matches(wanted, obj["metadata"].get("labels") or {})
            ]
        return _by_name(found)

    def controlled_by(self, kind: str, namespace: str, owner_uids: Iterable[str]) -> Objs:
        """Objects of `kind` in `namespace` whose controller ownerReference is one of `owner_uids`
        (index lookup, sorted by name)."""
        with self._lock:
            self._check(kind, namespace)
            index, objs = self._owned[kind], self._objects[kind]
            found = [
                objs[ns][name]
                for uid in set(owner_uids)
                for ns, name in index.get(uid, ())
                if ns == namespace
            ]
        return _by_name(found)

    def pods_controlled_by(self, namespace: str, owner_uids: Iterable[str]) -> Objs:
        return self.controlled_by("Pod", namespace, owner_uids)

    def replicasets_controlled_by(self, namespace: str, owner_uids: Iterable[str]) -> Objs:
        return self.controlled_by("ReplicaSet", namespace, owner_uids)

    def active_runs(self, namespace: str | None = None) -> Objs:
        """ChaosRuns in phase Injecting, Observing or Reverting (in `namespace`, None: all), from an
        index: O(active runs). Deadlines are the caller's to judge."""
        with self._lock:
            self._check("ChaosRun", namespace)
            found = [r for (ns, _), r in self._active.items() if namespace is None or ns == namespace]
        return _by_name(found)

    # the read methods of `Kube` that engines/workloads.py uses, answered from memory
    def list_workloads(self, kind: str, namespace: str, label_selector: str) -> Objs:
        return self.list(kind, namespace, label_selector)

    def list_replicasets(self, namespace: str, label_selector: str) -> Objs:
        return self.list("ReplicaSet", namespace, label_selector)

    def list_pods(self, namespace: str, label_selector: str) -> Objs:
        return self.list("Pod", namespace, label_selector)

    def count(self, kind: str) -> int:
        with self._lock:
            return self._counts.get(kind, 0)

    def _check(self, kind: str, namespace: str | None) -> None:
        spec = KINDS.get(kind)
        namespace = None if spec is not None and not spec.namespaced else namespace
        # namespace None: every partition of the kind must be listed
        covering = [
            p for p in self.partitions if p.kind == kind and (namespace is None or p.covers(namespace))
        ]
        if not covering:
            where = f" in namespace {namespace}" if namespace else ""
            raise NotWatched(f"the cache does not watch {kind}{where}")
        pending = [p for p in covering if p not in self._synced]
        if pending:
            raise NotSynced(f"the cache has not listed {kind} yet ({len(pending)} informer(s) pending)")

    # --- change notification ---------------------------------------------------------------

    def version(self, namespace: str | None = None) -> int:
        """A number that grows whenever something the cache holds in `namespace` changes
        (None: anywhere). Cluster-scoped changes (policies) count for every namespace."""
        with self._lock:
            return self._version(namespace)

    def _version(self, namespace: str | None) -> int:
        if namespace is None:
            return self._clock
        return max(self._ns_version.get(namespace, 0), self._cluster_version)

    async def wait_for_change(self, namespace: str | None, since: int, timeout: float | None) -> int:
        """Return once `version(namespace)` exceeds `since`, or after `timeout` seconds; returns
        the version then. Safe from any event loop: the feeding thread wakes it thread-safely."""
        waiter = self._register(namespace, since, asyncio.get_running_loop())
        if waiter is not None:
            assert waiter.future is not None
            try:
                await asyncio.wait_for(waiter.future, timeout)
            except TimeoutError:
                pass
            finally:
                self._unregister(namespace, waiter)
        return self.version(namespace)

    def wait_for_change_sync(self, namespace: str | None, since: int, timeout: float | None) -> int:
        """The blocking form of `wait_for_change`, for threads."""
        waiter = self._register(namespace, since, None)
        if waiter is not None:
            try:
                waiter.event.wait(timeout)
            finally:
                self._unregister(namespace, waiter)
        return self.version(namespace)

    def _register(
        self, namespace: str | None, since: int, loop: asyncio.AbstractEventLoop | None
    ) -> _Waiter | None:
        with self._lock:
            if self._version(namespace) > since:
                return None
            waiter = _Waiter(loop)
            self._waiters.setdefault(namespace, set()).add(waiter)
            return waiter

    def _unregister(self, namespace: str | None, waiter: _Waiter) -> None:
        with self._lock:
            waiters = self._waiters.get(namespace)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[namespace]

    def _bump(self, namespaces: Iterable[str], everywhere: bool) -> builtins.list[_Waiter]:
        """Advance the versions (under the lock); returns the waiters to wake once it is released."""
        self._clock += 1
        if everywhere:
            self._cluster_version = self._clock
            return [w for waiters in self._waiters.values() for w in waiters]
        woken: builtins.list[_Waiter] = list(self._waiters.get(None, ()))
        for ns in set(namespaces):
            self._ns_version[ns] = self._clock
            woken.extend(self._waiters.get(ns, ()))
        return woken

    def subscribe(self, kind: str, callback: Callback) -> Callable[[], None]:
        """Call `callback(event_type, obj)` after each change of `kind` (on the feeding thread: keep
        it short and never block). Returns the function that unsubscribes."""
        with self._lock:
            self._subscribers.setdefault(kind, []).append(callback)

        def unsubscribe() -> None:
            with self._lock:
                callbacks = self._subscribers.get(kind, [])
                if callback in callbacks:
                    callbacks.remove(callback)

        return unsubscribe

    def _notify(
        self, kind: str, events: builtins.list[tuple[str, Obj]], woken: builtins.list[_Waiter]
    ) -> None:
        for waiter in woken:
            waiter.wake()
        if not events:
            return
        with self._lock:
            callbacks = list(self._subscribers.get(kind, ()))
        for callback in callbacks:
            for event_type, obj in events:
                try:
                    callback(event_type, obj)
                except Exception:  # an observer's bug must not stop the informer
                    log.exception("cache subscriber for %s failed on %s", kind, event_type)

    # --- feeding -----------------------------------------------------------------------------

    def apply(self, kind: str, event_type: str, obj: Obj) -> bool:
        """Apply one watch event (ADDED, MODIFIED, DELETED); False when it changed nothing."""
        meta = obj["metadata"]
        key = (meta.get("namespace") or CLUSTER, meta["name"])
        with self._lock:
            old = self._objects[kind].get(key[0], {}).get(key[1])
            if event_type == "DELETED":
                if old is None:
                    return False
                self._remove(kind, key, old)
            else:
                if old is not None and old["metadata"].get("resourceVersion") == meta.get("resourceVersion"):
                    return False
                if old is not None:
                    self._remove(kind, key, old)
                self._insert(kind, key, obj)
                event_type = "MODIFIED" if old is not None else "ADDED"
            woken = self._bump([key[0]], everywhere=key[0] == CLUSTER)
        self._notify(kind, [(event_type, obj)], woken)
        return True

    def replace(self, kind: str, namespace: str | None, items: Iterable[Obj]) -> int:
        """Replace what the partition (kind, namespace) holds by a fresh LIST's `items` and mark it
        synced; returns how many objects were added, changed or removed."""
        fresh = {(o["metadata"].get("namespace") or CLUSTER, o["metadata"]["name"]): o for o in items}
        partition = Partition(kind, namespace)
        events: builtins.list[tuple[str, Obj]] = []
        with self._lock:
            by_ns = self._objects[kind]
            spaces = list(by_ns) if namespace is None else [namespace]
            held = {(ns, name): obj for ns in spaces for name, obj in by_ns.get(ns, {}).items()}
            for key, old in held.items():
                if key not in fresh:
                    self._remove(kind, key, old)
                    events.append(("DELETED", old))
            for key, obj in fresh.items():
                prior = held.get(key)
                if prior is not None:
                    if prior["metadata"].get("resourceVersion") == obj["metadata"].get("resourceVersion"):
                        continue
                    self._remove(kind, key, prior)
                self._insert(kind, key, obj)
                events.append(("MODIFIED" if prior is not None else "ADDED", obj))
            first = partition not in self._synced
            self._synced.add(partition)
            if first:
                self._synced_cond.notify_all()
            woken: builtins.list[_Waiter] = []
            if events or first:  # becoming synced is a change too: readers may now be answered
                touched = {o["metadata"].get("namespace") or CLUSTER for _, o in events} | (
                    {namespace} if namespace else set()
                )
                woken = self._bump(touched, everywhere=namespace is None and (first or CLUSTER in touched))
        self._notify(kind, events, woken)
        return len(events)

    def _insert(self, kind: str, key: tuple[str, str], obj: Obj) -> None:
        self._objects[kind].setdefault(key[0], {})[key[1]] = obj
        self._counts[kind] += 1
        uid = controller_uid(obj)
        if uid is not None:
            self._owned[kind].setdefault(uid, set()).add(key)
        if kind == "ChaosRun" and _is_active_run(obj):
            self._active[key] = obj

    def _remove(self, kind: str, key: tuple[str, str], old: Obj) -> None:
        names = self._objects[kind][key[0]]
        del names[key[1]]
        if not names:
            del self._objects[kind][key[0]]
        self._counts[kind] -= 1
        uid = controller_uid(old)
        if uid is not None:
            owned = self._owned[kind].get(uid)
            if owned is not None:
                owned.discard(key)
                if not owned:
                    del self._owned[kind][uid]
        if kind == "ChaosRun":
            self._active.pop(key, None)
