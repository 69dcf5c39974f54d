"""Manifests of the workloads that tests break and watch recover (pods run on fake kwok nodes)."""

from __future__ import annotations

from typing import Any

from kubernetes import client

READY_DELAY_ANNOTATION = "aftershock.dev/test-ready-delay"


def deployment(
    name: str,
    *,
    replicas: int = 3,
    labels: dict[str, str] | None = None,
    ready_delay: str | None = None,
    node_selector: dict[str, str] | None = None,
    tolerations: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """A Deployment whose pods kwok marks Ready after the cluster's delay, or `ready_delay` ("5s")."""
    pod_labels = {"app": name}
    annotations = {READY_DELAY_ANNOTATION: ready_delay} if ready_delay else {}
    pod_spec: dict[str, Any] = {
        "containers": [{"name": "app", "image": "registry.invalid/aftershock/fake:1"}],
        "terminationGracePeriodSeconds": 5,
    }
    if node_selector:
        pod_spec["nodeSelector"] = node_selector
    if tolerations:
        pod_spec["tolerations"] = tolerations
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name, **(labels or {})}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": pod_labels},
            "template": {"metadata": {"labels": pod_labels, "annotations": annotations}, "spec": pod_spec},
        },
    }


def pods_of(api: client.ApiClient, namespace: str, app: str) -> list[client.V1Pod]:
    pods: list[client.V1Pod] = (
        client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=f"app={app}").items
    )
    return pods


def is_ready(pod: client.V1Pod) -> bool:
    if pod.metadata.deletion_timestamp is not None:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))


def ready_pods(api: client.ApiClient, namespace: str, app: str) -> list[client.V1Pod]:
    return [p for p in pods_of(api, namespace, app) if is_ready(p)]
