"""pytest wiring: a cluster for the whole session, a fresh namespace per test."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.support.cluster import Cluster
from tests.support.policies import OPT_IN
from tests.support.tools import REPO


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--kubeconfig",
        action="store",
        default=None,
        help="run the integration tests against this cluster instead of the local kwok cluster",
    )
    parser.addoption(
        "--litmus",
        action="store_true",
        default=False,
        help="also run the tests that need LitmusChaos 3.x really installed (with --kubeconfig)",
    )


def pytest_report_header(config: pytest.Config) -> str:
    from tests.support.litmus.crds import crd_source

    try:
        files, _ = crd_source()
    except FileNotFoundError as exc:
        return f"litmus CRDs: missing ({exc})"
    return f"litmus CRDs: the real ones ({', '.join(str(f) for f in files)})"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.path).replace(os.sep, "/"):
            item.add_marker(pytest.mark.cluster)
    # tests of real Litmus belong to a real cluster that has it: not collected otherwise
    if not (config.getoption("--kubeconfig") and config.getoption("--litmus")):
        real = [item for item in items if item.get_closest_marker("litmus_real")]
        if real:
            config.hook.pytest_deselected(items=real)
            items[:] = [item for item in items if not item.get_closest_marker("litmus_real")]


def _cluster_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / "hack" / "cluster.py"), *args], text=True, check=False)


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """The cluster under test: `--kubeconfig PATH` if given, else the local one (started if needed).

    A local cluster this fixture started is stopped at the end of the session; one that was
    already running (make cluster-up, .ci/run) is left for its owner.
    """
    given = request.config.getoption("--kubeconfig")
    if given:
        yield Cluster(kubeconfig=Path(given).resolve(), local=False)
        return
    started_here = False
    if _cluster_script("status").returncode != 0:
        if _cluster_script("up").returncode != 0:
            pytest.fail("could not start the local cluster (see the [cluster] output above)")
        started_here = True
    kubeconfig = subprocess.run(
        [sys.executable, str(REPO / "hack" / "cluster.py"), "kubeconfig"],
        text=True,
        capture_output=True,
        check=True,
    ).stdout.strip()
    yield Cluster(kubeconfig=Path(kubeconfig), local=True)
    if started_here and not os.environ.get("AFTERSHOCK_KEEP_CLUSTER"):
        _cluster_script("down")


@pytest.fixture(scope="session")
def api(cluster: Cluster) -> client.ApiClient:
    return cluster.api_client()


@pytest.fixture
def namespace(api: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards (with everything in it)."""
    stem = "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:40].strip("-")
    name = f"t-{stem}-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api)
    core.create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(name=name, labels={"aftershock.dev/test": "true", **OPT_IN})
        )
    )
    yield name
    core.delete_namespace(name, propagation_policy="Background")
