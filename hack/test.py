"""`make test`: the whole suite. With no test paths given, the unit tests (no cluster, CPU-bound,
about a minute) run in a second process alongside the integration tests (mostly waiting on the
cluster), and their output follows the integration tests' — the same tests, in less wall time.
With paths, or -k/--lf-style selections, it is one plain pytest run."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTEST = str(REPO / ".venv" / "bin" / "pytest")
SELECTING = ("-k", "-m", "--lf", "--last-failed", "--ff", "--failed-first", "--deselect")


def main(args: list[str]) -> int:
    paths = [a for a in args if not a.startswith("-") and (REPO / a.split("::")[0]).exists()]
    if paths or any(a.split("=")[0] in SELECTING for a in args):
        return subprocess.call([PYTEST, *args], cwd=REPO)
    with tempfile.NamedTemporaryFile("w+", prefix="aftershock-unit-", suffix=".log") as log:
        began = time.monotonic()
        unit = subprocess.Popen([PYTEST, "tests/unit", *args], cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        integration = subprocess.call([PYTEST, "tests/integration", *args], cwd=REPO)
        unit_status = unit.wait()
        log.seek(0)
        print(f"\n== unit tests (ran alongside, {time.monotonic() - began:.0f} s wall time for both)")
        print(log.read(), end="")
    print(f"== integration tests: exit {integration}; unit tests: exit {unit_status}")
    return integration or unit_status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
