"""The local control plane is real: version, scheduling, controllers, CEL validation and RBAC."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.support.cluster import Cluster
from tests.support.tools import versions
from tests.support.waiting import wait_for
from tests.support.workloads import deployment, is_ready, pods_of, ready_pods


def test_server_reports_the_pinned_kubernetes_version(cluster: Cluster, api: client.ApiClient) -> None:
    info = client.VersionApi(api).get_code()
    if not cluster.local:
        assert info.git_version.startswith("v1.")
        return
    assert info.git_version == versions()["KUBERNETES_VERSION"]
    out = cluster.kubectl("version", "-o", "json").stdout
    assert f'"gitVersion": "{versions()["KUBERNETES_VERSION"]}"' in out


def test_deployment_is_scheduled_on_kwok_nodes_and_a_deleted_pod_is_replaced(
    cluster: Cluster, api: client.ApiClient, namespace: str
) -> None:
    apps = client.AppsV1Api(api)
    core = client.CoreV1Api(api)
    apps.create_namespaced_deployment(namespace, deployment("web", replicas=3))

    pods = wait_for(
        lambda: (p := ready_pods(api, namespace, "web")) and len(p) == 3 and p,
        timeout=60,
        message="3 Ready pods",
    )
    kwok_nodes = {n.metadata.name for n in core.list_node(label_selector="type=kwok").items}
    if cluster.local:
        assert {p.spec.node_name for p in pods} <= kwok_nodes
        assert len(kwok_nodes) >= 3
    assert all(p.spec.node_name for p in pods)

    victim = pods[0]
    core.delete_namespaced_pod(victim.metadata.name, namespace, grace_period_seconds=0)

    def replaced() -> list[client.V1Pod] | None:
        current = pods_of(api, namespace, "web")
        uids = {p.metadata.uid for p in current}
        ready = [p for p in current if is_ready(p)]
        return ready if victim.metadata.uid not in uids and len(ready) == 3 else None

    after = wait_for(replaced, timeout=60, message="a Ready replacement pod")
    new_uids = {p.metadata.uid for p in after} - {p.metadata.uid for p in pods}
    assert len(new_uids) == 1


@pytest.fixture
def widget_crd(api: client.ApiClient) -> Iterator[str]:
    group = f"t{uuid.uuid4().hex[:6]}.test.aftershock.dev"
    ext = client.ApiextensionsV1Api(api)
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {"min": {"type": "integer"}, "max": {"type": "integer"}},
                                    "x-kubernetes-validations": [
                                        {"rule": "self.min <= self.max", "message": "min must not exceed max"}
                                    ],
                                },
                                "status": {"type": "object", "properties": {"seen": {"type": "integer"}}},
                            },
                        }
                    },
                }
            ],
        },
    }
    ext.create_custom_resource_definition(crd)

    def established() -> bool:
        got = ext.read_custom_resource_definition(f"widgets.{group}")
        return any(c.type == "Established" and c.status == "True" for c in (got.status.conditions or []))

    wait_for(established, timeout=30, message="the CRD to be Established")
    yield group
    ext.delete_custom_resource_definition(f"widgets.{group}")


def test_crd_with_status_subresource_and_cel_rule_is_enforced(
    api: client.ApiClient, namespace: str, widget_crd: str
) -> None:
    objects = client.CustomObjectsApi(api)

    def create(name: str, spec: dict[str, int]) -> dict[str, object]:
        body = {"apiVersion": f"{widget_crd}/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec}
        result: dict[str, object] = objects.create_namespaced_custom_object(
            widget_crd, "v1", namespace, "widgets", body
        )
        return result

    # the API may answer 404 for a moment after Established while discovery catches up
    good = wait_for(
        lambda: create("good", {"min": 1, "max": 2}), timeout=30, message="creating a valid Widget"
    )
    with pytest.raises(ApiException) as refused:
        create("bad", {"min": 3, "max": 2})
    assert refused.value.status == 422
    assert "min must not exceed max" in refused.value.body

    # status is a subresource: a status write through the main resource is ignored, through /status kept
    objects.patch_namespaced_custom_object(
        widget_crd, "v1", namespace, "widgets", "good", {"status": {"seen": 1}}
    )
    plain = objects.get_namespaced_custom_object(widget_crd, "v1", namespace, "widgets", "good")
    assert "status" not in plain or plain["status"].get("seen") is None
    objects.patch_namespaced_custom_object_status(
        widget_crd, "v1", namespace, "widgets", "good", {"status": {"seen": 7}}
    )
    updated = objects.get_namespaced_custom_object(widget_crd, "v1", namespace, "widgets", "good")
    assert updated["status"]["seen"] == 7
    assert updated["metadata"]["generation"] == good["metadata"]["generation"]  # type: ignore[index]


def test_serviceaccount_without_permissions_is_refused(
    cluster: Cluster, api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="nobody"))
    )
    as_nobody = client.CoreV1Api(cluster.api_client(impersonate=f"system:serviceaccount:{namespace}:nobody"))
    with pytest.raises(ApiException) as denied:
        as_nobody.list_namespaced_pod(namespace)
    assert denied.value.status == 403
    with pytest.raises(ApiException) as denied_delete:
        as_nobody.delete_namespaced_service_account("nobody", namespace)
    assert denied_delete.value.status == 403
    # the account still exists: the refused call changed nothing
    assert core.read_namespaced_service_account("nobody", namespace).metadata.name == "nobody"
