#!/usr/bin/env python3
"""Build the local control plane's binaries from Go modules, once, into a cache outside the repo.

kube-apiserver, kube-controller-manager, kube-scheduler, etcd, kwok, kwokctl, helm, toxiproxy,
prometheus and promtool are built with the ordinary ``go`` client from the versions pinned in
``hack/tools.versions``. ``go install pkg@version`` refuses modules with replace directives
(k8s.io/kubernetes, etcd), so each tool is built inside a small generated wrapper module whose
replace directives are derived from the release's own go.mod: every local (``./staging/...``)
replacement is mapped to the published module at the matching version. A tool whose source is in
this repo (the kstatus helper, ``hack/kstatus``) is built from that module and its committed
go.sum instead; its cache directory also names a hash of those files, so an edit rebuilds it.
LitmusChaos's chaos-operator, chaos-runner and litmus-go (experiment, helper) are built from their
read-only sources next to the checkout (``../shared/litmus``, or $AFTERSHOCK_LITMUS_SRC) with a
copy of their go.mod/go.sum outside it (``-modfile``); their cache key names a hash of the source
tree. When those sources are absent, building every tool skips them with a notice.

Each tool lands in ``<cache>/<tool>-<version>/bin`` and is marked complete only after every
binary built; a failed step leaves nothing that looks complete. Stdlib only, so it runs before
the project's virtualenv exists.

Usage: build_tools.py [--print-bin-dirs] [TOOL ...]
Environment: AFTERSHOCK_TOOLS_DIR (cache root, default $XDG_CACHE_HOME/aftershock/tools),
AFTERSHOCK_LITMUS_SRC (the Litmus sources, default <checkout>/../shared/litmus).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VERSIONS_FILE = REPO / "hack" / "tools.versions"
MARKER = ".complete.json"


class BuildError(RuntimeError):
    """A named build step failed; the message says which step and which module."""


def read_versions(path: Path = VERSIONS_FILE) -> dict[str, str]:
    versions: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        versions[key.strip()] = value.strip()
    return versions


def cache_root() -> Path:
    explicit = os.environ.get("AFTERSHOCK_TOOLS_DIR")
    if explicit:
        return Path(explicit).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "aftershock" / "tools"


def _kube_staging_version(version: str) -> str:
    # k8s.io/kubernetes v1.37.2 publishes its staging modules (k8s.io/api, ...) as v0.37.2.
    major_minor_patch = version.lstrip("v").split("-")[0].split(".")
    return f"v0.{major_minor_patch[1]}.{major_minor_patch[2]}"


def _same_version(version: str) -> str:
    return version


def _kube_ldflags(version: str) -> list[str]:
    major, minor = version.lstrip("v").split(".")[:2]
    values = {
        "gitVersion": version,
        "gitMajor": major,
        "gitMinor": minor,
        "gitTreeState": "clean",
        "gitCommit": f"aftershock-module-build-{version}",
        "buildDate": "1970-01-01T00:00:00Z",
    }
    flags = []
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {package}.{key}={value}" for key, value in values.items()]
    return flags


def _prometheus_release(version: str) -> str:
    # The Go module github.com/prometheus/prometheus numbers release 3.16.0 as v0.316.0 (v0.Mmm.p is
    # M.mm.p), and the 2.x releases before it as v0.mm.p (v0.55.1 is 2.55.1).
    _, number, patch = version.lstrip("v").split("-")[0].split(".")
    major, minor = divmod(int(number), 100) if int(number) >= 100 else (2, int(number))
    return f"{major}.{minor}.{patch}"


def _prometheus_ldflags(version: str) -> list[str]:
    values = {
        "Version": _prometheus_release(version),
        "Revision": f"aftershock-module-build-{version}",
        "Branch": "HEAD",
        "BuildUser": "aftershock",
        "BuildDate": "19700101-00:00:00",
    }
    return [f"-X github.com/prometheus/common/version.{key}={value}" for key, value in values.items()]


@dataclass(frozen=True)
class Tool:
    name: str
    module: str
    version_key: str
    binaries: dict[str, str]  # output name -> Go package path
    local_replace_version: Callable[[str], str] = _same_version
    ldflags: Callable[[str], list[str]] = field(default=lambda _v: [])
    hint: str = "a minute or two"
    source: Path | None = None
    """A Go module in this repo that requires `module` at the pinned version; built from its own
    go.mod and go.sum (package paths in `binaries` are relative to it) instead of a wrapper."""
    tree: Callable[[], Path] | None = None
    """Where the read-only source tree of `module` is (found at run time); built in place with its
    go.mod and go.sum copied out (package paths in `binaries` are relative to it)."""


def litmus_source() -> Path:
    """The LitmusChaos sources: $AFTERSHOCK_LITMUS_SRC, else ../shared/litmus next to the checkout."""
    given = os.environ.get("AFTERSHOCK_LITMUS_SRC")
    return Path(given).expanduser().resolve() if given else REPO.parent / "shared" / "litmus"


def _litmus(folder: str) -> Callable[[], Path]:
    return lambda: litmus_source() / folder


TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in (
        Tool(
            name="kubernetes",
            module="k8s.io/kubernetes",
            version_key="KUBERNETES_VERSION",
            binaries={
                "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
                "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
                "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
            },
            local_replace_version=_kube_staging_version,
            ldflags=_kube_ldflags,
            hint="20-40 minutes on 2 cores the first time",
        ),
        Tool(
            name="etcd",
            module="go.etcd.io/etcd/v3",
            version_key="ETCD_VERSION",
            binaries={"etcd": "go.etcd.io/etcd/server/v3"},  # server/main.go is the etcd command
            hint="a few minutes",
        ),
        Tool(
            name="kwok",
            module="sigs.k8s.io/kwok",
            version_key="KWOK_VERSION",
            binaries={"kwok": "sigs.k8s.io/kwok/cmd/kwok", "kwokctl": "sigs.k8s.io/kwok/cmd/kwokctl"},
            ldflags=lambda v: [f"-X sigs.k8s.io/kwok/pkg/consts.Version={v}"],
            hint="several minutes",
        ),
        Tool(
            name="helm",
            module="helm.sh/helm/v3",
            version_key="HELM_VERSION",
            binaries={"helm": "helm.sh/helm/v3/cmd/helm"},
            ldflags=lambda v: [f"-X helm.sh/helm/v3/internal/version.version={v}"],
            hint="a few minutes",
        ),
        Tool(
            name="toxiproxy",
            module="github.com/Shopify/toxiproxy/v2",
            version_key="TOXIPROXY_VERSION",
            binaries={
                "toxiproxy-server": "github.com/Shopify/toxiproxy/v2/cmd/server",
                "toxiproxy-cli": "github.com/Shopify/toxiproxy/v2/cmd/cli",
            },
            ldflags=lambda v: [f"-X github.com/Shopify/toxiproxy/v2.Version={v}"],
        ),
        Tool(
            name="prometheus",
            module="github.com/prometheus/prometheus",
            version_key="PROMETHEUS_VERSION",
            binaries={
                "prometheus": "github.com/prometheus/prometheus/cmd/prometheus",
                "promtool": "github.com/prometheus/prometheus/cmd/promtool",
            },
            # without the builtinassets tag the web UI is served from ./web/ui on disk (absent
            # here: the UI pages fail, the HTTP API and /-/ready are unaffected)
            ldflags=_prometheus_ldflags,
            hint="15-20 minutes on 2 cores the first time",
        ),
        Tool(
            name="kstatus",
            module="sigs.k8s.io/cli-utils",
            version_key="CLI_UTILS_VERSION",
            binaries={"kstatus": "."},
            source=REPO / "hack" / "kstatus",
            hint="about a minute",
        ),
        Tool(
            name="chaos-operator",
            module="github.com/litmuschaos/chaos-operator",
            version_key="LITMUS_OPERATOR_VERSION",
            binaries={"chaos-operator": "."},
            tree=_litmus("chaos-operator"),
            hint="a minute or three the first time",
        ),
        Tool(
            name="chaos-runner",
            module="github.com/litmuschaos/chaos-runner",
            version_key="LITMUS_RUNNER_VERSION",
            binaries={"chaos-runner": "./bin"},
            tree=_litmus("chaos-runner"),
            hint="a minute or two",
        ),
        Tool(
            name="litmus-go",
            module="github.com/litmuschaos/litmus-go",
            version_key="LITMUS_GO_VERSION",
            binaries={"experiment": "./bin/experiment", "helper": "./bin/helper"},
            tree=_litmus("litmus-go"),
            hint="a minute or three the first time",
        ),
    )
}


def _source_files(source: Path) -> list[Path]:
    return sorted(
        p for p in source.iterdir() if p.is_file() and (p.name in ("go.mod", "go.sum") or p.suffix == ".go")
    )


def source_hash(source: Path) -> str:
    """A short hash of a repo-built tool's module (go.mod, go.sum, *.go): part of its cache key."""
    digest = hashlib.sha256()
    for path in _source_files(source):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def tree_hash(tree: Path) -> str:
    """A short hash of every file under a source tree (paths and contents); "absent" without one."""
    if not tree.is_dir():
        return "absent"
    digest = hashlib.sha256()
    for path in sorted(p for p in tree.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(tree)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def _dir_version(tool: Tool, version: str) -> str:
    if tool.tree is not None:
        return f"{version}-{tree_hash(tool.tree())}"
    return f"{version}-{source_hash(tool.source)}" if tool.source is not None else version


def cache_version(tool: Tool, versions: Mapping[str, str]) -> str:
    """The version in the tool's cache directory name: the pinned version, plus the source hash
    for a tool built from this repo."""
    return _dir_version(tool, versions[tool.version_key])


def bin_dir(name: str, versions: Mapping[str, str] | None = None, root: Path | None = None) -> Path:
    """Where the binaries of tool `name` are (or will be) in the cache."""
    tool = TOOLS[name]
    pinned = read_versions() if versions is None else versions
    return (root or cache_root()) / f"{name}-{cache_version(tool, pinned)}" / "bin"


def log(message: str) -> None:
    print(f"[build-tools] {message}", file=sys.stderr, flush=True)


def go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("GOTOOLCHAIN", "local")
    env["CGO_ENABLED"] = "0"
    env["GOFLAGS"] = "-mod=mod"
    env.pop("GOWORK", None)
    return env


def run(step: str, args: list[str], cwd: Path | None = None) -> str:
    try:
        proc = subprocess.run(args, cwd=cwd, env=go_env(), text=True, capture_output=True, check=False)
    except FileNotFoundError as exc:
        raise BuildError(f"step '{step}' failed: {exc.filename} not found on PATH") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-25:])
        raise BuildError(f"step '{step}' failed (exit {proc.returncode}):\n{tail}")
    return proc.stdout


