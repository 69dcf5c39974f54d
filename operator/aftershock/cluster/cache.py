"""The shared, watch-fed cluster cache: every run reads it instead of issuing LIST calls.

The informer pattern, one daemon thread per kind and watched namespace (never per object): LIST
(paged, remembering the resourceVersion), then WATCH from it with bookmarks; re-LIST only on
410 Gone. Errors (429, 5xx, refused connections, RBAC denials, a CRD not yet installed) back off
exponentially with jitter, and a watch that ends at once without an event counts as an error,
so no failure mode turns into a tight loop. The client's raw JSON is parsed directly: its model
deserialisation is far too slow for thousands of pods.

Reads, versions and waiting are `CacheStore`'s (store.py); objects are shared and read-only.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import json
import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.rest import ApiException

from aftershock.cluster.kinds import DEFAULT_KINDS, KINDS, KindSpec, Partition, plan
from aftershock.cluster.store import CacheStore, Obj
from aftershock.core.backoff import Backoff, parse_retry_after
from aftershock.core.watch_scope import Scope
from aftershock.metrics import CACHE_LISTS, CACHE_OBJECTS, CACHE_WATCHES

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
LIST_READ_TIMEOUT = 60.0
QUICK_END = 1.0  # a watch that ends sooner than this without an event is treated as a failure
HEALTHY_WATCH = 30.0  # a watch that ran this long resets the backoff


class Gone(Exception):
    """410: the resourceVersion is too old to watch from; only a fresh LIST helps."""

    def __str__(self) -> str:
        return "410 Gone"


class WatchFailed(Exception):
    """The watch ended in a way that needs a pause before the next attempt."""


BACKOFF = Backoff(base=0.5, factor=2.0, cap=30.0, jitter=0.5)
MAX_RETRY_AFTER = 60.0


def backoff_delay(
    failures: int, exc: BaseException | None = None, *, rand: Callable[[], float] = random.random
) -> float:
    """How long an informer pauses after `failures` failures in a row (core/backoff.py's jittered
    exponential backoff, so a fleet of informers failing together does not retry in lockstep); a
    429's Retry-After is honoured, up to a minute."""
    retry_after = None
    if isinstance(exc, ApiException) and exc.status == 429:
        headers = exc.headers or {}
        retry_after = parse_retry_after(headers.get("Retry-After"), dt.datetime.now(dt.UTC))
    if retry_after is not None:
        retry_after = min(retry_after, MAX_RETRY_AFTER)
    return BACKOFF.delay(failures, rand(), retry_after)


def _clean(obj: Obj, spec: KindSpec) -> Obj:
    """Drop managedFields (often half of an object's size) and what the operator never reads of
    the kind (see KindSpec); give list items the kind and apiVersion watch events carry, so every
    stored object has the same shape."""
    obj.get("metadata", {}).pop("managedFields", None)
    if isinstance(obj.get("spec"), dict):
        if spec.spec_fields is not None:
            obj["spec"] = {k: v for k, v in obj["spec"].items() if k in spec.spec_fields}
        for key in spec.spec_drop:
            obj["spec"].pop(key, None)
    if spec.status_fields is not None and isinstance(obj.get("status"), dict):
        obj["status"] = {k: v for k, v in obj["status"].items() if k in spec.status_fields}
    obj.setdefault("apiVersion", spec.api_version)
    obj.setdefault("kind", spec.kind)
    return obj


def _lines(response: Any) -> Iterator[bytes]:
    """The newline-delimited JSON of a watch response, as the bytes arrive."""
    buffer = b""
    for chunk in response.stream(amt=None, decode_content=True):
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        yield from (line for line in complete if line.strip())
    if buffer.strip():
        yield buffer


def _dedicated_client(api: client.ApiClient, connections: int) -> client.ApiClient:
    """A client of its own with a pool large enough for every watch plus a LIST, so long-lived
    watches never take connections from (or get discarded by) the operator's other requests."""
    configuration = copy.deepcopy(api.configuration)
    configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize or 0, connections + 2)
    dedicated = client.ApiClient(configuration)
    dedicated.default_headers.update(api.default_headers)  # e.g. impersonation
    dedicated.cookie = api.cookie
    return dedicated


