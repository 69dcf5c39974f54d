"""The watch-fed cache as the ClusterView a run reads (runs/base.py)."""

from __future__ import annotations

from aftershock.cluster.store import CacheStore
from aftershock.kube import Obj


class CachedView:
    def __init__(self, cache: CacheStore) -> None:
        self.cache = cache

    def list_workloads(self, kind: str, namespace: str, label_selector: str) -> list[Obj]:
        return self.cache.list_workloads(kind, namespace, label_selector)

    def list_replicasets(self, namespace: str, label_selector: str) -> list[Obj]:
        return self.cache.list_replicasets(namespace, label_selector)

    def list_pods(self, namespace: str, label_selector: str) -> list[Obj]:
        return self.cache.list_pods(namespace, label_selector)

    def list_pdbs(self, namespace: str) -> list[Obj]:
        return self.cache.list("PodDisruptionBudget", namespace)

    def active_runs(self) -> list[Obj]:
        return self.cache.active_runs()

    def policies(self) -> list[Obj]:
        return self.cache.list("ChaosPolicy")

    def get_run(self, namespace: str, name: str) -> Obj | None:
        return self.cache.get("ChaosRun", namespace, name)

    def version(self, namespace: str) -> int:
        return self.cache.version(namespace)

    async def wait_for_change(self, namespace: str, since: int, timeout: float) -> None:
        await self.cache.wait_for_change(namespace, since, timeout)
