"""The Litmus build entries of hack/build_tools.py and the pure parts of the tests' pod executor."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.litmus.processes import Binaries, LitmusPrograms
from tests.support.pod_executor import NotRunnable, _running, _terminated, field_value
from tests.support.tools import build_tools


def _tree(root: Path) -> Path:
    for name in ("chaos-operator", "chaos-runner", "litmus-go"):
        (root / name).mkdir(parents=True)
        (root / name / "go.mod").write_text(f"module github.com/litmuschaos/{name}\n")
    return root


def test_litmus_binaries_are_keyed_by_a_hash_of_their_source_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bt = build_tools()
    monkeypatch.setenv("AFTERSHOCK_LITMUS_SRC", str(_tree(tmp_path / "litmus")))
    pinned = bt.read_versions()
    first = bt.bin_dir("litmus-go", pinned, tmp_path / "cache")
    assert first.parent.name.startswith(f"litmus-go-{pinned['LITMUS_GO_VERSION']}-")
    (tmp_path / "litmus" / "litmus-go" / "main.go").write_text("package main\n")
    assert bt.bin_dir("litmus-go", pinned, tmp_path / "cache") != first, "an edit means a rebuild"
    assert bt.bin_dir("litmus-go", pinned, tmp_path / "cache").parent.parent == tmp_path / "cache"


def test_litmus_sources_default_to_shared_next_to_the_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    bt = build_tools()
    monkeypatch.delenv("AFTERSHOCK_LITMUS_SRC", raising=False)
    assert bt.litmus_source() == bt.REPO.parent / "shared" / "litmus"


def test_without_litmus_sources_all_tools_skip_them_and_a_named_one_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bt = build_tools()
    monkeypatch.setenv("AFTERSHOCK_LITMUS_SRC", str(tmp_path / "nowhere"))
    monkeypatch.setenv("AFTERSHOCK_TOOLS_DIR", str(tmp_path / "cache"))
    assert not bt._available(bt.TOOLS["chaos-operator"])
    assert "no sources at" in capsys.readouterr().err
    assert bt._available(bt.TOOLS["helm"])
    monkeypatch.setattr(bt, "check_go", lambda: None)
    assert bt.main(["chaos-runner"]) == 1
    assert "AFTERSHOCK_LITMUS_SRC" in capsys.readouterr().err


def _pod(image: str, *args: str) -> dict[str, object]:
    container = {"name": "c", "image": image, "command": ["/bin/bash"] if args else None, "args": list(args)}
    return {"metadata": {"name": "p"}, "spec": {"containers": [container]}}


def test_litmus_pods_map_to_their_real_binaries_and_helpers_to_the_stand_in() -> None:
    bins = Binaries(Path("/b/chaos-operator"), Path("/b/chaos-runner"), Path("/b/experiment"))
    programs = LitmusPrograms(bins)
    k = Path("/k")
    assert programs(_pod("litmuschaos/chaos-runner:latest"), k) == ["/b/chaos-runner", "-kubeconfig", "/k"]
    experiment = _pod(
        "litmuschaos.docker.scarf.sh/litmuschaos/go-runner:3.28.0", "-c", "./experiments -name pod-delete"
    )
    assert programs(experiment, k) == ["/b/experiment", "-name", "pod-delete", "-kubeconfig", "/k"]
    programs.helper_mode = "hang"
    helper = programs(_pod("litmuschaos/go-runner:3.28.0", "-c", "./helpers -name network-chaos"), k)
    assert helper[1].endswith("helper_stand_in.py") and helper[2:] == ["network-chaos", "hang"]
    with pytest.raises(NotRunnable, match="nginx"):
        programs(_pod("nginx"), k)


def test_downward_api_fields_resolve_from_the_pod() -> None:
    pod = {
        "metadata": {"name": "exp-1", "namespace": "ns", "labels": {"app.kubernetes.io/part-of": "litmus"}},
        "spec": {"nodeName": "kwok-node-0", "serviceAccountName": "litmus-admin"},
    }
    assert field_value(pod, "metadata.name") == "exp-1"
    assert field_value(pod, "metadata.namespace") == "ns"
    assert field_value(pod, "metadata.labels['app.kubernetes.io/part-of']") == "litmus"
    assert field_value(pod, "spec.nodeName") == "kwok-node-0"
    assert field_value(pod, "status.podIP") == ""


def test_a_process_exit_becomes_the_pods_end() -> None:
    containers = [{"name": "pod-delete-abc", "image": "go-runner"}]
    running = _running(containers, "2026-01-01T00:00:00Z")
    assert running["phase"] == "Running" and running["containerStatuses"][0]["ready"] is True
    ok = _terminated(containers, 0, None, "2026-01-01T00:00:00Z")
    state = ok["containerStatuses"][0]["state"]["terminated"]
    assert ok["phase"] == "Succeeded" and state["reason"] == "Completed" and state["exitCode"] == 0
    assert ok["containerStatuses"][0]["ready"] is False  # Litmus's operator reads "Completed and not ready"
    failed = _terminated(containers, 2, None, "2026-01-01T00:00:00Z")
    assert (
        failed["phase"] == "Failed" and failed["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 2
    )
