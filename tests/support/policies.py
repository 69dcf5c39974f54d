"""ChaosPolicies for tests: the permissive one the whole suite runs under, and helpers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

GROUP, VERSION = "aftershock.dev", "v1alpha1"
OPT_IN = {"aftershock.dev/chaos": "enabled"}
SUITE_POLICY = "test-suite"


def policy(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ChaosPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }


def permissive(name: str = SUITE_POLICY) -> dict[str, Any]:
    """Opt-in namespaces only (as always), but room for every test: all pods, many runs, and
    probes may reach the tests' local HTTP services and Prometheus on 127.0.0.1 (the operator runs
    on this machine; the API server's own 127.0.0.1:PORT stays out of reach) and any Service (for
    the examples; tests of the endpoint rules add a stricter policy)."""
    return policy(
        name,
        allowedFaults=[
            "podDelete",
            "networkPartition",
            "litmus",
            "litmusNode",
            "toxiproxy",
            "nodeDrain",
            "nodeTaint",
        ],
        blastRadius={"maxPodsPercent": 100, "maxNodes": 1},
        concurrency={"maxActiveRuns": 200, "maxActiveRunsPerNamespace": 100},
        endpoints={"allow": ["127.0.0.1/32", "*.svc", "*.svc.cluster.local"]},
    )


def apply_policy(api: client.ApiClient, body: dict[str, Any]) -> None:
    objects = client.CustomObjectsApi(api)
    try:
        objects.create_cluster_custom_object(GROUP, VERSION, "chaospolicies", body)
    except ApiException as exc:
        if exc.status != 409:
            raise
        current = objects.get_cluster_custom_object(GROUP, VERSION, "chaospolicies", body["metadata"]["name"])
        body = {
            **body,
            "metadata": {**body["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]},
        }
        objects.replace_cluster_custom_object(GROUP, VERSION, "chaospolicies", body["metadata"]["name"], body)


@contextmanager
def extra_policy(api: client.ApiClient, **spec: Any) -> Iterator[str]:
    """A stricter policy for the duration of a block (all policies apply: the strictest wins)."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    apply_policy(api, policy(name, **spec))
    try:
        yield name
    finally:
        delete_policy(api, name)


def delete_policy(api: client.ApiClient, name: str) -> None:
    try:
        client.CustomObjectsApi(api).delete_cluster_custom_object(GROUP, VERSION, "chaospolicies", name)
    except ApiException as exc:
        if exc.status != 404:
            raise
