"""The Dockerfile, checked without a Docker engine: hadolint, and the shape a platform team expects."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from tests.support.tools import REPO

DOCKERFILE = REPO / "Dockerfile"
HADOLINT = REPO / ".venv" / "bin" / "hadolint"


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    # the strictest threshold: even "info" findings (such as a non-numeric USER) fail
    return subprocess.run(
        [str(HADOLINT), "--no-color", "--failure-threshold", "style", str(path)],
        text=True,
        capture_output=True,
        check=False,
        timeout=60,
    )


def instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def entrypoint() -> list[str]:
    (value,) = [rest for word, rest in instructions(DOCKERFILE.read_text()) if word == "ENTRYPOINT"]
    command: list[str] = json.loads(value)  # exec form is JSON
    return command


def test_hadolint_passes() -> None:
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_bites_on_latest_and_a_named_user(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text('FROM python:latest\nUSER app\nENTRYPOINT ["aftershock", "run"]\n')
    result = hadolint(bad)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # latest
    assert "DL3066" in result.stdout  # non-numeric user
    shell_form = tmp_path / "Dockerfile.shell"
    shell_form.write_text("FROM python:3.11.14-slim-bookworm\nUSER 65532\nENTRYPOINT aftershock run\n")
    assert "DL3025" in hadolint(shell_form).stdout


def test_multi_stage_pinned_slim_base_non_root_exec_entrypoint() -> None:
    steps = instructions(DOCKERFILE.read_text())
    args = dict(rest.split("=", 1) for word, rest in steps if word == "ARG" and "=" in rest)
    froms = [rest for word, rest in steps if word == "FROM"]
    assert len(froms) == 2, froms
    images = [re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], f.split()[0]) for f in froms]
    for image in images:
        assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", image), image
    assert froms[0].endswith("AS builder")
    final = steps[[i for i, (w, _) in enumerate(steps) if w == "FROM"][1] :]
    # the final stage copies the virtualenv only and runs nothing (no pip, no apt, no compilers)
    assert [w for w, _ in final if w == "RUN"] == []
    copies = [rest for w, rest in final if w == "COPY"]
    assert copies == ["--from=builder /opt/aftershock /opt/aftershock"]
    users = [rest for w, rest in final if w == "USER"]
    assert users and re.fullmatch(r"\d+(:\d+)?", users[-1]) and users[-1].split(":")[0] != "0"
    assert users[-1].split(":")[0] == "65532"
    assert entrypoint() == ["/opt/aftershock/bin/aftershock", "run"]


def test_dockerignore_sends_only_what_the_build_needs() -> None:
    lines = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = set()
    for word, rest in instructions(DOCKERFILE.read_text()):
        if word == "COPY" and not rest.startswith("--from"):
            copied.update(p.rstrip("/") for p in rest.split()[:-1])
    assert copied == allowed, (copied, allowed)
    for path in copied:
        assert (REPO / path).exists(), path
