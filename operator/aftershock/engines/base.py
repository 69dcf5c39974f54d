"""The protocol every fault engine follows: check, inject, then revert. Observation of recovery is
shared (the runner's observer), so that severity means the same whatever engine caused the fault."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from aftershock.api.common import Severity
from aftershock.api.experiment import Fault, Target
from aftershock.api.run import LitmusRecord, TargetRecord
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
    target: Target | None = None
    targets: tuple[TargetRecord, ...] = ()  # every recorded target (an engine may act on all at once)


@dataclass(frozen=True)
class Note:
    """Something a revert had to do that the run must record (a finding of this severity)."""

    severity: Severity
    title: str
    detail: str


@dataclass(frozen=True)
class Followed:
    """What a self-timed engine (one that ends its fault itself, like Litmus) reports."""

    done: bool
    waiting: bool = False  # the engine has not been taken up yet
    record: LitmusRecord | None = None
    findings: tuple[Note, ...] = ()
    errored: tuple[str, str] | None = None  # (reason, message): the chaos was not carried out
    not_taken_up: tuple[str, str] | None = None  # (reason, message) if waiting past start_allowance
    summary: str = ""


class FaultEngine(Protocol):
    """One fault kind. Every method must be idempotent: a resumed run calls them again."""

    kind: str
    sustained: bool  # held for fault.duration and reverted (True), or a one-shot action (False)
    self_timed: bool  # ends the fault itself and says so through follow() (Litmus)

    def preflight(self, ctx: InjectContext) -> None:
        """Raise EngineError when a prerequisite is missing (before anything is chosen or touched)."""
        ...

    def start_allowance(self) -> float:
        """Seconds the fault may take to start after injection (added to the run's deadline)."""
        ...

    def inject(self, ctx: InjectContext, target: TargetRecord) -> dt.datetime | None:
        """Apply the fault to one recorded target; the time it took effect, or None if the target
        was already gone (deleted by an earlier attempt, or by someone else)."""
        ...

    def follow(self, ctx: InjectContext) -> Followed:
        """For self-timed engines: where the fault is now."""
        ...

    def revert(self, ctx: InjectContext) -> Sequence[Note]:
        """Undo everything this run applied; safe to call any number of times. Returns what had to
        be done that the run should record."""
        ...


class Native:
    """Defaults for the engines aftershock carries out itself: no prerequisites, and the runner
    times the fault."""

    self_timed = False

    def preflight(self, ctx: InjectContext) -> None:
        return None

    def start_allowance(self) -> float:
        return 0.0

    def follow(self, ctx: InjectContext) -> Followed:
        return Followed(done=True)
