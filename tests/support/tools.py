"""Where the pinned tool binaries live, read from the same code that builds them."""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]


@cache
def build_tools() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_tools", REPO / "hack" / "build_tools.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("build_tools", module)
    spec.loader.exec_module(module)
    return module


def versions() -> dict[str, str]:
    result: dict[str, str] = build_tools().read_versions()
    return result


def bin_dir(tool: str) -> Path:
    """The tool's cache directory (a tool built from this repo's sources is keyed by their hash too)."""
    path: Path = build_tools().bin_dir(tool)
    return path


def built(tool: str) -> Path:
    """bin_dir(tool), building the tool first when it is not in the cache (as `make tools` would)."""
    path = bin_dir(tool)
    if not (path.parent / build_tools().MARKER).exists() and build_tools().main([tool]) != 0:
        raise RuntimeError(f"could not build {tool} (hack/build_tools.py {tool} says why, above)")
    return path
