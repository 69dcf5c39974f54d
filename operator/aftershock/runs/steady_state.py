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
import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from aftershock.api.common import Finding
from aftershock.api.run import AnalysisRecord, ChaosRun, ProbeStatus
from aftershock.api.steady_state import Probe, PrometheusQuery
from aftershock.core import analysis
from aftershock.core import probes as core
from aftershock.core.endpoints import EndpointRules
from aftershock.engines.policy_gate import Policies, parse_policies
from aftershock.metrics import PROBE_ABORTS, PROBE_SUCCESS
from aftershock.probes import http, prometheus, workload
from aftershock.probes.guard import GuardedClient
from aftershock.runs.base import RunEnv, Stop
from aftershock.runs.journal import fault_kind

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 2.0  # seconds between analysis samples when there is no hypothesis
KEEP_SAMPLES = 2000  # per analysis query: over an hour at the default interval


def endpoint_rules(env: RunEnv, target_ns: str, policies: Policies | None = None) -> EndpointRules:
    """The endpoint rules for a run: every policy's allow list, the API server's own endpoints."""
    if policies is None:
        policies = parse_policies(env.cluster().policies())
    return EndpointRules.from_policies(target_ns, policies, env.api_server)


async def check_probe(
    probe: Probe, client: GuardedClient, target_ns: str, lister: workload.Lister, now: dt.datetime
) -> core.Answer:
    """One probe's answer; kubernetes probes read workloads through `lister` (the cache, or live)."""
    try:
        if probe.http is not None:
            return await http.check(probe.http, client, now)
        if probe.prometheus is not None:
            return await prometheus.check(probe.prometheus, client, now)
        assert probe.kubernetes is not None
        return workload.check(probe.kubernetes, target_ns, lister, now)
    except Exception as exc:  # a probe's failure is an answer, never the run's crash
        log.warning("probe %s: %r", probe.name, exc)
        return core.Answer(ok=False, detail=f"probe error: {type(exc).__name__}: {exc}"[:300], at=now)


async def check_all(
    probes: Sequence[Probe], client: GuardedClient, env: RunEnv, target_ns: str
) -> dict[str, core.Answer]:
    lister, now = env.cluster().list_workloads, env.clock()
    answers = await asyncio.gather(*(check_probe(p, client, target_ns, lister, now) for p in probes))
    return {p.name: a for p, a in zip(probes, answers, strict=True)}


@dataclass
class Before:
    """What the checks before injecting found. `skip`/`error`: (reason, message) to end the run with."""

    answers: dict[str, core.Answer] = field(default_factory=dict)
    baselines: dict[str, AnalysisRecord] = field(default_factory=dict)
    skip: tuple[str, str] | None = None
    error: tuple[str, str] | None = None

    def statuses(self, run: ChaosRun) -> list[ProbeStatus]:
        probes = run.spec.steady_state.probes if run.spec.steady_state else []
        return [
            core.Tally(p.name, p.type).to_status(self.answers.get(p.name), None)
            for p in probes
            if p.name in self.answers
        ]

    def update(self, run: ChaosRun) -> dict[str, object]:
        """The status fields that record these checks (nothing when there were none)."""
        found: dict[str, object] = {}
        statuses = self.statuses(run)
        if statuses:
            found.update(probes=statuses, probe_summary=core.summary(statuses))
        if self.baselines:
            found["analysis"] = list(self.baselines.values())
        return found


