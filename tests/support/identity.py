"""Run something as a ServiceAccount with exactly the permissions a test grants (real RBAC)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client


def token_kubeconfig(admin_kubeconfig: str, user: str, token: str) -> str:
    """A kubeconfig for the admin kubeconfig's cluster that authenticates with `token` alone."""
    cluster = yaml.safe_load(admin_kubeconfig)["clusters"][0]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": {"cluster": cluster["name"], "user": user}}],
        "current-context": user,
    }
    return str(yaml.safe_dump(config))


@contextmanager
def service_account_kubeconfig(
    api: client.ApiClient, admin_kubeconfig: Path, namespace: str, rules: list[dict[str, Any]], out: Path
) -> Iterator[Path]:
    """A kubeconfig for a fresh ServiceAccount bound cluster-wide to `rules`; removed afterwards."""
    name = f"t-sa-{uuid.uuid4().hex[:8]}"
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": name}})
    rbac.create_cluster_role({"metadata": {"name": name}, "rules": rules})
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        }
    )
    try:
        token = core.create_namespaced_service_account_token(
            name, namespace, {"spec": {"expirationSeconds": 3600}}
        ).status.token
        out.write_text(token_kubeconfig(admin_kubeconfig.read_text(), name, token))
        yield out
    finally:
        rbac.delete_cluster_role_binding(name)
        rbac.delete_cluster_role(name)
