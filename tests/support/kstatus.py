"""The real kstatus library's verdict on objects, through the helper built from hack/kstatus."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tests.support.tools import built


@dataclass(frozen=True)
class Verdict:
    """kstatus's status.Compute result for one object: InProgress, Current, Failed, Terminating..."""

    kind: str
    name: str
    status: str
    message: str


def run_helper(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    binary = built("kstatus") / "kstatus"
    return subprocess.run([str(binary), *args], input=stdin, text=True, capture_output=True, timeout=60)


def kstatus(*objects: Mapping[str, Any]) -> list[Verdict]:
    """One verdict per object, in order; a helper failure is an assertion error with its output."""
    proc = run_helper(stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))
    assert proc.returncode == 0, f"kstatus helper exited {proc.returncode}: {proc.stderr}{proc.stdout}"
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(lines) == len(objects), proc.stdout
    return [Verdict(line["kind"], line["name"], line["status"], line.get("message", "")) for line in lines]


def verdict(obj: Mapping[str, Any]) -> Verdict:
    return kstatus(obj)[0]