def check_go() -> None:
    if shutil.which("go") is None:
        raise BuildError(
            "step 'check Go toolchain' failed: 'go' is not on PATH. Install Go 1.26 or newer "
            "(the pinned Kubernetes release needs it) and run again."
        )
    out = run("check Go toolchain", ["go", "env", "GOVERSION"]).strip()
    log(f"using {out}")


def release_replaces(tool: Tool, version: str) -> list[tuple[str, str]]:
    """Replacements for the wrapper module, generated from the release's own go.mod."""
    step = f"download {tool.module}@{version}"
    info = json.loads(run(step, ["go", "mod", "download", "-json", f"{tool.module}@{version}"]))
    if info.get("Error"):
        raise BuildError(f"step '{step}' failed: {info['Error']}")
    gomod = json.loads(
        run(f"read go.mod of {tool.module}@{version}", ["go", "mod", "edit", "-json", info["GoMod"]])
    )
    replaces: list[tuple[str, str]] = []
    for rep in gomod.get("Replace") or []:
        old, new = rep["Old"], rep["New"]
        if new["Path"].startswith("."):
            target = f"{old['Path']}@{tool.local_replace_version(version)}"
        else:
            target = f"{new['Path']}@{new['Version']}" if new.get("Version") else new["Path"]
        source = old["Path"] + (f"@{old['Version']}" if old.get("Version") else "")
        replaces.append((source, target))
    return replaces


