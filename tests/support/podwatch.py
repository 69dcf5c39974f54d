"""Ground truth for recovery measurements: a pod watch that notes when each pod disappeared."""

from __future__ import annotations

import datetime as dt
import threading
from types import TracebackType

from kubernetes import client, watch


class PodDeletions:
    """Watches a namespace's pods in a thread.

    `deleted[uid]`: when the DELETED event arrived; `ready[uid]`: when a Ready=True state was
    first seen. Both have millisecond precision, unlike the whole seconds of lastTransitionTime.
    """

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.deleted: dict[str, dt.datetime] = {}
        self.ready: dict[str, dt.datetime] = {}
        self._watch = watch.Watch()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self._follow()
        except Exception:  # stop() closes the stream mid-read; the records taken so far stand
            self._ready.set()

    def _follow(self) -> None:
        version = self.core.list_namespaced_pod(self.namespace).metadata.resource_version
        self._ready.set()
        for event in self._watch.stream(
            self.core.list_namespaced_pod, self.namespace, resource_version=version, timeout_seconds=600
        ):
            pod, seen = event["object"], dt.datetime.now(dt.UTC)
            if event["type"] == "DELETED":
                self.deleted.setdefault(pod.metadata.uid, seen)
            elif any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or [])):
                self.ready.setdefault(pod.metadata.uid, seen)

    def __enter__(self) -> PodDeletions:
        self._thread.start()
        self._ready.wait(timeout=30)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._watch.stop()
