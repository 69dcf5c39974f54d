"""The dead-man's switch: which fault artifacts must go, decided from facts alone.

An artifact (a NetworkPolicy, a pod label) carries the uid of the run that made it. It must be
removed when that run no longer exists, has finished (its own revert should have removed it), or
is past its deadline — whatever the reason the run's own driver did not clean up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from aftershock.core.phases import is_terminal


@dataclass(frozen=True)
class Artifact:
    kind: str  # NetworkPolicy | PodLabel
    namespace: str
    name: str
    run_uid: str


@dataclass(frozen=True)
class RunFacts:
    phase: str | None
    deadline: datetime | None


@dataclass(frozen=True)
class Removal:
    artifact: Artifact
    reason: str


def to_remove(
    artifacts: Sequence[Artifact], runs: Mapping[str, RunFacts], now: datetime, grace_seconds: float = 0
) -> list[Removal]:
    """The artifacts to remove, each with the reason (for the log and an Event)."""
    removals = []
    for artifact in artifacts:
        facts = runs.get(artifact.run_uid)
        if facts is None:
            removals.append(Removal(artifact, f"its run (uid {artifact.run_uid}) no longer exists"))
        elif facts.phase and is_terminal(facts.phase):
            removals.append(Removal(artifact, f"its run already ended ({facts.phase})"))
        elif facts.deadline is not None and (now - facts.deadline).total_seconds() > grace_seconds:
            removals.append(Removal(artifact, f"its run is past its deadline {facts.deadline.isoformat()}"))
    return removals