def write_wrapper(tool: Tool, version: str, workdir: Path) -> None:
    lines = [
        f"// Generated by hack/build_tools.py for {tool.module}@{version}; not part of the project.",
        f"module aftershock.dev/tools/{tool.name}",
        "",
        "go 1.26.0",
        "",
        f"require {tool.module} {version}",
        "",
    ]
    replaces = release_replaces(tool, version)
    for source, target in replaces:
        src = source.replace("@", " ")
        dst = target.replace("@", " ")
        lines.append(f"replace {src} => {dst}")
    lines.append("")
    lines += [f"tool {pkg}" for pkg in tool.binaries.values()]
    (workdir / "go.mod").write_text("\n".join(lines) + "\n")
    log(f"{tool.name}: wrapper module with {len(replaces)} replace directives from the release's go.mod")


def copy_source(tool: Tool, version: str, workdir: Path) -> None:
    """Copy a repo-built tool's module into `workdir` (the build never writes into the repo) and
    check that it requires the pinned version."""
    assert tool.source is not None
    where = tool.source.relative_to(REPO) if tool.source.is_relative_to(REPO) else tool.source
    files = _source_files(tool.source)
    if not any(p.name == "go.sum" for p in files):
        raise BuildError(f"step 'read {where}' failed: {where}/go.sum is missing (run go mod tidy there)")
    for path in files:
        shutil.copy2(path, workdir / path.name)
    gomod = json.loads(run(f"read {where}/go.mod", ["go", "mod", "edit", "-json", str(workdir / "go.mod")]))
    required = {req["Path"]: req["Version"] for req in gomod.get("Require") or []}
    if required.get(tool.module) != version:
        raise BuildError(
            f"step 'check {where}/go.mod' failed: it requires {tool.module} {required.get(tool.module)},"
            f" hack/tools.versions pins {tool.version_key}={version}; make them agree"
        )
    log(f"{tool.name}: building {where} with its committed go.sum")


