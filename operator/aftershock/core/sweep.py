"""The dead-man's switch: which fault artifacts must go, decided from facts alone.

An artifact (a NetworkPolicy, a pod label) carries the uid of the run that made it. It must be
removed when that run no longer exists, has finished (its own revert should have removed it), or
is past its deadline — whatever the reason the run's own driver did not clean up.

An operator that watches only some namespaces knows only the runs in them. An artifact whose run
lives elsewhere belongs to another operator, and one that does not say where its run lives cannot
be judged at all: both are left alone rather than removed from under a fault that may be live.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from aftershock.core.phases import is_terminal
from aftershock.core.watch_scope import Scope


@dataclass(frozen=True)
class Artifact:
    kind: str  # an engine's artifact kind (engines/registry.py): NetworkPolicy, PodLabel, ChaosEngine
    namespace: str
    name: str
    run_uid: str
    run_namespace: str | None = None  # the run's namespace, when the artifact says so


@dataclass(frozen=True)
class RunFacts:
    phase: str | None
    deadline: datetime | None


@dataclass(frozen=True)
class Removal:
    artifact: Artifact
    reason: str


def to_remove(
    artifacts: Sequence[Artifact],
    runs: Mapping[str, RunFacts],
    now: datetime,
    grace_seconds: float = 0,
    scope: Scope = None,
) -> list[Removal]:
    """The artifacts to remove, each with the reason (for the log and an Event).

    `runs` are the runs in `scope` (None: every namespace), by uid.
    """
    removals = []
    for artifact in artifacts:
        if scope is not None and artifact.run_namespace not in scope:
            continue
        facts = runs.get(artifact.run_uid)
        if facts is None:
            removals.append(Removal(artifact, f"its run (uid {artifact.run_uid}) no longer exists"))
        elif facts.phase and is_terminal(facts.phase):
            removals.append(Removal(artifact, f"its run already ended ({facts.phase})"))
        elif facts.deadline is not None and (now - facts.deadline).total_seconds() > grace_seconds:
            removals.append(Removal(artifact, f"its run is past its deadline {facts.deadline.isoformat()}"))
    return removals
