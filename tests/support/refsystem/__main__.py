"""`python -m tests.support.refsystem backend|frontend ARGS`: one service of the reference system
in this process (how `ReferenceSystem` starts them). A separate entry point, so the service's
module is imported once, not also as __main__."""

from __future__ import annotations

import sys

from tests.support.refsystem import backend, frontend


def main(argv: list[str]) -> None:
    services = {"backend": backend.main, "frontend": frontend.main}
    if not argv or argv[0] not in services:
        sys.exit(f"usage: python -m tests.support.refsystem {{{'|'.join(services)}}} ARGS")
    services[argv[0]](argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
