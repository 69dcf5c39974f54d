"""The chaos ServiceAccount's permissions, as a user grants them from the ChaosHub's definitions.

Litmus's processes run with the token of the engine's chaos ServiceAccount (the pod executor mints
one per pod), so what the account is granted is what Litmus can do. Each hub ChaosExperiment lists
the rules it needs (`spec.definition.permissions`) and whether they are namespaced or
cluster-wide (`spec.definition.scope`: node experiments list and evict pods everywhere).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import yaml
from kubernetes import client

from tests.support.litmus.crds import hub_file

Body = dict[str, Any]
ROLE_REF = "rbac.authorization.k8s.io"


def hub_definitions() -> dict[str, Body]:
    """name → spec.definition of every hub ChaosExperiment."""
    docs = [d for d in yaml.safe_load_all(hub_file().read_text()) if d]
    return {d["metadata"]["name"]: d["spec"]["definition"] for d in docs}


def rules_of(names: Iterable[str], scope: str) -> list[Body]:
    """The permissions of the named hub experiments of that scope (Namespaced or Cluster)."""
    definitions = hub_definitions()
    rules: list[Body] = []
    for name in names:
        definition = definitions[name]
        if definition.get("scope", "Namespaced") == scope:
            rules.extend(r for r in definition["permissions"] if r not in rules)
    return rules


def namespaced_experiments() -> list[str]:
    return [n for n, d in hub_definitions().items() if d.get("scope", "Namespaced") == "Namespaced"]


def _subject(namespace: str, account: str) -> list[Body]:
    return [{"kind": "ServiceAccount", "name": account, "namespace": namespace}]


def grant_in_namespace(
    api: client.ApiClient, namespace: str, account: str, experiments: Iterable[str]
) -> None:
    """A Role and RoleBinding giving `account` what the named namespaced experiments need."""
    rbac = client.RbacAuthorizationV1Api(api)
    rbac.create_namespaced_role(
        namespace, {"metadata": {"name": account}, "rules": rules_of(experiments, "Namespaced")}
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": account},
            "roleRef": {"apiGroup": ROLE_REF, "kind": "Role", "name": account},
            "subjects": _subject(namespace, account),
        },
    )


@contextlib.contextmanager
def granted_cluster_wide(
    api: client.ApiClient, namespace: str, account: str, experiments: Iterable[str]
) -> Iterator[str]:
    """A ClusterRole and ClusterRoleBinding giving `account` what the named cluster-scoped
    experiments (node-drain, …) need, for the block."""
    rbac = client.RbacAuthorizationV1Api(api)
    name = f"{namespace}-{account}"
    rbac.create_cluster_role({"metadata": {"name": name}, "rules": rules_of(experiments, "Cluster")})
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": ROLE_REF, "kind": "ClusterRole", "name": name},
            "subjects": _subject(namespace, account),
        }
    )
    try:
        yield name
    finally:
        with contextlib.suppress(client.ApiException):
            rbac.delete_cluster_role_binding(name)
        with contextlib.suppress(client.ApiException):
            rbac.delete_cluster_role(name)