def copy_tree_modfile(tool: Tool, workdir: Path) -> Path:
    """Copy the tree's go.mod and go.sum into `workdir` (the build may add to go.sum; the sources
    stay untouched) and check that the tree is `module`; returns the tree."""
    assert tool.tree is not None
    tree = tool.tree()
    if not (tree / "go.mod").is_file():
        raise BuildError(
            f"step 'find {tool.name} sources' failed: no go.mod in {tree}"
            " (set AFTERSHOCK_LITMUS_SRC to the folder holding chaos-operator/, chaos-runner/, litmus-go/)"
        )
    for name in ("go.mod", "go.sum"):
        if (tree / name).is_file():
            shutil.copyfile(tree / name, workdir / name)
    gomod = json.loads(run(f"read {tree}/go.mod", ["go", "mod", "edit", "-json", str(workdir / "go.mod")]))
    if gomod["Module"]["Path"] != tool.module:
        raise BuildError(f"step 'check {tree}' failed: it is {gomod['Module']['Path']}, not {tool.module}")
    log(f"{tool.name}: building {tree} (read-only) with a copy of its go.mod and go.sum")
    return tree


def _is_executable(path: Path) -> bool:
    if not path.is_file() or not os.access(path, os.X_OK):
        return False
    with path.open("rb") as handle:
        return handle.read(4) == b"\x7fELF"


