"""NetworkPolicy creations in a namespace, from a watch: every ADDED event is one creation. For
each, the pods its selector matched when it appeared (a tool may delete its policy soon after)."""

from __future__ import annotations

import contextlib
import threading
from collections import defaultdict
from types import TracebackType

from kubernetes import client, watch


class PolicyCreations:
    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.net = client.NetworkingV1Api(api)
        self.namespace = namespace
        self.uids_by_run: dict[str, set[str]] = defaultdict(set)
        self.core = client.CoreV1Api(api)
        self.selected: list[tuple[dict[str, str], set[str]]] = []  # (matchLabels, pods) per creation
        self._watch = watch.Watch()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with contextlib.suppress(Exception):  # stop() closes the stream mid-read
            version = self.net.list_namespaced_network_policy(self.namespace).metadata.resource_version
            self._ready.set()
            for event in self._watch.stream(
                self.net.list_namespaced_network_policy,
                self.namespace,
                resource_version=version,
                timeout_seconds=900,
            ):
                policy = event["object"]
                if event["type"] != "ADDED":
                    continue
                run = (policy.metadata.labels or {}).get("aftershock.dev/run")
                if run:
                    self.uids_by_run[run].add(policy.metadata.uid)
                labels = dict(policy.spec.pod_selector.match_labels or {})
                self.selected.append((labels, self._pods(labels)))
        self._ready.set()

    def _pods(self, labels: dict[str, str]) -> set[str]:
        """The pods the selector matches now (never ends the watch: counting comes first)."""
        selector = ",".join(f"{k}={v}" for k, v in labels.items())
        try:
            pods = self.core.list_namespaced_pod(self.namespace, label_selector=selector).items
        except Exception:
            return set()
        return {p.metadata.name for p in pods}

    def __enter__(self) -> PolicyCreations:
        self._thread.start()
        self._ready.wait(timeout=30)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._watch.stop()