async def before_injecting(env: RunEnv, run: ChaosRun, target_ns: str, policies: Policies) -> Before:
    """The gate, then the hypothesis: both must hold for the run to inject anything."""
    spec = run.spec
    result = Before()
    if spec.gate is None and spec.steady_state is None and spec.analysis is None:
        return result
    client = GuardedClient(endpoint_rules(env, target_ns, policies))
    try:
        for name, source in (spec.analysis.sources() if spec.analysis else {}).items():
            value, error, was_refused = await prometheus.read(source, client)
            if was_refused:
                result.error = (core.REFUSED_REASON, f"analysis {name}: {error}; nothing was injected")
                return result
            result.baselines[name] = AnalysisRecord(name=name, baseline=value, error=error)
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
        self.env = env
        self.run = run
        self.namespace = namespace
        self.target_ns = target_ns
        self.probes = list(run.spec.steady_state.probes) if run.spec.steady_state else []
        self.interval = (
            run.spec.steady_state.interval_delta.total_seconds()
            if run.spec.steady_state
            else DEFAULT_INTERVAL
        )
        self.tallies = {p.name: core.Tally(p.name, p.type) for p in self.probes}
        self.sources = run.spec.analysis.sources() if run.spec.analysis else {}
        self.series: dict[str, list[analysis.Sample]] = {name: [] for name in self.sources}
        self.errors: dict[str, str] = {}
        self.baselines = {r.name: r for r in run.status.analysis}
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
        while True:
            started = asyncio.get_running_loop().time()
            answers, _ = await asyncio.gather(
                check_all(self.probes, self.client, self.env, self.target_ns), self._sample_analysis()
            )
            for probe in self.probes:
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
            await asyncio.sleep(max(0.0, self.interval - elapsed))

    async def _sample_analysis(self) -> None:
        async def one(name: str) -> None:
            value, error, _refused = await prometheus.read(self.sources[name], self.client)
            if value is None:
                self.errors[name] = error or "no data"
                return
            samples = self.series[name]
            samples.append((self.env.clock(), value))
            del samples[:-KEEP_SAMPLES]

        await asyncio.gather(*(one(name) for name in self.sources))

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

    async def close(self) -> None:
        """Stop sampling and release the connections (idempotent)."""
        await self.stop()
        await self.client.close()

    async def finish(self, *, check_after: bool) -> tuple[dict[str, object], list[Finding]]:
        """Stop sampling; check the probes once more when the run recovered (`check_after`); the
        status fields (probes, summary, analysis) and the findings for the journal."""
        await self.stop()
        after: dict[str, core.Answer] = {}
        if check_after and self.probes:
            after = await check_all(self.probes, self.client, self.env, self.target_ns)
        await self.client.close()
        update: dict[str, object] = {}
        found = [self.aborting.finding] if self.aborting else []
        if self.probes:
            statuses = [
                self.tallies[p.name].to_status(self.before.get(p.name), after.get(p.name))
                for p in self.probes
            ]
            found += core.findings(list(self.tallies.values()), after)
            update["probes"] = statuses
            update["probe_summary"] = core.summary(
                statuses, self.aborting.probe.name if self.aborting else None
            )
        if self.run.spec.analysis is not None:
            records, analysed = self._analysis()
            update["analysis"] = records
            found += analysed
        return update, found

    def _analysis(self) -> tuple[list[AnalysisRecord], list[Finding]]:
        assert self.run.spec.analysis is not None
        series = {
            name: analysis.Series(self.baselines[name].baseline if name in self.baselines else None, samples)
            for name, samples in self.series.items()
        }
        found, measured = analysis.judge(self.run.spec.analysis, series)
        titles = {
            "retryStorm": "Retry storm",
            "backpressure": "No backpressure",
            "latency": "Missing timeouts",
        }
        records = []
        for name, one in series.items():
            peak = one.peak()
            earlier = self.baselines.get(name)
            error = self.errors.get(name) if not one.samples else None
            records.append(
                AnalysisRecord(
                    name=name,
                    baseline=one.baseline,
                    peak=peak[1] if peak else None,
                    peak_time=peak[0] if peak else None,
                    samples=len(one.samples),
                    amplification=measured.get("amplification") if name == "retryStorm" else None,
                    finding=next((f.title for f in found if f.title == titles[name]), None),
                    error=error or (earlier.error if earlier else None),
                )
            )
        return records, found