def build_tool(tool: Tool, version: str, root: Path) -> Path:
    final = root / f"{tool.name}-{_dir_version(tool, version)}"
    if (final / MARKER).exists():
        return final / "bin"
    root.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    log(f"{tool.name} {version}: not cached, building {', '.join(tool.binaries)} ({tool.hint})")
    staging = Path(tempfile.mkdtemp(prefix=f".partial-{tool.name}-{version}-", dir=root))
    staging.chmod(0o755)
    try:
        work = staging / "module"
        bindir = staging / "bin"
        work.mkdir()
        bindir.mkdir()
        cwd = work
        if tool.tree is not None:
            cwd = copy_tree_modfile(tool, work)
            modflags = [f"-modfile={work / 'go.mod'}", "-buildvcs=false"]
        elif tool.source is not None:
            copy_source(tool, version, work)
            modflags = ["-mod=readonly"]  # the committed go.sum must be complete
        else:
            write_wrapper(tool, version, work)
            log(f"{tool.name}: resolving and downloading modules")
            run(f"resolve modules for {tool.module}@{version} (go mod tidy)", ["go", "mod", "tidy"], cwd=work)
            modflags = []
        ldflags = " ".join(["-s", "-w", *tool.ldflags(version)])
        for name, package in tool.binaries.items():
            t0 = time.monotonic()
            log(f"{tool.name}: compiling {name} from {package}")
            run(
                f"build {name} from {package} ({tool.module}@{version})",
                [
                    "go",
                    "build",
                    *modflags,
                    "-trimpath",
                    "-ldflags",
                    ldflags,
                    "-o",
                    str(bindir / name),
                    package,
                ],
                cwd=cwd,
            )
            if not _is_executable(bindir / name):
                raise BuildError(
                    f"step 'build {name} from {package}' produced no executable (not a main package?)"
                )
            log(f"{tool.name}: {name} built in {time.monotonic() - t0:.0f}s")
        seconds = round(time.monotonic() - started, 1)
        marker = {"module": tool.module, "version": version, "build_seconds": seconds}
        if tool.source is not None:
            marker["source_hash"] = source_hash(tool.source)
        if tool.tree is not None:
            marker["source"], marker["tree_hash"] = str(tool.tree()), tree_hash(tool.tree())
        (staging / MARKER).write_text(json.dumps(marker) + "\n")
        if final.exists():  # an incomplete leftover from an interrupted run
            shutil.rmtree(final)
        staging.rename(final)
        log(f"{tool.name} {version}: done in {seconds:.0f}s -> {final / 'bin'}")
        return final / "bin"
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _available(tool: Tool) -> bool:
    """A tool built from sources next to the checkout is built by default only when they are there."""
    if tool.tree is None or (tool.tree() / "go.mod").is_file():
        return True
    log(f"{tool.name}: no sources at {tool.tree()} (AFTERSHOCK_LITMUS_SRC); not built, its tests will fail")
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("tools", nargs="*", help=f"subset of {', '.join(TOOLS)} (default: all)")
    parser.add_argument("--print-bin-dirs", action="store_true", help="print NAME=DIR lines, build nothing")
    args = parser.parse_args(argv)
    versions = read_versions()
    root = cache_root()
    selected = args.tools or [n for n in TOOLS if _available(TOOLS[n])]
    unknown = [t for t in selected if t not in TOOLS]
    if unknown:
        parser.error(f"unknown tool(s): {', '.join(unknown)}")
    if args.print_bin_dirs:
        for name in selected:
            print(f"{name}={bin_dir(name, versions, root)}")
        return 0
    started = time.monotonic()
    root.mkdir(parents=True, exist_ok=True)
    lock = (root / ".lock").open("w")
    fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time; a second caller waits, then reuses it
    try:
        missing = [n for n in selected if not (bin_dir(n, versions, root).parent / MARKER).exists()]
        if missing:
            check_go()
            log(f"cache: {root}; to build: {', '.join(missing)}")
        for name in selected:
            tool = TOOLS[name]
            build_tool(tool, versions[tool.version_key], root)
    except BuildError as exc:
        log(f"ERROR: {exc}")
        log("nothing incomplete was kept in the cache; fix the cause and run again")
        return 1
    finally:
        lock.close()
    if missing:
        log(f"all tools ready in {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
