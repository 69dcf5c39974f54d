"""The real LitmusChaos processes for the test cluster: its chaos-operator, and what runs its pods.

`ChaosOperator` runs the chaos-operator (built from ../shared/litmus into the tool cache by
hack/build_tools.py) as a local process against the test cluster, as the README there says. The
`litmus_programs` map the pods it and its runner create to the real binaries for the pod executor
(tests/support/pod_executor.py): the chaos-runner image → chaos-runner, the go-runner image's
`./experiments -name X` → litmus-go's experiment binary, and its `./helpers -name X` → a stand-in
(tests/support/litmus/helper_stand_in.py): every litmus-go helper needs a container runtime or `tc`
in the target's network namespace, which kwok pods do not have.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.pod_executor import NotRunnable, PodExecutor
from tests.support.tools import REPO, built

HELPER_STAND_IN = Path(__file__).resolve().parent / "helper_stand_in.py"
_EXPERIMENT = re.compile(r"\./experiments\s+-name\s+(\S+)")
_HELPER = re.compile(r"\./helpers\s+-name\s+(\S+)")


@dataclass(frozen=True)
class Binaries:
    operator: Path
    runner: Path
    experiment: Path

    @classmethod
    def from_cache(cls) -> Binaries:
        """The binaries in the tool cache, built first when missing (as `make tools` does)."""
        return cls(
            operator=built("chaos-operator") / "chaos-operator",
            runner=built("chaos-runner") / "chaos-runner",
            experiment=built("litmus-go") / "experiment",
        )


def _image_name(image: str) -> str:
    """litmuschaos.docker.scarf.sh/litmuschaos/go-runner:3.28.0 → go-runner"""
    return image.rsplit("/", 1)[-1].split("@", 1)[0].split(":", 1)[0]


class LitmusPrograms:
    """What the executor runs for a Litmus pod; `helper_mode` is the stand-in helper's ending
    (`helper_modes` sets it for one namespace)."""

    def __init__(self, binaries: Binaries) -> None:
        self.binaries = binaries
        self.helper_mode = "pass"
        self.helper_modes: dict[str, str] = {}

    def __call__(self, pod: Mapping[str, Any], kubeconfig_path: Path) -> Sequence[str]:
        container = pod["spec"]["containers"][0]
        image = _image_name(container.get("image", ""))
        line = " ".join([*(container.get("command") or []), *(container.get("args") or [])])
        kubeconfig = ["-kubeconfig", str(kubeconfig_path)]
        if image == "chaos-runner":
            return [str(self.binaries.runner), *kubeconfig]
        if image == "go-runner":
            experiment = _EXPERIMENT.search(line)
            if experiment:
                return [str(self.binaries.experiment), "-name", experiment[1], *kubeconfig]
            helper = _HELPER.search(line)
            if helper:
                mode = self.helper_modes.get(pod["metadata"].get("namespace", ""), self.helper_mode)
                return [sys.executable, str(HELPER_STAND_IN), helper[1], mode]
        raise NotRunnable(f"no local program for image {container.get('image')!r} running {line!r}")


def litmus_executor(
    kubeconfig: Path, log_dir: Path, binaries: Binaries
) -> tuple[PodExecutor, LitmusPrograms]:
    """A pod executor for Litmus's pods (not started). The processes get PATH with the virtualenv's
    kubectl (node-drain runs `kubectl drain`) besides the pod's own environment, and act as the
    pod's ServiceAccount (the chaos ServiceAccount of the engine)."""
    programs = LitmusPrograms(binaries)
    env = {
        "PATH": f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": os.environ.get("HOME", "/tmp"),
    }
    return PodExecutor(kubeconfig, log_dir, programs, env=env), programs


class ChaosOperator:
    """The real chaos-operator as a local process watching every namespace; stop() and start() again
    for tests that need Litmus gone or unresponsive."""

    def __init__(self, binary: Path, kubeconfig: Path, log: Path) -> None:
        self.binary, self.kubeconfig, self.log = binary, kubeconfig, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ChaosOperator:
        if self.running():
            return self
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "WATCH_NAMESPACE": "",  # must be set; empty watches every namespace
            "ANALYTICS": "FALSE",  # keeps it off the network
        }
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    str(self.binary),
                    "--metrics-bind-address=127.0.0.1:0",
                    "--health-probe-bind-address=127.0.0.1:0",
                ],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def tail(self, lines: int = 80) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])
