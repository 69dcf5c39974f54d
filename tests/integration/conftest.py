"""Integration fixtures: our CRDs installed, and one operator process for the session."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.support.cluster import Cluster
from tests.support.operator import OperatorProcess, start_operator
from tests.support.policies import OPT_IN, apply_policy, permissive
from tests.support.tools import REPO
from tests.support.waiting import wait_for

SOLO_PREFIX = "t-solo-"
OPERATOR_NAMESPACE = "aftershock-system"
WEBHOOK_CONFIG = "aftershock.test"
CRD_NAMES = ("chaosexperiments.aftershock.dev", "chaosruns.aftershock.dev", "chaospolicies.aftershock.dev")


@pytest.fixture(scope="session")
def crds(cluster: Cluster, api: client.ApiClient) -> None:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    ext = client.ApiextensionsV1Api(api)

    def established() -> bool:
        for name in CRD_NAMES:
            crd = ext.read_custom_resource_definition(name)
            if not any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or []):
                return False
        return True

    wait_for(established, timeout=30, message="aftershock CRDs Established")
    # a webhook configuration left by an operator that is gone would refuse every create
    client.AdmissionregistrationV1Api(api).delete_collection_validating_webhook_configuration(
        field_selector=f"metadata.name={WEBHOOK_CONFIG}"
    )
    # the suite runs under one permissive policy; policy tests add stricter ones and remove them
    apply_policy(api, permissive())


@pytest.fixture(scope="session")
def operator(
    cluster: Cluster, crds: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    log_path: Path = tmp_path_factory.mktemp("operator") / "operator.log"
    # namespaces named t-solo-* belong to tests that run operators of their own (crash, two operators)
    op = start_operator(
        cluster.kubeconfig, log_path, "--namespace", f"!{SOLO_PREFIX}*", "--sweep-interval", "2"
    )
    yield op
    op.stop()
    if op.process.returncode not in (0, -15):
        print(f"operator exited with {op.process.returncode}; log tail:\n{op.log()[-4000:]}")


def _webhook_registered(api: client.ApiClient) -> bool:
    configs = (
        client.AdmissionregistrationV1Api(api)
        .list_validating_webhook_configuration(field_selector=f"metadata.name={WEBHOOK_CONFIG}")
        .items
    )
    return bool(configs and configs[0].webhooks)


@pytest.fixture
def solo_namespace(api: client.ApiClient, crds: None) -> Iterator[str]:
    """A namespace the session operator ignores, for tests that run their own operators."""
    name = f"{SOLO_PREFIX}{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=OPT_IN)))
    yield name
    core.delete_namespace(name, propagation_policy="Background")
