"""Ground truth for recovery measurements: a pod watch that notes when each pod disappeared."""

from __future__ import annotations

import datetime as dt
import threading
from types import TracebackType

from kubernetes import client, watch


class PodDeletions:
    """Watches a namespace's pods in a thread; `deleted[uid]` is when the DELETED event arrived."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.deleted: dict[str, dt.datetime] = {}
        self._watch = watch.Watch()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        version = self.core.list_namespaced_pod(self.namespace).metadata.resource_version
        self._ready.set()
        for event in self._watch.stream(
            self.core.list_namespaced_pod, self.namespace, resource_version=version, timeout_seconds=600
        ):
            if event["type"] == "DELETED":
                self.deleted.setdefault(event["object"].metadata.uid, dt.datetime.now(dt.UTC))

    def __enter__(self) -> PodDeletions:
        self._thread.start()
        self._ready.wait(timeout=30)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._watch.stop()
