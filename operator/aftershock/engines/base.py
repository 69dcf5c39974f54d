"""The protocol every fault engine follows: inject, then revert. Observation of recovery is shared
(engines/observer.py), so that severity means the same whatever engine caused the fault."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from aftershock.api.experiment import Fault
from aftershock.api.run import TargetRecord
from aftershock.kube import Kube


class EngineError(Exception):
    """The chaos could not be carried out (engine missing, RBAC denied): the run ends Errored."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class InjectContext:
    kube: Kube
    run_name: str
    run_namespace: str
    run_uid: str
    fault: Fault
    target_namespace: str


class FaultEngine(Protocol):
    """One fault kind. Both methods must be idempotent: a resumed run calls them again."""

    kind: str
    sustained: bool  # held for fault.duration and reverted (True), or a one-shot action (False)

    def inject(self, ctx: InjectContext, target: TargetRecord) -> dt.datetime | None:
        """Apply the fault to one recorded target; the time it took effect, or None if the target
        was already gone (deleted by an earlier attempt, or by someone else)."""
        ...

    def revert(self, ctx: InjectContext) -> None:
        """Undo everything this run applied; safe to call any number of times."""
        ...
