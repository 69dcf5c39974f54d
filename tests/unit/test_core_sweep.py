from __future__ import annotations

import datetime as dt

from aftershock.core.sweep import Artifact, RunFacts, to_remove

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


def _np(uid: str) -> Artifact:
    return Artifact("NetworkPolicy", "shop", f"aftershock-{uid}", uid)


def test_orphans_finished_and_overdue_artifacts_are_removed_with_reasons() -> None:
    runs = {
        "live": RunFacts("Observing", NOW + dt.timedelta(minutes=1)),
        "done": RunFacts("Completed", NOW - dt.timedelta(minutes=1)),
        "late": RunFacts("Observing", NOW - dt.timedelta(seconds=30)),
        "fresh": RunFacts(None, None),
    }
    removals = to_remove([_np("live"), _np("done"), _np("late"), _np("gone"), _np("fresh")], runs, NOW)
    reasons = {r.artifact.run_uid: r.reason for r in removals}
    assert set(reasons) == {"done", "late", "gone"}
    assert "no longer exists" in reasons["gone"]
    assert "Completed" in reasons["done"]
    assert "past its deadline" in reasons["late"]


def test_grace_keeps_a_run_that_is_only_just_late() -> None:
    runs = {"late": RunFacts("Reverting", NOW - dt.timedelta(seconds=5))}
    assert to_remove([_np("late")], runs, NOW, grace_seconds=10) == []
    assert len(to_remove([_np("late")], runs, NOW, grace_seconds=1)) == 1


def test_a_scoped_operator_sweeps_only_artifacts_of_runs_in_its_namespaces() -> None:
    ours_gone = Artifact("NetworkPolicy", "shop", "a", "gone-1", run_namespace="shop")
    foreign = Artifact("NetworkPolicy", "shop", "b", "gone-2", run_namespace="payments")
    unlabelled = Artifact("PodLabel", "shop", "pod-1", "gone-3")
    removals = to_remove([ours_gone, foreign, unlabelled], {}, NOW, scope=("shop", "web"))
    assert [r.artifact for r in removals] == [ours_gone]
    # cluster-wide, every run is known: all three are orphans
    assert len(to_remove([ours_gone, foreign, unlabelled], {}, NOW)) == 3
