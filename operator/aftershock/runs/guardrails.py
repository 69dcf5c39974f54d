"""Guardrails hold for the whole run, not only at its start.

One monitor per process (never a loop per run): every `INTERVAL` seconds, and at once when a
ChaosPolicy changes, it judges every active run this operator claims that holds a fault in place
(a sustained one: a NetworkPolicy, a Litmus engine) against the policies in
force and its target namespace's labels (core.policy.check_active: opted out, denied, out of
scope, window closed, blackout begun, no policy left, maxDuration lowered). A run that fails is
*revoked*: `revoked()` names why from then on, and the waiting runs are woken through the kill
switch's listeners, so the run's driver aborts it and reverts its fault within seconds.

Reads: policies and runs from the watch-fed cache; namespace labels through the shared
`NamespaceLabels` (one GET per target namespace per round, joined with the runs' own reads).
A read that fails decides nothing: a run is revoked only on what was actually seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from aftershock.api.common import RunPhase
from aftershock.api.run import ChaosRun
from aftershock.cluster.io import Io
from aftershock.cluster.store import CacheUnavailable
from aftershock.core import policy as core_policy
from aftershock.core.safety import effective_target_namespace
from aftershock.engines.policy_gate import Policies, parse_policies
from aftershock.engines.registry import UnknownFault
from aftershock.kube import Kube, Obj, now
from aftershock.runs.engine_access import engine_of
from aftershock.runs.namespaces import Labels, NamespaceLabels

log = logging.getLogger(__name__)

INTERVAL = 2.0  # seconds between rounds; a revoked fault is reverted well within 10 s
READ_PATIENCE = 3.0  # seconds one round waits for a namespace's labels before deciding without it
WATCHED_PHASES = frozenset({RunPhase.INJECTING.value, RunPhase.OBSERVING.value})
"""A fault is (being) put in place. Reverting runs are already taking theirs away."""

RunKey = tuple[str, str]  # (namespace, name)


class GuardrailView(Protocol):
    """The cached reads the monitor decides on (runs/view.py's CachedView)."""

    def active_runs(self) -> list[Obj]: ...
    def policies(self) -> list[Obj]: ...


@dataclass(frozen=True)
class Subject:
    """What of an active run the guardrails are checked against (from its frozen spec)."""

    namespace: str
    name: str
    target_namespace: str
    fault_kind: str
    fault_duration: dt.timedelta | None
    recovery_timeout: dt.timedelta | None

    @property
    def key(self) -> RunKey:
        return (self.namespace, self.name)


def subject_of(obj: Obj, identity: str) -> Subject | None:
    """The run as the monitor judges it, or None when it is not ours to judge: not claimed by this
    operator, not injecting or observing, a one-shot fault (deleted pods: nothing is held that a
    revert could take back, and the recovery measurement goes on), or without a spec the driver
    could act on (it ends Errored by itself)."""
    status = obj.get("status") or {}
    if status.get("phase") not in WATCHED_PHASES or status.get("claimedBy") != identity:
        return None
    try:
        run = ChaosRun.from_body(obj)
        spec = run.spec
        if spec.target is None or spec.fault is None:
            return None
        engine = engine_of(run)
        if not engine.sustained:
            return None
        kind = engine.policy_kind(spec.fault)
        fault_duration = spec.fault.duration_delta
        recovery_timeout = spec.recovery.timeout_delta if spec.recovery is not None else None
    except (UnknownFault, ValueError):
        return None
    namespace = str(obj["metadata"]["namespace"])
    return Subject(
        namespace=namespace,
        name=str(obj["metadata"]["name"]),
        target_namespace=effective_target_namespace(namespace, spec.target.namespace),
        fault_kind=kind,
        fault_duration=fault_duration,
        recovery_timeout=recovery_timeout,
    )


def judge(
    subject: Subject,
    policies: Policies,
    labels: Labels,
    *,
    operator_namespace: str | None,
    moment: dt.datetime,
) -> str | None:
    """Why the run must stop now (a sentence for its Aborted condition), or None while it may go on."""
    decision = core_policy.check_active(
        policies,
        experiment_namespace=subject.namespace,
        target_namespace=subject.target_namespace,
        target_namespace_labels=labels,
        fault_kind=subject.fault_kind,
        operator_namespace=operator_namespace,
        now=moment,
        fault_duration=subject.fault_duration,
        recovery_timeout=subject.recovery_timeout,
    )
    if decision.allowed:
        return None
    return f"a guardrail no longer holds while the fault is in place ({decision.reason}): {decision.message}"


class Revocations:
    """The bookkeeping: which active runs are revoked, and why. A revocation sticks until the run
    is no longer active (a guardrail that flickers back does not un-abort a run mid-revert); a
    run that was not judged this round (its namespace could not be read) keeps what it had."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reasons: dict[RunKey, str] = {}

    def get(self, namespace: str, name: str) -> str | None:
        with self._lock:
            return self._reasons.get((namespace, name))

    def record(self, active: Iterable[RunKey], judged: Mapping[RunKey, str | None]) -> list[RunKey]:
        """Forget runs no longer active, add the new revocations; returns the newly revoked runs."""
        still = set(active)
        added: list[RunKey] = []
        with self._lock:
            for key in [k for k in self._reasons if k not in still]:
                del self._reasons[key]
            for key, reason in judged.items():
                if reason is not None and key in still and key not in self._reasons:
                    self._reasons[key] = reason
                    added.append(key)
        return added

    def __len__(self) -> int:
        with self._lock:
            return len(self._reasons)


class GuardrailMonitor:
    """The process's one guardrail monitor: `run()` is its loop, `revoked()` what drivers ask,
    `poke()` (any thread) asks for a round now."""

    def __init__(
        self,
        *,
        view: GuardrailView,
        kube: Kube,
        io: Io,
        namespace_labels: NamespaceLabels,
        identity: str,
        operator_namespace: str | None,
        wake: Callable[[], None],
        clock: Callable[[], dt.datetime] = now,
        interval: float = INTERVAL,
        read_patience: float = READ_PATIENCE,
    ) -> None:
        self.view = view
        self.kube = kube
        self.io = io
        self.namespace_labels = namespace_labels
        self.identity = identity
        self.operator_namespace = operator_namespace
        self.wake = wake
        self.clock = clock
        self.interval = interval
        self.read_patience = read_patience
        self.revocations = Revocations()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._poked: asyncio.Event | None = None
        self._waking_thread: int | None = None

    def revoked(self, namespace: str, name: str) -> str | None:
        """Why the run must be aborted (a sentence), or None; cheap, from any thread."""
        return self.revocations.get(namespace, name)

    def poke(self) -> None:
        """Ask for a round at once (a ChaosPolicy changed). Safe from any thread; ignored while
        the monitor itself wakes the runs (it is one of the listeners it calls)."""
        loop, poked = self._loop, self._poked
        if loop is None or poked is None or self._waking_thread == threading.get_ident():
            return
        loop.call_soon_threadsafe(poked.set)

    async def run(self) -> None:
        """Rounds until cancelled: every `interval` seconds, or sooner when poked."""
        self._loop = asyncio.get_running_loop()
        self._poked = asyncio.Event()
        while True:
            self._poked.clear()
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug here must not end the monitor: the next round tries again
                log.exception("guardrail round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poked.wait(), self.interval)

    async def check(self) -> list[RunKey]:
        """One round: judge every active run we claim; returns the runs newly revoked."""
        try:
            active = self.view.active_runs()
            policies = parse_policies(self.view.policies())
        except CacheUnavailable as exc:
            log.info("guardrails: cache not ready (%s); no decision this round", exc)
            return []
        subjects = [s for s in (subject_of(obj, self.identity) for obj in active) if s is not None]
        labels = await self._labels({s.target_namespace for s in subjects})
        moment = self.clock()
        judged = {
            s.key: judge(
                s,
                policies,
                labels[s.target_namespace],
                operator_namespace=self.operator_namespace,
                moment=moment,
            )
            for s in subjects
            if s.target_namespace in labels
        }
        active_keys = [(str(o["metadata"]["namespace"]), str(o["metadata"]["name"])) for o in active]
        added = self.revocations.record(active_keys, judged)
        if added:
            for namespace, name in added:
                log.warning("run %s/%s revoked: %s", namespace, name, self.revocations.get(namespace, name))
            self._wake_runs()
        return added

    def _wake_runs(self) -> None:
        self._waking_thread = threading.get_ident()
        try:
            self.wake()
        finally:
            self._waking_thread = None

    async def _labels(self, namespaces: set[str]) -> dict[str, Labels]:
        """The labels of each namespace that could be read within the patience (None: deleted)."""
        names = sorted(namespaces)

        async def read(name: str) -> Labels:
            return await asyncio.wait_for(
                self.namespace_labels.get(self.io, self.kube, name), self.read_patience
            )

        answers = await asyncio.gather(*(read(n) for n in names), return_exceptions=True)
        found: dict[str, Labels] = {}
        for name, answer in zip(names, answers, strict=True):
            if isinstance(answer, BaseException):
                if isinstance(answer, asyncio.CancelledError):
                    raise answer
                log.warning(
                    "guardrails: cannot read namespace %s (%s); no decision on its runs", name, answer
                )
                continue
            found[name] = answer
        return found
