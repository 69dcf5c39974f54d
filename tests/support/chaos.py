"""Building and reading aftershock objects in tests."""

from __future__ import annotations

from typing import Any

from kubernetes import client

GROUP, VERSION = "aftershock.dev", "v1alpha1"


def experiment(
    name: str,
    *,
    app: str,
    mode: str = "one",
    value: int | None = None,
    objective: str = "30s",
    timeout: str = "60s",
    kind: str = "Deployment",
    fault: dict[str, Any] | None = None,
    extra_spec: dict[str, Any] | None = None,
) -> dict[str, Any]:
    target: dict[str, Any] = {"kind": kind, "selector": {"matchLabels": {"app": app}}, "mode": mode}
    if value is not None:
        target["value"] = value
    spec: dict[str, Any] = {
        "target": target,
        "fault": fault or {"podDelete": {"gracePeriodSeconds": 0}},
        "recovery": {"objective": objective, "timeout": timeout},
    }
    spec.update(extra_spec or {})
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ChaosExperiment",
        "metadata": {"name": name},
        "spec": spec,
    }


class Chaos:
    """Thin helpers over CustomObjectsApi for our kinds in one namespace."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.objects = client.CustomObjectsApi(api)
        self.namespace = namespace

    def create_experiment(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.objects.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "chaosexperiments", body
        )
        return result

    def get(self, plural: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.objects.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, name
        )
        return result

    def runs(self, experiment: str | None = None) -> list[dict[str, Any]]:
        selector = f"aftershock.dev/experiment={experiment}" if experiment else ""
        items: list[dict[str, Any]] = self.objects.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "chaosruns", label_selector=selector
        )["items"]
        return items

    def finished_run(self, experiment: str) -> dict[str, Any] | None:
        runs = self.runs(experiment)
        terminal = {"Completed", "Aborted", "Skipped", "Errored"}
        done = [r for r in runs if (r.get("status") or {}).get("phase") in terminal]
        return done[0] if done else None

    def delete(self, plural: str, name: str) -> None:
        self.objects.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, name)

    def events_for(self, api: client.ApiClient, name: str) -> list[client.CoreV1Event]:
        """Events about one object, read through the core/v1 view (message = the event's note)."""
        events = client.CoreV1Api(api).list_namespaced_event(self.namespace).items
        return [e for e in events if e.involved_object and e.involved_object.name == name]


def partition(duration: str = "3s", direction: str = "Both") -> dict[str, Any]:
    return {"duration": duration, "networkPartition": {"direction": direction}}


def our_network_policies(api: client.ApiClient, namespace: str | None = None) -> list[client.V1NetworkPolicy]:
    net = client.NetworkingV1Api(api)
    selector = "aftershock.dev/run"
    items = (
        net.list_namespaced_network_policy(namespace, label_selector=selector)
        if namespace
        else net.list_network_policy_for_all_namespaces(label_selector=selector)
    ).items
    return list(items)
