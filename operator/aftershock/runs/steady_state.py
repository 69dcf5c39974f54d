"""The steady-state hypothesis and the error-budget gate around one run.

Before injecting: the gate, then every probe once (`before_injecting`). While the fault is in
place: a `Sampler` — one asyncio task for the run, not a thread — checks every probe each
`interval` and raises its `event` when a probe's consecutive failures reach `abortAfter`; the
driver then aborts through the same path as the kill switch. After recovery: every probe once more
(`Sampler.finish`). Connections go through the endpoint guard with the rules of every ChaosPolicy.
The tally lives in memory: after an operator restart the sampler starts counting afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from aftershock.api.common import Finding
from aftershock.api.run import ChaosRun, ProbeStatus
from aftershock.api.steady_state import Probe, PrometheusQuery
from aftershock.core import probes as core
from aftershock.core.endpoints import EndpointRules
from aftershock.engines.policy_gate import Policies, parse_policies
from aftershock.metrics import PROBE_ABORTS, PROBE_SUCCESS
from aftershock.probes import http, prometheus, workload
from aftershock.probes.guard import GuardedClient
from aftershock.runs.base import RunEnv, Stop
from aftershock.runs.journal import fault_kind

log = logging.getLogger(__name__)


def endpoint_rules(env: RunEnv, target_ns: str, policies: Policies | None = None) -> EndpointRules:
    """The endpoint rules for a run: every policy's allow list, the API server's own endpoints."""
    if policies is None:
        policies = parse_policies(env.cluster().policies())
    return EndpointRules.build(target_ns, [spec.endpoints.allow for _name, spec in policies], env.api_server)


async def check_probe(probe: Probe, client: GuardedClient, env: RunEnv, target_ns: str) -> core.Answer:
    now = env.clock()
    try:
        if probe.http is not None:
            return await http.check(probe.http, client, now)
        if probe.prometheus is not None:
            return await prometheus.check(probe.prometheus, client, now)
        assert probe.kubernetes is not None
        return workload.check(probe.kubernetes, target_ns, env.cluster().list_workloads, now)
    except Exception as exc:  # a probe's failure is an answer, never the run's crash
        log.warning("probe %s: %r", probe.name, exc)
        return core.Answer(ok=False, detail=f"probe error: {type(exc).__name__}: {exc}"[:300], at=now)


async def check_all(
    probes: Sequence[Probe], client: GuardedClient, env: RunEnv, target_ns: str
) -> dict[str, core.Answer]:
    answers = await asyncio.gather(*(check_probe(p, client, env, target_ns) for p in probes))
    return {p.name: a for p, a in zip(probes, answers, strict=True)}


@dataclass
class Before:
    """What the checks before injecting found. `skip`/`error`: (reason, message) to end the run with."""

    answers: dict[str, core.Answer] = field(default_factory=dict)
    skip: tuple[str, str] | None = None
    error: tuple[str, str] | None = None

    def statuses(self, run: ChaosRun) -> list[ProbeStatus]:
        probes = run.spec.steady_state.probes if run.spec.steady_state else []
        return [
            core.Tally(p.name, p.type).to_status(self.answers.get(p.name), None)
            for p in probes
            if p.name in self.answers
        ]


async def before_injecting(env: RunEnv, run: ChaosRun, target_ns: str, policies: Policies) -> Before:
    """The gate, then the hypothesis: both must hold for the run to inject anything."""
    spec = run.spec
    result = Before()
    if spec.gate is None and spec.steady_state is None:
        return result
    client = GuardedClient(endpoint_rules(env, target_ns, policies))
    try:
        if spec.gate is not None:
            gate = await prometheus.check(spec.gate.prometheus, client, env.clock())
            if gate.refused:
                result.error = (core.REFUSED_REASON, f"gate: {gate.detail}; nothing was injected")
                return result
            if not gate.ok:
                result.skip = (core.GATE_REASON, gate_message(spec.gate.prometheus, gate))
                return result
        if spec.steady_state is not None:
            result.answers = await check_all(spec.steady_state.probes, client, env, target_ns)
            refused = core.refusal(result.answers)
            if refused is not None:
                result.error = (core.REFUSED_REASON, refused)
            else:
                not_met = core.not_met(result.answers)
                if not_met is not None:
                    result.skip = (core.NOT_MET_REASON, not_met)
        return result
    finally:
        await client.close()


def gate_message(query: PrometheusQuery, answer: core.Answer) -> str:
    return (
        f"the error-budget gate is closed: {query.query} = {answer.detail}; the slot was skipped and"
        " nothing was injected (chaos never spends budget the service no longer has)"
    )


@dataclass
class Aborting:
    probe: Probe
    finding: Finding
    message: str


class Sampler:
    """Checks a run's probes every interval while its fault is in place, in one task."""

    def __init__(self, env: RunEnv, run: ChaosRun, namespace: str, target_ns: str) -> None:
        assert run.spec.steady_state is not None
        self.env = env
        self.run = run
        self.namespace = namespace
        self.target_ns = target_ns
        self.hypothesis = run.spec.steady_state
        self.tallies = {p.name: core.Tally(p.name, p.type) for p in self.hypothesis.probes}
        self.before: dict[str, core.Answer] = {}
        for status in run.status.probes:  # what was journaled before injecting
            if status.before is not None:
                ok = status.before == core.HELD
                self.before[status.name] = core.Answer(ok=ok, detail=status.last_answer or "", at=env.clock())
        self.fault_active = True
        self.aborting: Aborting | None = None
        self.event = asyncio.Event()
        self.client = GuardedClient(endpoint_rules(env, target_ns))
        self._task: asyncio.Task[None] | None = None

    def start(self) -> Sampler:
        self._task = asyncio.create_task(self._loop(), name=f"probes {self.namespace}/{self.run.name}")
        return self

    async def _loop(self) -> None:
        interval = self.hypothesis.interval_delta.total_seconds()
        while True:
            started = asyncio.get_running_loop().time()
            answers = await check_all(self.hypothesis.probes, self.client, self.env, self.target_ns)
            for probe in self.hypothesis.probes:
                tally = self.tallies[probe.name]
                tally.record(answers[probe.name])
                ratio = tally.ratio()
                if ratio is not None:
                    PROBE_SUCCESS.labels(self.namespace, self.run.spec.experiment, probe.name).set(ratio)
                if self.fault_active and self.aborting is None and core.abort_due(probe, tally):
                    finding = core.abort_finding(probe, tally)
                    message = (
                        f"steady-state probe {probe.name} failed {tally.consecutive} consecutive checks"
                        f" (abortAfter {probe.abort_after}): {answers[probe.name].detail}"
                    )
                    self.aborting = Aborting(probe, finding, message)
                    PROBE_ABORTS.labels(fault_kind(self.run)).inc()
                    self.event.set()
            elapsed = asyncio.get_running_loop().time() - started
            await asyncio.sleep(max(0.0, interval - elapsed))

    def guard(self, stop: Stop) -> Stop:
        """`stop`, whose waits also end when a probe demands an abort (the observer then returns)."""

        async def wait(seconds: float) -> object:
            if self.event.is_set():
                return None
            waiting = asyncio.ensure_future(stop.wait(seconds))
            flagged = asyncio.ensure_future(self.event.wait())
            try:
                await asyncio.wait({waiting, flagged}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (waiting, flagged):
                    task.cancel()
            return None

        return Stop(deleted=stop.deleted, exiting=lambda: stop.exiting() or self.event.is_set(), wait=wait)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def finish(self, *, check_after: bool) -> tuple[list[ProbeStatus], list[Finding], str | None]:
        """Stop sampling; check once more when the run recovered (`check_after`); the probes'
        statuses, findings and summary for the journal."""
        await self.stop()
        after: dict[str, core.Answer] = {}
        if check_after:
            after = await check_all(self.hypothesis.probes, self.client, self.env, self.target_ns)
        await self.client.close()
        statuses = [
            self.tallies[p.name].to_status(self.before.get(p.name), after.get(p.name))
            for p in self.hypothesis.probes
        ]
        found = [self.aborting.finding] if self.aborting else []
        found += core.findings(list(self.tallies.values()), after)
        return statuses, found, core.summary(statuses, self.aborting.probe.name if self.aborting else None)
