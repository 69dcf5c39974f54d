"""Run the operator as a separate process, as in production: its own process, our CLI, a kubeconfig."""

from __future__ import annotations

import os
import signal
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.net import free_port
from tests.support.tools import REPO
from tests.support.waiting import wait_for


@dataclass
class OperatorProcess:
    process: subprocess.Popen[bytes]
    metrics_port: int
    health_port: int
    log_path: Path

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as resp:
            text: str = resp.read().decode()
        return text

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


REVIEW_KEY_NAMESPACE = "aftershock-system"
REVIEW_KEY = "aftershock-review-key"
# what an operator needs to read it (the chart grants the same in the release namespace)
REVIEW_KEY_RULE = {
    "apiGroups": [""],
    "resources": ["secrets"],
    "resourceNames": [REVIEW_KEY],
    "verbs": ["get"],
}


def start_operator(
    kubeconfig: Path, log_path: Path, *extra: str, env: dict[str, str] | None = None
) -> OperatorProcess:
    """Start `aftershock run` with `extra` flags; returns once /healthz answers."""
    metrics_port, health_port = free_port(), free_port()
    # every operator of the suite verifies review stamps with the key of the session operator,
    # whose webhook stamps what any test writes (tests/integration/conftest.py)
    env = dict(
        os.environ,
        KUBECONFIG=str(kubeconfig),
        PYTHONUNBUFFERED="1",
        AFTERSHOCK_REVIEW_KEY_NAMESPACE=REVIEW_KEY_NAMESPACE,
        **(env or {}),
    )
    log_file = log_path.open("ab")
    process = subprocess.Popen(
        [
            str(REPO / ".venv" / "bin" / "aftershock"),
            "run",
            "--metrics-port",
            str(metrics_port),
            "--health-port",
            str(health_port),
            "--bind",
            "127.0.0.1",
            *extra,
        ],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    op = OperatorProcess(process, metrics_port, health_port, log_path)
    try:
        wait_for(lambda: process.poll() is not None or op.healthy(), timeout=60, message="operator /healthz")
    except AssertionError:
        op.stop(signal.SIGKILL)
        raise
    if process.poll() is not None:
        raise AssertionError(f"operator exited with {process.returncode}:\n{op.log()[-3000:]}")
    return op


def solo_operator(kubeconfig: Path, logs: Path, namespace: str, identity: str, **env: str) -> OperatorProcess:
    """An operator of its own for one namespace (a replica, or one to crash and replace), with the
    sweeper every 2 s; its log is `<logs>/<identity>.log`."""
    return start_operator(
        kubeconfig,
        logs / f"{identity}.log",
        "--namespace",
        namespace,
        "--identity",
        identity,
        "--sweep-interval",
        "2",
        env=env,
    )


def share_review_key(api: Any, namespace: str) -> None:
    """Give `namespace` a copy of the suite's review key, for an operator that may read Secrets
    only there (the chart's RBAC, or a test's restricted Role) and verifies the stamps the session
    operator's webhook makes with the key in REVIEW_KEY_NAMESPACE."""
    from kubernetes import client

    core = client.CoreV1Api(api)
    source = core.read_namespaced_secret(REVIEW_KEY, REVIEW_KEY_NAMESPACE)
    body = {"metadata": {"name": REVIEW_KEY}, "type": source.type, "data": source.data}
    try:
        core.create_namespaced_secret(namespace, body)
    except client.ApiException as exc:
        if exc.status != 409:
            raise
