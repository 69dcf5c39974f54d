"""What every benchmark needs: the local cluster, a namespace that opts in under a permissive
policy, and the operator as a separate process; all removed afterwards."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config
from tests.support.operator import OperatorProcess, start_operator
from tests.support.policies import OPT_IN, apply_policy, delete_policy, permissive
from tests.support.tools import REPO

POLICY = "benchmark"


@dataclass
class Bench:
    kubeconfig: Path
    api: client.ApiClient
    namespace: str
    operator: OperatorProcess


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, round(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    return {
        "cpus": str(os.cpu_count()),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def report(result: dict[str, Any], out: Path) -> None:
    """Write the result as JSON (benchmarks/results/) and print it."""
    text = json.dumps(result, indent=2) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text, end="")


@contextmanager
def bench_environment(prefix: str) -> Iterator[Bench]:
    kubeconfig = Path(
        subprocess.run(
            ["python3", str(REPO / "hack" / "cluster.py"), "kubeconfig"],
            text=True,
            capture_output=True,
            check=True,
        ).stdout.strip()
    )
    api = config.new_client_from_config(config_file=str(kubeconfig))
    core = client.CoreV1Api(api)
    namespace = f"{prefix}-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace, labels=OPT_IN)))
    apply_policy(api, permissive(POLICY))
    operator = start_operator(
        kubeconfig, Path(tempfile.mkdtemp()) / "operator.log", "--namespace", namespace, "--metrics-port", "0"
    )
    try:
        yield Bench(kubeconfig, api, namespace, operator)
    finally:
        operator.stop()
        core.delete_namespace(namespace)
        delete_policy(api, POLICY)
