"""The guardrail monitor (runs/guardrails.py): which runs it judges, what it records, when it
wakes the runs, and that a read it could not make decides nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from aftershock.cluster.io import Io
from aftershock.cluster.store import NotSynced
from aftershock.runs.guardrails import GuardrailMonitor, Revocations, judge, subject_of
from aftershock.runs.namespaces import NamespaceLabels

NOW = dt.datetime(2026, 6, 3, 12, 0, tzinfo=dt.UTC)
ME = "operator-a"
OPT_IN = {"aftershock.dev/chaos": "enabled"}


def run(
    name: str,
    *,
    namespace: str = "shop",
    phase: str = "Observing",
    claimed_by: str | None = ME,
    target_namespace: str | None = None,
    fault: dict[str, Any] | None = None,
    timeout: str = "60s",
) -> dict[str, Any]:
    target: dict[str, Any] = {
        "kind": "Deployment",
        "selector": {"matchLabels": {"app": "web"}},
        "mode": "one",
    }
    if target_namespace:
        target["namespace"] = target_namespace
    status: dict[str, Any] = {"phase": phase}
    if claimed_by:
        status["claimedBy"] = claimed_by
    return {
        "apiVersion": "aftershock.dev/v1alpha1",
        "kind": "ChaosRun",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"},
        "spec": {
            "experiment": "exp",
            "scheduledTime": "2026-06-03T11:59:00Z",
            "target": target,
            "fault": fault or {"duration": "10m", "networkPartition": {}},
            "recovery": {"objective": "30s", "timeout": timeout},
        },
        "status": status,
    }


def policy(name: str = "default", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": spec}


class View:
    def __init__(self, runs: list[dict[str, Any]], policies: list[dict[str, Any]]) -> None:
        self.runs = runs
        self.policy_objs = policies
        self.synced = True

    def active_runs(self) -> list[dict[str, Any]]:
        if not self.synced:
            raise NotSynced("ChaosRun")
        return list(self.runs)

    def policies(self) -> list[dict[str, Any]]:
        return sorted(self.policy_objs, key=lambda p: p["metadata"]["name"])


class Namespaces:
    """A Kube stand-in for the one read the monitor makes (GET namespace)."""

    def __init__(self, labels: dict[str, dict[str, str] | None]) -> None:
        self.labels = labels
        self.broken: set[str] = set()
        self.reads: list[str] = []

    def find_namespace_labels(self, name: str) -> dict[str, str] | None:
        self.reads.append(name)
        if name in self.broken:
            raise ConnectionError(f"cannot reach the API server for {name}")
        found = self.labels.get(name)
        return None if found is None else dict(found)


@pytest.fixture
def io() -> Any:
    pool = ThreadPoolExecutor(max_workers=2)
    yield Io(pool)
    pool.shutdown()


def monitor(view: View, namespaces: Namespaces, io: Io, woken: list[int]) -> GuardrailMonitor:
    return GuardrailMonitor(
        view=view,
        kube=namespaces,  # type: ignore[arg-type]
        io=io,
        namespace_labels=NamespaceLabels(fresh_seconds=0),
        identity=ME,
        operator_namespace="aftershock-system",
        wake=lambda: woken.append(1),
        clock=lambda: NOW,
    )


# --- subject_of: which runs are ours to judge --------------------------------------------------------


def test_subject_of_a_claimed_active_run() -> None:
    subject = subject_of(run("r1", target_namespace="shop"), ME)
    assert subject is not None
    assert subject.key == ("shop", "r1")
    assert subject.target_namespace == "shop"
    assert subject.fault_kind == "networkPartition"
    assert subject.fault_duration == dt.timedelta(minutes=10)
    assert subject.recovery_timeout == dt.timedelta(seconds=60)


def test_subject_of_defaults_the_target_namespace_to_the_runs_own() -> None:
    subject = subject_of(run("r1", namespace="team"), ME)
    assert subject is not None and subject.target_namespace == "team"


@pytest.mark.parametrize(
    "body",
    [
        run("other", claimed_by="operator-b"),
        run("unclaimed", claimed_by=None),
        run("reverting", phase="Reverting"),
        run("pending", phase="Pending"),
        run("done", phase="Completed"),
        run("one-shot", fault={"podDelete": {"gracePeriodSeconds": 0}}),
        run("unknown", fault={"duration": "1m", "noSuchFault": {}}),
    ],
    ids=["other-operator", "unclaimed", "reverting", "pending", "terminal", "pod-delete", "unknown-kind"],
)
def test_subject_of_skips_runs_that_are_not_ours_or_hold_no_fault(body: dict[str, Any]) -> None:
    assert subject_of(body, ME) is None


def test_judge_says_why_in_a_sentence() -> None:
    from aftershock.engines.policy_gate import parse_policies

    subject = subject_of(run("r1"), ME)
    assert subject is not None
    policies = parse_policies([policy()])
    assert judge(subject, policies, OPT_IN, operator_namespace=None, moment=NOW) is None
    why = judge(subject, policies, {}, operator_namespace=None, moment=NOW)
    assert why is not None
    assert "NamespaceNotSelected" in why and "'shop'" in why and "ChaosPolicy default" in why


# --- Revocations: the bookkeeping ---------------------------------------------------------------------


def test_revocations_record_new_ones_once_and_stick() -> None:
    book = Revocations()
    a, b = ("shop", "a"), ("shop", "b")
    assert book.record([a, b], {a: "gone", b: None}) == [a]
    assert book.get("shop", "a") == "gone" and book.get("shop", "b") is None
    # judged fine again (the label came back): a revocation is not taken back mid-abort
    assert book.record([a, b], {a: None, b: None}) == []
    assert book.get("shop", "a") == "gone"
    # the same reason again is not new
    assert book.record([a, b], {a: "gone again"}) == []
    assert book.get("shop", "a") == "gone"


def test_revocations_forget_runs_that_are_no_longer_active() -> None:
    book = Revocations()
    a = ("shop", "a")
    book.record([a], {a: "gone"})
    assert book.record([], {}) == []
    assert book.get("shop", "a") is None and len(book) == 0


def test_revocations_ignore_verdicts_on_runs_not_active() -> None:
    book = Revocations()
    assert book.record([], {("shop", "a"): "gone"}) == []
    assert len(book) == 0


# --- the monitor ----------------------------------------------------------------------------------------


def test_a_round_revokes_what_no_longer_holds_and_wakes_the_runs(io: Io) -> None:
    view = View(
        [
            run("kept", namespace="shop"),
            run("opted-out", namespace="blog"),
            run("denied", namespace="wiki"),
            run("not-mine", namespace="blog", claimed_by="operator-b"),
        ],
        [policy(namespaces={"deny": ["wiki"]})],
    )
    namespaces = Namespaces({"shop": OPT_IN, "blog": {}, "wiki": OPT_IN})
    woken: list[int] = []
    guard = monitor(view, namespaces, io, woken)
    added = asyncio.run(guard.check())
    assert sorted(added) == [("blog", "opted-out"), ("wiki", "denied")]
    assert guard.revoked("shop", "kept") is None
    assert "NamespaceNotSelected" in (guard.revoked("blog", "opted-out") or "")
    assert "NamespaceDenied" in (guard.revoked("wiki", "denied") or "")
    assert guard.revoked("blog", "not-mine") is None
    assert woken == [1]
    # one read per target namespace, however many runs target it
    assert sorted(namespaces.reads) == ["blog", "shop", "wiki"]
    # nothing new: nobody is woken again
    assert asyncio.run(guard.check()) == []
    assert woken == [1]


def test_every_policy_deleted_revokes_every_run(io: Io) -> None:
    view = View([run("a"), run("b", namespace="blog")], [policy()])
    guard = monitor(view, Namespaces({"shop": OPT_IN, "blog": OPT_IN}), io, [])
    assert asyncio.run(guard.check()) == []
    view.policy_objs = []
    assert sorted(asyncio.run(guard.check())) == [("blog", "b"), ("shop", "a")]
    assert "NoChaosPolicy" in (guard.revoked("shop", "a") or "")


def test_a_closed_window_a_blackout_and_a_lowered_max_duration_revoke(io: Io) -> None:
    namespaces = Namespaces({"shop": OPT_IN})
    cases = {
        "OutsideWindow": policy(windows=[{"start": "08:00", "end": "09:00"}]),
        "Blackout": policy(blackouts=[{"start": "2026-06-03T11:00:00Z", "end": "2026-06-03T13:00:00Z"}]),
        "DurationExceeded": policy(maxDuration="5m"),
        "FaultNotAllowed": policy(allowedFaults=["podDelete"]),
    }
    for reason, changed in cases.items():
        guard = monitor(View([run("a")], [changed]), namespaces, io, [])
        assert asyncio.run(guard.check()) == [("shop", "a")], reason
        assert reason in (guard.revoked("shop", "a") or ""), reason


def test_a_deleted_namespace_revokes(io: Io) -> None:
    guard = monitor(View([run("a", namespace="gone")], [policy()]), Namespaces({}), io, [])
    assert asyncio.run(guard.check()) == [("gone", "a")]
    assert "TargetNamespaceGone" in (guard.revoked("gone", "a") or "")


def test_an_unreadable_namespace_decides_nothing(io: Io) -> None:
    view = View([run("a"), run("b", namespace="blog")], [policy()])
    namespaces = Namespaces({"shop": {}, "blog": {}})
    namespaces.broken = {"shop"}
    guard = monitor(view, namespaces, io, [])
    # blog was read (and is opted out); shop could not be: no verdict on its run either way
    assert asyncio.run(guard.check()) == [("blog", "b")]
    assert guard.revoked("shop", "a") is None
    namespaces.broken = set()
    assert asyncio.run(guard.check()) == [("shop", "a")]


def test_an_unsynced_cache_decides_nothing(io: Io) -> None:
    view = View([run("a")], [])
    view.synced = False
    guard = monitor(view, Namespaces({"shop": OPT_IN}), io, [])
    assert asyncio.run(guard.check()) == []
    assert guard.revoked("shop", "a") is None


def test_a_finished_run_is_forgotten(io: Io) -> None:
    view = View([run("a")], [])
    guard = monitor(view, Namespaces({"shop": OPT_IN}), io, [])
    asyncio.run(guard.check())
    assert guard.revoked("shop", "a") is not None
    view.runs = []
    asyncio.run(guard.check())
    assert guard.revoked("shop", "a") is None


def test_the_loop_runs_a_round_at_once_when_poked_and_not_on_its_own_wake(io: Io) -> None:
    view = View([run("a")], [policy()])
    namespaces = Namespaces({"shop": OPT_IN})
    woken: list[int] = []
    guard = monitor(view, namespaces, io, woken)
    guard.interval = 3600.0  # only a poke can start a second round
    guard.wake = lambda: (woken.append(1), guard.poke())  # as WATCH.notify calls the monitor's listener

    async def scenario() -> None:
        task = asyncio.create_task(guard.run())
        try:
            await wait_until(lambda: len(namespaces.reads) == 1)
            view.policy_objs = []  # every ChaosPolicy deleted
            guard.poke()
            await wait_until(lambda: guard.revoked("shop", "a") is not None)
            assert woken == [1]
            await asyncio.sleep(0.2)
            # the monitor's own wake did not start another round
            assert len(namespaces.reads) == 2
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(scenario())


def test_poke_before_the_loop_starts_is_harmless(io: Io) -> None:
    guard = monitor(View([], []), Namespaces({}), io, [])
    guard.poke()


async def wait_until(condition: Any, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout
    while not condition():
        assert loop.time() < give_up, "condition not met in time"
        await asyncio.sleep(0.01)
