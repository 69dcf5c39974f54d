"""A handle on the cluster the integration tests run against."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client, config

from tests.support.tools import REPO


@dataclass
class Cluster:
    kubeconfig: Path
    local: bool  # the kwok cluster of hack/cluster.py (pinned version, fake nodes)

    def api_client(self, impersonate: str | None = None) -> client.ApiClient:
        api = config.new_client_from_config(config_file=str(self.kubeconfig))
        if impersonate:
            api.set_default_header("Impersonate-User", impersonate)
        return api

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        kubectl_bin = REPO / ".venv" / "bin" / "kubectl"
        cmd = [
            str(kubectl_bin) if kubectl_bin.exists() else "kubectl",
            "--kubeconfig",
            str(self.kubeconfig),
            *args,
        ]
        return subprocess.run(cmd, text=True, capture_output=True, check=check, input=input, timeout=120)
