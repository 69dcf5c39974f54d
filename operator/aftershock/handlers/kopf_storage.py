"""kopf keeps no "last handled" copy of our objects.

kopf writes each object's last handled spec into an annotation so that its on.create/on.update
handlers can tell what changed. aftershock registers none: experiments go to the scheduler (which
compares generations itself), runs to a daemon and a deletion handler, which kopf detects from
`deletionTimestamp` alone. That annotation would cost an extra PATCH — and a trip through the
admission webhooks, and a watch event — for every experiment and every run created or changed.
"""

from __future__ import annotations

from typing import Any

import kopf


class NoDiffBase(kopf.DiffBaseStorage):
    """Remembers nothing: every event looks new to kopf, which only matters to handlers that
    compare (none here)."""

    def fetch(self, *, body: Any) -> None:
        return None

    def store(self, *, body: Any, patch: Any, essence: Any) -> None:
        return None