class ClusterCache(CacheStore):
    """The store, kept current by one informer per (kind, watched namespace).

    `scope` is the operator's watched namespaces (None: the whole cluster, one cluster-wide watch
    per kind). ChaosPolicy is cluster-scoped and always watched cluster-wide; Lease only in
    `lease_namespace`, and only when that is given. Threads start with `start()`.
    """

    def __init__(
        self,
        api: client.ApiClient,
        scope: Scope = None,
        *,
        kinds: Iterable[str] = DEFAULT_KINDS,
        lease_namespace: str | None = None,
        watch_timeout: int = 240,
        idle_timeout: float = 90.0,
        page_size: int = 500,
    ) -> None:
        super().__init__(plan(kinds, scope, lease_namespace))
        self.scope = scope
        self._api = _dedicated_client(api, len(self.partitions))
        self._stop = threading.Event()
        self._started = False
        self._informers = [
            _Informer(self, p, watch_timeout=watch_timeout, idle_timeout=idle_timeout, page_size=page_size)
            for p in self.partitions
        ]

    def start(self) -> None:
        """Start the informer threads (once); `wait_synced` tells when the first LISTs are in."""
        if self._started:
            return
        self._started = True
        for informer in self._informers:
            informer.thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every informer: in-flight watches are cut off, threads exit within `timeout`."""
        self._stop.set()
        for informer in self._informers:
            informer.interrupt()
        deadline = time.monotonic() + timeout
        for informer in self._informers:
            if informer.thread.is_alive():
                informer.thread.join(max(0.0, deadline - time.monotonic()))
        alive = [i.thread.name for i in self._informers if i.thread.is_alive()]
        if alive:
            log.warning("cache informers still stopping: %s", ", ".join(alive))
        else:
            self._api.close()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()


class _Informer:
    """LIST then WATCH one partition, forever, until the cache stops."""

    def __init__(
        self,
        cache: ClusterCache,
        partition: Partition,
        *,
        watch_timeout: int,
        idle_timeout: float,
        page_size: int,
    ) -> None:
        self.cache = cache
        self.partition = partition
        self.spec = KINDS[partition.kind]
        self.watch_timeout = watch_timeout
        self.idle_timeout = idle_timeout
        self.page_size = page_size
        self.resource_version: str | None = None
        self.listed_at = float("-inf")
        self.failures = 0
        self._response: Any = None
        self.sleep: Callable[[float], object] = cache._stop.wait  # interrupted by stop()
        self.clock: Callable[[], float] = time.monotonic
        where = partition.namespace or "all"
        self.thread = threading.Thread(target=self.run, name=f"cache-{partition.kind}-{where}", daemon=True)
        self._custom = client.CustomObjectsApi(cache._api)
        self._core = client.CoreV1Api(cache._api)

    @property
    def stopping(self) -> bool:
        return self.cache.stopped

    def run(self) -> None:
        while not self.stopping:
            try:
                if self.resource_version is None:
                    self.relist()
                self.watch()
            except Exception as exc:
                if self.stopping:
                    break
                if not isinstance(exc, Gone):
                    self.pause(exc)
                    continue
                self.resource_version = None
                if self.clock() - self.listed_at < QUICK_END:  # even a fresh LIST is too old
                    self.pause(exc)
                else:
                    log.info("cache: %s watch expired (410), listing again", self.partition.kind)
        log.debug("cache informer %s stopped", self.thread.name)

    def pause(self, exc: BaseException) -> None:
        delay = backoff_delay(self.failures, exc)
        self.failures += 1
        reason = (
            f"{exc.status} {exc.reason}" if isinstance(exc, ApiException) else f"{type(exc).__name__}: {exc}"
        )
        log.warning(
            "cache: %s in %s failed (%s); retrying in %.1fs",
            self.partition.kind,
            self.partition.namespace or "all namespaces",
            reason,
            delay,
        )
        self.sleep(delay)

    def interrupt(self) -> None:
        """Cut off the watch in flight (from another thread): shutting the socket down wakes a read
        blocked in it, which closing alone may not."""
        response = self._response
        conn = getattr(response, "connection", None)
        sock = getattr(conn, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _call(self, **params: Any) -> Any:
        """The raw (unparsed) response of a list or watch call for this partition."""
        ns, spec = self.partition.namespace, self.spec
        if not spec.group:
            if ns is None:
                return self._core.list_pod_for_all_namespaces(_preload_content=False, **params)
            return self._core.list_namespaced_pod(ns, _preload_content=False, **params)
        if ns is None:
            return self._custom.list_cluster_custom_object(
                spec.group, spec.version, spec.plural, _preload_content=False, **params
            )
        return self._custom.list_namespaced_custom_object(
            spec.group, spec.version, ns, spec.plural, _preload_content=False, **params
        )

    def relist(self) -> None:
        """A consistent, paged LIST; replaces what the partition holds."""
        CACHE_LISTS.labels(self.partition.kind).inc()
        items: list[Obj] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {
                "limit": self.page_size,
                "_request_timeout": (CONNECT_TIMEOUT, LIST_READ_TIMEOUT),
            }
            if token:
                params["_continue"] = token
            try:
                response = self._call(**params)
            except ApiException as exc:
                if exc.status == 410:  # the continue token expired: start over
                    raise Gone() from exc
                raise
            try:
                page = json.loads(response.data)
            finally:
                response.release_conn()
            items.extend(_clean(item, self.spec) for item in page.get("items") or [])
            meta = page.get("metadata") or {}
            token = meta.get("continue")
            if not token:
                break
        self.cache.replace(self.partition.kind, self.partition.namespace, items)
        self.listed_at = self.clock()
        self.resource_version = str(meta["resourceVersion"])
        CACHE_OBJECTS.labels(self.partition.kind).set(self.cache.count(self.partition.kind))

    def watch(self) -> None:
        """One WATCH from the remembered resourceVersion, until the server ends it, it is idle for
        `idle_timeout` (no event, no bookmark: reconnect from the same version) or the cache stops."""
        CACHE_WATCHES.labels(self.partition.kind).inc()
        started = self.clock()
        events = 0
        try:
            response = self._call(
                watch=True,
                allow_watch_bookmarks=True,
                resource_version=self.resource_version,
                timeout_seconds=self.watch_timeout + random.randint(0, self.watch_timeout // 4),
                _request_timeout=(CONNECT_TIMEOUT, self.idle_timeout),
            )
        except ApiException as exc:
            if exc.status == 410:
                raise Gone() from exc
            raise
        self._response = response
        try:
            if self.stopping:
                return
            for line in _lines(response):
                if self.stopping:
                    return
                self.handle(json.loads(line))
                events += 1
                self.failures = 0
        except urllib3.exceptions.ReadTimeoutError:
            pass  # idle: reconnect from the same resourceVersion
        except urllib3.exceptions.ProtocolError:
            if self.stopping:
                return
            raise
        finally:
            self._response = None
            response.release_conn()
        lasted = self.clock() - started
        if lasted >= HEALTHY_WATCH:
            self.failures = 0
        elif events == 0 and lasted < QUICK_END and not self.stopping:
            raise WatchFailed("the watch ended at once without an event")

    def handle(self, event: dict[str, Any]) -> None:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            code = obj.get("code")
            if code == 410:
                raise Gone()
            raise WatchFailed(f"watch error {code}: {obj.get('message')}")
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            self.cache.apply(self.partition.kind, kind, _clean(obj, self.spec))
            CACHE_OBJECTS.labels(self.partition.kind).set(self.cache.count(self.partition.kind))
        if version:  # also for BOOKMARK: resume from here, not from an old version
            self.resource_version = str(version)
