"""core/budget.py: shared budgets decided one run at a time, against the other runs' claims."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from aftershock.api.policy import ChaosPolicySpec
from aftershock.core import budget
from aftershock.core.budget import ActiveRun, Candidate, Claim, Request, RunState, WorkloadShare
from aftershock.core.policy import PdbInfo

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def policies(**spec: object) -> list[tuple[str, ChaosPolicySpec]]:
    base: dict[str, object] = {
        "blastRadius": {"maxPodsPercent": 100},
        "concurrency": {"maxActiveRuns": 100, "maxActiveRunsPerNamespace": 100},
        "respectDisruptionBudgets": True,
    }
    base.update(spec)
    return [("guard", ChaosPolicySpec.model_validate(base))]


def claim(
    name: str, *, target: str = "shop", holder: str = "op-a", age: float = 1, **counts: object
) -> Claim:
    return Claim(
        namespace="shop",
        name=name,
        uid=f"uid-{name}",
        holder=holder,
        target_namespace=target,
        claimed_at=NOW - dt.timedelta(seconds=age),
        expires=NOW + dt.timedelta(minutes=5),
        workloads=dict(counts.get("workloads") or {}),  # type: ignore[call-overload]
        pdbs=dict(counts.get("pdbs") or {}),  # type: ignore[call-overload]
    )


WEB = WorkloadShare("w-web", "Deployment shop/web", 4)
PODS = [Candidate(f"web-{i}", "w-web") for i in range(4)]


def request(
    name: str = "me",
    chosen: list[Candidate] | None = None,
    *,
    candidates: list[Candidate] | None = None,
    workloads: list[WorkloadShare] | None = None,
    pdbs: list[PdbInfo] | None = None,
) -> Request:
    return Request(
        claim=claim(name),
        chosen=chosen if chosen is not None else PODS[:1],
        candidates=candidates if candidates is not None else PODS,
        workloads=workloads or [WEB],
        pdbs=pdbs or [],
    )


def test_a_claim_round_trips_through_the_ledger_text() -> None:
    original = claim("a", workloads={"w-web": 2}, pdbs={"shop/web": 1})
    assert budget.load(budget.dump([original])) == [original]


def test_a_malformed_ledger_or_entry_is_dropped_not_fatal() -> None:
    good = claim("a")
    text = budget.dump([good])[:-1] + ',{"run":"x"}]'
    assert budget.load(text) == [good]
    assert budget.load("not json") == []
    assert budget.load(None) == []
    assert budget.load('{"run": "x"}') == []


@pytest.mark.parametrize(
    ("state", "age", "kept"),
    [
        (RunState.ACTIVE, 1, True),
        (RunState.ACTIVE, 3600, True),  # active runs hold their claim as long as they are active
        (RunState.ENDED, 1, False),
        (RunState.PENDING, 1, True),  # claimed a moment ago: the Injecting write is on its way
        (RunState.PENDING, 60, False),  # the claimant died before journaling
        (RunState.GONE, 1, True),  # a lagging cache must not lose a fresh claim
        (RunState.GONE, 60, False),
        (RunState.UNSEEN, 3600, True),  # another operator's scope: kept until it expires
    ],
)
def test_prune_keeps_only_claims_that_still_hold_budget(state: RunState, age: float, kept: bool) -> None:
    c = claim("a", age=age)
    assert (budget.prune([c], lambda _: state, NOW) == [c]) is kept


def test_prune_drops_expired_claims_whatever_the_cache_says() -> None:
    c = dataclasses.replace(claim("a"), expires=NOW)
    assert budget.prune([c], lambda _: RunState.ACTIVE, NOW) == []


def test_concurrency_counts_claims_and_active_runs_once_each() -> None:
    limit = policies(concurrency={"maxActiveRuns": 2, "maxActiveRunsPerNamespace": 2})
    one = claim("a")
    # the same run in the ledger and in the cache counts once: one more may start
    grant = budget.decide(limit, [one], [ActiveRun(one.uid, "shop")], request())
    assert grant.allowed
    # a claim not yet visible as active in the cache still counts (the race this closes)
    grant = budget.decide(limit, [one, claim("b")], [], request())
    assert not grant.allowed and grant.decision.reason == "ConcurrencyLimit"
    assert "2 are active" in grant.decision.message


def test_the_run_itself_is_never_counted_against_itself() -> None:
    limit = policies(concurrency={"maxActiveRuns": 1, "maxActiveRunsPerNamespace": 1})
    mine_elsewhere = dataclasses.replace(claim("me"), holder="op-b")  # a racing replica's claim of it
    assert budget.decide(limit, [mine_elsewhere], [ActiveRun("uid-me", "shop")], request()).allowed


def test_per_namespace_concurrency_counts_only_that_target_namespace() -> None:
    limit = policies(concurrency={"maxActiveRuns": 10, "maxActiveRunsPerNamespace": 1})
    assert budget.decide(limit, [claim("a", target="other")], [], request()).allowed
    refused = budget.decide(limit, [claim("a")], [], request())
    assert not refused.allowed and "namespace 'shop'" in refused.decision.message


def test_blast_radius_is_cumulative_per_workload() -> None:
    half = policies(blastRadius={"maxPodsPercent": 50})  # 2 of web's 4 pods at once
    held = claim("a", workloads={"w-web": 1})
    grant = budget.decide(half, [held], [], request())
    assert grant.allowed and grant.kept == ("web-0",)
    assert grant.claim is not None and grant.claim.workloads == {"w-web": 1}
    full = budget.decide(half, [held, claim("b", workloads={"w-web": 1})], [], request())
    assert not full.allowed and full.decision.reason == "BlastRadiusExceeded"
    assert (
        "Deployment shop/web" in full.decision.message
        and "2 held by other active runs" in full.decision.message
    )


def test_a_selection_spanning_workloads_is_capped_per_workload() -> None:
    small = WorkloadShare("w-db", "Deployment shop/db", 2)
    db = [Candidate("db-0", "w-db"), Candidate("db-1", "w-db")]
    half = policies(blastRadius={"maxPodsPercent": 50})
    # 3 of 6 over the union is within 50 %, but 2 of db's 2 is not: one db pod is swapped for web
    grant = budget.decide(
        half, [], [], request(chosen=[*db, PODS[0]], candidates=[*db, *PODS], workloads=[small, WEB])
    )
    assert grant.allowed
    assert sorted(grant.kept) == ["db-0", "web-0", "web-1"]
    assert grant.claim is not None and grant.claim.workloads == {"w-db": 1, "w-web": 2}


def test_a_selection_that_cannot_be_spread_is_refused_not_shrunk() -> None:
    half = policies(blastRadius={"maxPodsPercent": 50})
    grant = budget.decide(half, [claim("a", workloads={"w-web": 1})], [], request(chosen=PODS[:2]))
    assert not grant.allowed and grant.decision.reason == "BlastRadiusExceeded"
    assert "1 left" in grant.decision.message


def test_the_union_cap_of_one_run_still_applies() -> None:
    two = policies(blastRadius={"maxPodsPercent": 100, "maxPods": 2})
    grant = budget.decide(two, [], [], request(chosen=PODS[:3]))
    assert not grant.allowed and "maxPods is 2" in grant.decision.message


def test_pdb_allowance_is_shared_between_claims() -> None:
    pdb = PdbInfo("web", 1, frozenset(p.name for p in PODS))
    first = budget.decide(policies(), [], [], request(pdbs=[pdb]))
    assert first.allowed and first.claim is not None and first.claim.pdbs == {"shop/web": 1}
    second = budget.decide(policies(), [first.claim], [], request("other", chosen=PODS[1:2], pdbs=[pdb]))
    assert not second.allowed and second.decision.reason == "DisruptionBudget"
    assert "PodDisruptionBudget web" in second.decision.message
    assert "other active runs hold" in second.decision.message


def test_pdb_spares_pods_beyond_its_allowance_and_says_so() -> None:
    pdb = PdbInfo("web", 2, frozenset(p.name for p in PODS))
    grant = budget.decide(
        policies(), [claim("a", pdbs={"shop/web": 1})], [], request(chosen=PODS, pdbs=[pdb])
    )
    assert grant.allowed and len(grant.kept) == 1
    assert grant.notes and "3 of the 4 chosen pods were spared" in grant.notes[0]


def test_pdbs_are_ignored_when_no_policy_asks_for_them() -> None:
    pdb = PdbInfo("web", 0, frozenset(p.name for p in PODS))
    lax = policies(respectDisruptionBudgets=False)
    req = dataclasses.replace(request(pdbs=[pdb]), respect_pdbs=False)
    assert budget.decide(lax, [], [], req).allowed


def test_check_shares_refuses_only_what_no_spread_fits() -> None:
    half = policies(blastRadius={"maxPodsPercent": 50})
    small = WorkloadShare("w-db", "Deployment shop/db", 1)  # 50 % of 1 is 0: never hit
    assert budget.check_shares(half, [WEB, small], 2).allowed
    refused = budget.check_shares(half, [WEB, small], 3)
    assert not refused.allowed and "at most 2 together" in refused.message
    assert "Deployment shop/db" in refused.message and "ChaosPolicy guard" in refused.message


def test_a_run_claimed_by_two_racing_replicas_counts_once() -> None:
    half = policies(blastRadius={"maxPodsPercent": 50})
    racing = [claim("a", workloads={"w-web": 1}), claim("a", holder="op-b", workloads={"w-web": 1})]
    assert budget.held_pods(racing) == {"w-web": 1}
    assert budget.decide(half, racing, [], request()).allowed


def test_a_batch_keeps_the_budget_as_if_one_after_another() -> None:
    limit = policies(concurrency={"maxActiveRuns": 3, "maxActiveRunsPerNamespace": 3})
    asks = [(limit, request(name)) for name in ("r1", "r2", "r3", "r4")]
    grants, written = budget.decide_batch([claim("a")], [], asks)
    # one slot held already: two more fit, whatever the batch holds
    assert [g.allowed for g in grants] == [True, True, False, False]
    assert all(g.decision.reason == "ConcurrencyLimit" for g in grants[2:])
    assert [c.name for c in written] == ["a", "r1", "r2"]
    # the same answers as deciding them one after another
    held = [claim("a")]
    for (pol, req), grant in zip(asks, grants, strict=True):
        alone = budget.decide(pol, held, [], req)
        assert alone == grant
        if alone.claim is not None:
            held.append(alone.claim)


def test_a_batch_is_decided_in_arrival_order() -> None:
    half = policies(blastRadius={"maxPodsPercent": 50})  # 2 of web's 4 pods at once
    names = ["late", "early", "middle"]
    grants, written = budget.decide_batch([], [], [(half, request(n)) for n in names])
    assert [g.allowed for g in grants] == [True, True, False]
    assert [c.name for c in written] == ["late", "early"]
    assert grants[2].decision.reason == "BlastRadiusExceeded"
    assert "2 held by other active runs" in grants[2].decision.message


def test_a_refusal_in_the_middle_of_a_batch_holds_nothing() -> None:
    half = policies(blastRadius={"maxPodsPercent": 50})
    greedy = request("greedy", chosen=PODS[:3])  # 3 of 4 is over the run's own cap: refused
    asks = [(half, request("first")), (half, greedy), (half, request("third", chosen=PODS[1:2]))]
    grants, written = budget.decide_batch([], [], asks)
    assert [g.allowed for g in grants] == [True, False, True]
    assert [c.name for c in written] == ["first", "third"]
    assert sum(c.workloads["w-web"] for c in written) == 2


def test_a_batch_shares_pdb_allowance_and_per_request_policies() -> None:
    pdb = PdbInfo("web", 1, frozenset(p.name for p in PODS))
    lax = dataclasses.replace(request("lax", chosen=PODS[2:3], pdbs=[pdb]), respect_pdbs=False)
    asks = [
        (policies(), request("one", pdbs=[pdb])),
        (policies(), request("two", chosen=PODS[1:2], pdbs=[pdb])),
        (policies(respectDisruptionBudgets=False), lax),
    ]
    grants, written = budget.decide_batch([], [], asks)
    assert [g.allowed for g in grants] == [True, False, True]
    assert grants[1].decision.reason == "DisruptionBudget"
    assert [c.name for c in written] == ["one", "lax"]


def test_a_batch_replaces_the_holders_own_earlier_claim_of_a_run() -> None:
    stale = claim("me", workloads={"w-web": 3})  # this holder's earlier claim of the same run
    other = dataclasses.replace(claim("me"), holder="op-b")  # a racing replica's: kept
    grants, written = budget.decide_batch([stale, other], [], [(policies(), request("me"))])
    assert grants[0].allowed
    assert [(c.holder, dict(c.workloads)) for c in written] == [("op-b", {}), ("op-a", {"w-web": 1})]


def test_released_drops_the_runs_claims_of_that_holder_or_of_any() -> None:
    mine, theirs, rest = claim("a"), dataclasses.replace(claim("a"), holder="op-b"), claim("b")
    assert budget.released([mine, theirs, rest], [("uid-a", "op-a")]) == [theirs, rest]
    assert budget.released([mine, theirs, rest], [("uid-a", None)]) == [rest]
    assert budget.released([mine, rest], [("uid-a", None), ("uid-b", "op-a")]) == []
    assert budget.released([mine], []) == [mine]


def test_a_pod_another_run_holds_is_never_chosen_again() -> None:
    """Two runs deleting one pod would count it twice and leave the second with nothing to do."""
    held = dataclasses.replace(claim("a", workloads={"w-web": 1}), pods=("web-0",))
    grant = budget.decide(policies(), [held], [], request(chosen=[PODS[0]]))
    assert grant.allowed and grant.kept == ("web-1",), grant
    assert grant.claim is not None and grant.claim.pods == ("web-1",)
    elsewhere = dataclasses.replace(held, target_namespace="other")  # another namespace's web-0
    assert budget.decide(policies(), [elsewhere], [], request(chosen=[PODS[0]])).kept == ("web-0",)
    every = dataclasses.replace(held, pods=tuple(p.name for p in PODS))
    refused = budget.decide(policies(), [every], [], request(chosen=[PODS[0]]))
    assert not refused.allowed and refused.decision.reason == "BlastRadiusExceeded"
    assert budget.Claim.from_json(held.to_json()) == held
