"""hack/cluster.py recovers from a stale cluster and cleans up after itself (a second, throwaway cluster)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cluster import Cluster
from tests.support.tools import REPO


def _script(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "hack" / "cluster.py"), *args],
        env=env,
        text=True,
        capture_output=True,
        timeout=300,
        check=False,
    )


def _processes_under(path: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if str(path) in cmdline:
            pids.append(int(entry.name))
    return pids


@pytest.fixture
def throwaway_env(cluster: Cluster, tmp_path: Path) -> Iterator[dict[str, str]]:
    if not cluster.local:
        pytest.skip("exercises the local kwok cluster script; not meaningful with --kubeconfig")
    env = dict(
        os.environ,
        AFTERSHOCK_CLUSTER_DIR=str(tmp_path / "cluster"),
        AFTERSHOCK_CLUSTER_NAME="aftershock-throwaway",
        AFTERSHOCK_NODES="1",
    )
    yield env
    _script(env, "down")


def test_stale_cluster_is_replaced_and_down_leaves_nothing(
    throwaway_env: dict[str, str], tmp_path: Path
) -> None:
    first = _script(throwaway_env, "up")
    assert first.returncode == 0, first.stderr
    assert _script(throwaway_env, "status").returncode == 0

    # up again while healthy: reused, not recreated
    again = _script(throwaway_env, "up")
    assert again.returncode == 0 and "reusing it" in again.stderr

    # simulate a crash: the API server dies, its state stays behind
    state = tmp_path / "cluster"
    for pid in _processes_under(state):
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"kube-apiserver" in cmd:
            os.kill(pid, signal.SIGKILL)
    assert _script(throwaway_env, "status").returncode == 1

    recovered = _script(throwaway_env, "up")
    assert recovered.returncode == 0, recovered.stderr
    assert "stale cluster" in recovered.stderr
    assert _script(throwaway_env, "status").returncode == 0

    down = _script(throwaway_env, "down")
    assert down.returncode == 0
    assert not state.exists()
    assert _processes_under(state) == []
    # down is safe to repeat
    assert _script(throwaway_env, "down").returncode == 0
