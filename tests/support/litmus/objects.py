"""Reading and writing Litmus objects in one namespace, for tests."""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.support.litmus.crds import ENGINES, GROUP, VERSION
from tests.support.waiting import wait_for

Body = dict[str, Any]


class Litmus:
    """Reading and writing Litmus objects in one namespace."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.objects = client.CustomObjectsApi(api)
        self.namespace = namespace

    def create(self, plural: str, body: Body) -> Body:
        created: Body = self.objects.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, body
        )
        return created

    def get(self, plural: str, name: str) -> Body | None:
        try:
            found: Body = self.objects.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, name
            )
            return found
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def patch(self, plural: str, name: str, body: Body) -> None:
        self.objects.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, name, body)

    def delete(self, plural: str, name: str) -> None:
        self.objects.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, name)

    def engine_when(self, name: str, engine_status: str, timeout: float = 30) -> Body:
        """The engine once its status.engineStatus is `engine_status`."""

        def probe() -> Body | None:
            engine = self.get(ENGINES, name)
            status = (engine or {}).get("status") or {}
            return engine if status.get("engineStatus") == engine_status else None

        return wait_for(probe, timeout=timeout, message=f"engine {name} {engine_status}")

    def gone(self, plural: str, name: str) -> None:
        wait_for(lambda: self.get(plural, name) is None, timeout=30, message=f"{plural}/{name} gone")
