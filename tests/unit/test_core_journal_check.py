"""A run's status is a claim, not an order: the checks that decide whether it may be acted on."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from aftershock.api.run import TargetRecord
from aftershock.core.journal_check import Expected, deadline_grace, journal_problem, longest_run

NOW = dt.datetime(2026, 11, 28, 12, 0, 0, tzinfo=dt.UTC)
START = NOW - dt.timedelta(seconds=30)
LONGEST = dt.timedelta(minutes=3)
BASE = Expected(
    target_namespace="team",
    unit="Pod",
    now=NOW,
    created=START - dt.timedelta(seconds=2),
    longest=LONGEST,
    allowed_count=2,
    live_pods={"u1": "app-1", "u2": "app-2", "u3": "app-3"},
)


def pod(name: str, uid: str, namespace: str = "team", injected: dt.datetime | None = None) -> TargetRecord:
    return TargetRecord(kind="Pod", name=name, namespace=namespace, uid=uid, injected_at=injected)


def test_what_the_operator_itself_writes_checks_out() -> None:
    records = [pod("app-1", "u1"), pod("app-2", "u2", injected=NOW - dt.timedelta(seconds=10))]
    assert journal_problem(records, START, START + LONGEST, BASE) is None
    assert journal_problem([], None, None, BASE) is None  # Pending: nothing recorded yet


@pytest.mark.parametrize(
    ("records", "start", "deadline", "expected", "problem"),
    [
        ([pod("victim", "v1", namespace="other")], START, None, BASE, "outside the run's target namespace"),
        ([pod("db-0", "d1")], START, None, BASE, "is not a live pod the run's selector matches"),
        ([pod("app-1", "u2")], START, None, BASE, "is not a live pod"),  # a live name with another's uid
        ([pod("app-1", "u1"), pod("app-2", "u2"), pod("app-3", "u3")], START, None, BASE, "at most 2"),
        ([pod("app-1", "u1"), pod("app-1", "u1")], START, None, BASE, "recorded twice"),
        ([TargetRecord(kind="Node", name="n1")], START, None, BASE, "not a Pod"),
        ([pod("app-1", "u1")], None, None, BASE, "without a start time"),
        ([pod("app-1", "u1")], NOW + dt.timedelta(hours=1), None, BASE, "outside the run's life"),
        ([pod("app-1", "u1")], START - dt.timedelta(days=1), None, BASE, "outside the run's life"),
        ([pod("app-1", "u1")], START, START + dt.timedelta(days=30), BASE, "later than the spec allows"),
        (
            [pod("app-1", "u1", injected=NOW + dt.timedelta(days=1))],
            START,
            None,
            BASE,
            "outside the run's own time",
        ),
        (
            [TargetRecord(kind="Node", name="control-plane")],
            START,
            None,
            dataclasses.replace(BASE, unit="Node", live_nodes=frozenset({"kwok-1"})),
            "runs none of the pods",
        ),
        (
            [TargetRecord(kind="Node", name="kwok-1", namespace="team")],
            START,
            None,
            dataclasses.replace(BASE, unit="Node", live_nodes=frozenset({"kwok-1"})),
            "a node has no namespace",
        ),
    ],
    ids=[
        "other-namespace",
        "pod-not-selected",
        "uid-of-another-pod",
        "more-than-the-mode-yields",
        "duplicate",
        "wrong-kind",
        "no-start-time",
        "start-in-the-future",
        "start-before-the-run-existed",
        "deadline-stretched",
        "injected-in-the-future",
        "node-not-hosting-targets",
        "node-with-namespace",
    ],
)
def test_a_forged_journal_is_rejected_with_a_reason(
    records: list[TargetRecord],
    start: dt.datetime | None,
    deadline: dt.datetime | None,
    expected: Expected,
    problem: str,
) -> None:
    found = journal_problem(records, start, deadline, expected)
    assert found is not None and problem in found, found


def test_injected_targets_need_not_be_live_and_later_phases_skip_the_cluster_checks() -> None:
    gone = pod("app-9", "u9", injected=NOW - dt.timedelta(seconds=5))  # deleted: that was the fault
    assert journal_problem([gone], START, None, BASE) is None
    later = dataclasses.replace(BASE, allowed_count=None, live_pods=None)
    assert journal_problem([pod("anything", "x")], START, None, later) is None
    assert journal_problem([pod("anything", "x", namespace="other")], START, None, later) is not None


def test_the_deadline_bound_is_the_one_the_operator_computes() -> None:
    held, timeout = dt.timedelta(minutes=1), dt.timedelta(seconds=30)
    assert deadline_grace(timeout) == dt.timedelta(seconds=15)
    assert deadline_grace(dt.timedelta(hours=1)) == dt.timedelta(minutes=1)
    assert deadline_grace(dt.timedelta(seconds=2)) == dt.timedelta(seconds=5)
    assert longest_run(held, timeout, 60.0) == held + timeout + dt.timedelta(seconds=15 + 60)
