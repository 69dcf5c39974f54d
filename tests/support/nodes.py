"""kwok nodes of a test's own, and a watch on what happens to them."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from kubernetes import client, watch

from tests.support.waiting import wait_for


def create_kwok_node(
    api: client.ApiClient,
    name: str,
    *,
    labels: Mapping[str, str] | None = None,
    taints: Sequence[client.V1Taint] = (),
) -> str:
    """A fake node kwok keeps Ready; returns once it is Ready."""
    core = client.CoreV1Api(api)
    core.create_node(
        client.V1Node(
            metadata=client.V1ObjectMeta(
                name=name,
                annotations={"kwok.x-k8s.io/node": "fake"},
                labels={"type": "kwok", "kubernetes.io/hostname": name, **(labels or {})},
            ),
            spec=client.V1NodeSpec(taints=list(taints) or None),
        )
    )

    def ready() -> bool:
        node = core.read_node(name)
        up = any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
        # the node lifecycle controller's not-ready taint goes a moment after Ready: until then a
        # scheduler honouring taints in topology spread would not count the node
        settling = any(t.key.startswith("node.kubernetes.io/") for t in node.spec.taints or [])
        return up and not settling

    wait_for(ready, timeout=30, message=f"node {name} Ready and untainted by the lifecycle controller")
    return name


@contextlib.contextmanager
def kwok_nodes(
    api: client.ApiClient,
    names: Sequence[str],
    *,
    labels: Mapping[str, str] | None = None,
    taints: Sequence[client.V1Taint] = (),
) -> Iterator[list[str]]:
    """Nodes that exist for the block only."""
    made: list[str] = []
    try:
        for name in names:
            made.append(create_kwok_node(api, name, labels=labels, taints=taints))
        yield made
    finally:
        for name in made:
            with contextlib.suppress(client.ApiException):
                client.CoreV1Api(api).delete_node(name)


class CordonWatch:
    """Every change of `spec.unschedulable` on the watched nodes, in order: (node, unschedulable) —
    evidence of which nodes were cordoned and uncordoned, however briefly."""

    def __init__(self, api: client.ApiClient, names: Sequence[str] | None = None) -> None:
        self.core = client.CoreV1Api(api)
        self.names = set(names) if names is not None else None  # None: every node
        self.changes: list[tuple[str, bool]] = []
        self._last: dict[str, bool] = {}
        self._watch = watch.Watch()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with contextlib.suppress(Exception):  # stop() closes the stream mid-read
            listed = self.core.list_node()
            for node in listed.items:
                if self.names is None or node.metadata.name in self.names:
                    self._last[node.metadata.name] = bool(node.spec.unschedulable)
            self._ready.set()
            for event in self._watch.stream(
                self.core.list_node, resource_version=listed.metadata.resource_version, timeout_seconds=600
            ):
                node = event["object"]
                name = node.metadata.name
                if self.names is not None and name not in self.names:
                    continue
                now = bool(node.spec.unschedulable)
                if self._last.get(name) != now:
                    self._last[name] = now
                    self.changes.append((name, now))
        self._ready.set()

    def __enter__(self) -> CordonWatch:
        self._thread.start()
        self._ready.wait(timeout=30)
        return self

    def __exit__(self, *exc: object) -> None:
        self._watch.stop()

    def cordoned(self) -> set[str]:
        """The nodes that were cordoned at some point."""
        return {name for name, unschedulable in self.changes if unschedulable}


POOL_KEY = "aftershock.test/pool"


class Pool:
    """kwok nodes only the workloads placed on them may use (a taint they tolerate, a label they
    select): a node fault on them can touch nothing of any other test."""

    def __init__(self, api: client.ApiClient, name: str) -> None:
        self.api = api
        self.name = name
        self.nodes: list[str] = []

    def add(self) -> str:
        node = create_kwok_node(
            self.api,
            f"{self.name}-{len(self.nodes)}",
            labels={POOL_KEY: self.name},
            taints=[client.V1Taint(key=POOL_KEY, value=self.name, effect="NoSchedule")],
        )
        self.nodes.append(node)
        return node

    def place(self, body: dict[str, Any], *, spread: bool = True) -> dict[str, Any]:
        """A workload manifest placed on the pool; `spread`: at most one replica more on any node than
        on another, counting only nodes that take pods (a cordoned node does not)."""
        pod = body["spec"]["template"]["spec"]
        pod["nodeSelector"] = {POOL_KEY: self.name}
        pod["tolerations"] = [
            {"key": POOL_KEY, "operator": "Equal", "value": self.name, "effect": "NoSchedule"}
        ]
        if spread:
            pod["topologySpreadConstraints"] = [
                {
                    "maxSkew": 1,
                    "topologyKey": "kubernetes.io/hostname",
                    "whenUnsatisfiable": "DoNotSchedule",
                    "nodeTaintsPolicy": "Honor",
                    "labelSelector": {"matchLabels": body["spec"]["selector"]["matchLabels"]},
                }
            ]
        return body

    def node(self, name: str) -> client.V1Node:
        return client.CoreV1Api(self.api).read_node(name)


@contextlib.contextmanager
def node_pool(api: client.ApiClient, size: int) -> Iterator[Pool]:
    """A pool of `size` nodes (more may be added), deleted after the block."""
    pool = Pool(api, f"np-{uuid.uuid4().hex[:6]}")
    try:
        for _ in range(size):
            pool.add()
        yield pool
    finally:
        for name in pool.nodes:
            with contextlib.suppress(client.ApiException):
                client.CoreV1Api(api).delete_node(name)
