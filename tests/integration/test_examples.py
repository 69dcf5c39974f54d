"""Every file in examples/ is accepted by the API server as it is (server-side dry run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cluster import Cluster
from tests.support.tools import REPO

EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 4


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_is_accepted(cluster: Cluster, crds: None, namespace: str, path: Path) -> None:
    if path.name == "manual-run.yaml":  # a run is admitted only for an experiment that exists
        cluster.kubectl("apply", "-n", namespace, "-f", str(REPO / "examples" / "scheduled-pod-delete.yaml"))
        cluster.kubectl(
            "patch",
            "-n",
            namespace,
            "chaosexperiment",
            "checkout-office-hours",
            "--type=merge",
            "-p",
            '{"spec": {"suspend": true}}',
        )
    result = cluster.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", str(path), check=False)
    assert result.returncode == 0, f"{path.name}: {result.stderr}"
    assert "(server dry run)" in result.stdout
