"""Shared budgets decided one run at a time: concurrency, per-workload blast radius and
PodDisruptionBudgets, counting what the other active runs have already claimed.

Runs released together (a burst of slots, two operator replicas) all read the same watch-fed
cache before anyone's Injecting write arrives there, so deciding on the cache alone lets them
exceed together what each would be refused one after another. The fix is a ledger of claims
(runs/ledger.py keeps it in one Lease, written under a resourceVersion precondition): a run
reads the ledger, prunes the claims of runs that are over, decides here against the rest, and
writes its own claim back; a concurrent writer gets a 409, re-reads and decides again. So every
decision sees every earlier one — serialisable, across processes. Runs of one process that wait
for the ledger together are decided in one batch (`decide_batch`), still one after another, and
written in one replace.

What a claim holds is what the budgets need: the run (and its uid), the target namespace, how
many pods of each workload it hits and how many disruptions it charges to each
PodDisruptionBudget. The blast radius is per workload and cumulative: the pods of one workload hit
at once by every active run together stay within that workload's cap. A PDB's
`disruptionsAllowed` is reduced by the other claims' charges — conservative (a replaced pod may
already be counted by the disruption controller), never optimistic.

Everything here is pure; runs/ledger.py does the I/O.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from aftershock.core import policy as core_policy
from aftershock.core.policy import Decision, PdbInfo, Policies

log = logging.getLogger(__name__)

GRACE = dt.timedelta(seconds=30)
"""How long a claim whose run is not (yet) seen active is kept: between the claim and the
Injecting write, and for caches that have not seen a brand-new run yet."""

CLAIM_CONTENTION = "ClaimContention"
DISRUPTION_BUDGET = "DisruptionBudget"


@dataclass(frozen=True)
class Claim:
    """One run's share of the budgets, held while the run is active."""

    namespace: str
    name: str
    uid: str
    holder: str  # the operator identity that wrote it
    target_namespace: str
    claimed_at: dt.datetime
    expires: dt.datetime  # the run's longest possible life: pruned after it whatever anyone knows
    workloads: Mapping[str, int] = field(default_factory=dict)  # workload uid → pods hit
    pdbs: Mapping[str, int] = field(default_factory=dict)  # "namespace/name" → disruptions charged
    pods: tuple[str, ...] = ()  # the pods it hits (in target_namespace): never another run's too

    @property
    def run(self) -> str:
        return f"{self.namespace}/{self.name}"

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "uid": self.uid,
            "holder": self.holder,
            "targetNamespace": self.target_namespace,
            "claimedAt": _stamp(self.claimed_at),
            "expires": _stamp(self.expires),
            "workloads": dict(self.workloads),
            "pdbs": dict(self.pdbs),
            "pods": list(self.pods),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Claim:
        namespace, name = str(data["run"]).split("/", 1)
        return cls(
            namespace=namespace,
            name=name,
            uid=str(data["uid"]),
            holder=str(data["holder"]),
            target_namespace=str(data["targetNamespace"]),
            claimed_at=_parse(str(data["claimedAt"])),
            expires=_parse(str(data["expires"])),
            workloads={str(k): int(v) for k, v in (data.get("workloads") or {}).items()},
            pdbs={str(k): int(v) for k, v in (data.get("pdbs") or {}).items()},
            pods=tuple(str(p) for p in data.get("pods") or ()),
        )


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"time without a zone: {text}")
    return moment


def load(text: str | None) -> list[Claim]:
    """The claims in a ledger's text; malformed entries are dropped (and logged): the cache's
    active runs still count for concurrency, and the ledger is only ever written by operators."""
    if not text:
        return []
    try:
        entries = json.loads(text)
    except ValueError:
        log.warning("the claim ledger is not JSON; starting it afresh")
        return []
    claims = []
    for entry in entries if isinstance(entries, list) else []:
        try:
            claims.append(Claim.from_json(entry))
        except (KeyError, TypeError, ValueError, AttributeError):
            log.warning("dropping a malformed claim from the ledger: %r", entry)
    return claims


def dump(claims: Sequence[Claim]) -> str:
    return json.dumps([c.to_json() for c in claims], sort_keys=True, separators=(",", ":"))


class RunState(StrEnum):
    """What the operator's cache says about a claim's run."""

    ACTIVE = "Active"  # Injecting, Observing or Reverting, held by the claim's holder (or unknown)
    ENDED = "Ended"  # terminal, or past its deadline
    PENDING = "Pending"  # not active yet: claimed a moment ago, or the claimant died before journaling
    GONE = "Gone"  # deleted, replaced by a run of the same name, or claimed by another holder
    UNSEEN = "Unseen"  # outside what this operator watches: kept until the claim expires


def prune(
    claims: Sequence[Claim],
    state: Callable[[Claim], RunState],
    now: dt.datetime,
    grace: dt.timedelta = GRACE,
) -> list[Claim]:
    """The claims still holding budget: not expired, not of an ended run, and — for runs not seen
    active — not older than `grace` (a crash between claiming and journaling must not hold the
    budget for long, while a claim made a moment ago must not be lost to a lagging cache)."""
    kept = []
    for claim in claims:
        if claim.expires <= now:
            continue
        seen = state(claim)
        if seen is RunState.ENDED:
            continue
        if seen in (RunState.PENDING, RunState.GONE) and now - claim.claimed_at > grace:
            continue
        kept.append(claim)
    return kept


@dataclass(frozen=True)
class ActiveRun:
    """An active run as the cache shows it (counted for concurrency even without a claim)."""

    uid: str
    target_namespace: str


@dataclass(frozen=True)
class WorkloadShare:
    """A workload the run's selector matched: its uid, how people name it, its desired pods."""

    uid: str
    title: str  # e.g. "Deployment shop/checkout"
    desired: int


@dataclass(frozen=True)
class Candidate:
    """A pod the run may hit, and the workload it belongs to."""

    name: str
    workload: str  # the workload's uid


@dataclass(frozen=True)
class Request:
    """What a run asks for: `chosen` (its selection, in order) out of `candidates` (every Ready
    pod the selection could take, in the order to fill up from), `claim` (its own, without
    counts yet)."""

    claim: Claim
    chosen: Sequence[Candidate]
    candidates: Sequence[Candidate]
    workloads: Sequence[WorkloadShare]
    pdbs: Sequence[PdbInfo] = ()
    respect_pdbs: bool = True


@dataclass(frozen=True)
class Grant:
    """The decision; when allowed, the pods kept, notes on what PDBs spared, and the claim to write."""

    decision: Decision
    kept: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    claim: Claim | None = None

    @property
    def allowed(self) -> bool:
        return self.decision.allowed


def check_concurrency(
    policies: Policies, others: Sequence[Claim], active: Sequence[ActiveRun], me: Claim
) -> Decision:
    """One more active run? Counts the union of the ledger's claims and the cache's active runs
    (by run uid, the run itself excluded)."""
    where: dict[str, str] = {a.uid: a.target_namespace for a in active}
    where.update({c.uid: c.target_namespace for c in others})
    where.pop(me.uid, None)
    in_namespace = sum(1 for ns in where.values() if ns == me.target_namespace)
    return core_policy.check_concurrency(
        policies, active_total=len(where), active_in_namespace=in_namespace, namespace=me.target_namespace
    )


def _per_run(others: Sequence[Claim], counts: Callable[[Claim], Mapping[str, int]]) -> Counter[str]:
    """The sum over runs of `counts`; a run claimed by two racing replicas counts once (the most
    either claimed): only one of them can journal it Injecting."""
    by_run: dict[str, Counter[str]] = {}
    for claim in others:
        mine = by_run.setdefault(claim.uid, Counter())
        for key, n in counts(claim).items():
            mine[key] = max(mine[key], n)
    total: Counter[str] = Counter()
    for mine in by_run.values():
        total.update(mine)
    return total


def held_pods(others: Sequence[Claim]) -> Counter[str]:
    """Pods of each workload (by uid) the other claims hit."""
    return _per_run(others, lambda c: c.workloads)


def workload_room(
    policies: Policies, workloads: Sequence[WorkloadShare], held: Mapping[str, int]
) -> dict[str, int]:
    """How many more pods of each workload may be hit: its own blast-radius cap (of its desired
    pods) less what other runs hold."""
    return {
        w.uid: max(0, core_policy.pod_cap(policies, total_pods=w.desired)[0] - held.get(w.uid, 0))
        for w in workloads
    }


def cap_per_workload(
    chosen: Sequence[Candidate], candidates: Sequence[Candidate], room: Mapping[str, int]
) -> list[Candidate] | None:
    """The selection with each workload's share within its room: chosen pods are kept while their
    workload has room, the rest replaced by candidates of workloads that still have some (in
    `candidates` order). None when as many pods cannot be found: the run is refused, not shrunk."""
    left = dict(room)
    kept: list[Candidate] = []
    for pod in chosen:
        if left.get(pod.workload, 0) > 0:
            kept.append(pod)
            left[pod.workload] -= 1
    taken = {p.name for p in chosen}
    for pod in candidates:
        if len(kept) >= len(chosen):
            break
        if pod.name not in taken and left.get(pod.workload, 0) > 0:
            kept.append(pod)
            taken.add(pod.name)
            left[pod.workload] -= 1
    return kept if len(kept) == len(chosen) else None


def _refuse_radius(
    policies: Policies, request: Request, held: Mapping[str, int], room: Mapping[str, int]
) -> Decision:
    wanted = Counter(p.workload for p in request.chosen)
    parts = []
    for w in request.workloads:
        cap, sentence = core_policy.pod_cap(policies, total_pods=w.desired)
        others = held.get(w.uid, 0)
        parts.append(
            f"{w.title}: cap {cap} ({sentence.rstrip('.')}), {others} held by other active runs,"
            f" {room.get(w.uid, 0)} left"
        )
    total = len(request.chosen)
    return Decision.deny(
        core_policy.Reason.BLAST_RADIUS_EXCEEDED,
        f"The run would hit {total} {'pod' if total == 1 else 'pods'}"
        f" ({', '.join(f'{n} of {_title(request, uid)}' for uid, n in sorted(wanted.items()))}), more than"
        f" the blast radius leaves per workload with the other active runs counted: {'; '.join(parts)}."
        " Nothing was injected: wait for those runs to end, lower spec.target (mode/value), or raise"
        " blastRadius.",
    )


def _title(request: Request, uid: str) -> str:
    return next((w.title for w in request.workloads if w.uid == uid), uid)


def pdb_headroom(pdbs: Sequence[PdbInfo], target_namespace: str, others: Sequence[Claim]) -> list[PdbInfo]:
    """The PDBs with `disruptions_allowed` reduced by what other claims charged to them."""
    charged = _per_run(others, lambda c: c.pdbs)
    return [
        dataclasses.replace(
            p, disruptions_allowed=p.disruptions_allowed - charged[f"{target_namespace}/{p.name}"]
        )
        for p in pdbs
    ]


def decide(
    policies: Policies, claims: Sequence[Claim], active: Sequence[ActiveRun], request: Request
) -> Grant:
    """The decision for one run as if every claim in `claims` (already pruned) came before it:
    concurrency, then the blast radius per workload, then PodDisruptionBudgets (which spare pods
    rather than refuse, as `core.policy.pdb_limit` does; a run left with none is refused)."""
    me = request.claim
    others = [c for c in claims if c.uid != me.uid]  # the same run under another holder is itself
    decision = check_concurrency(policies, others, active, me)
    if not decision.allowed:
        return Grant(decision)
    # the run's own cap over everything it may hit, as before; then each workload's
    radius = core_policy.check_blast_radius(
        policies, requested=len(request.chosen), total=len(request.candidates)
    )
    if not radius.allowed:
        return Grant(radius)
    held = held_pods(others)
    room = workload_room(policies, request.workloads, held)
    # a pod another active run has claimed is its: choose another (two runs deleting one pod
    # would count it twice and leave the second with nothing to inject)
    taken = {p for c in others if c.target_namespace == me.target_namespace for p in c.pods}
    free = [p for p in request.candidates if p.name not in taken]
    chosen = [p for p in request.chosen if p.name not in taken]
    for pod in free:
        if len(chosen) >= len(request.chosen):
            break
        if pod not in chosen:
            chosen.append(pod)
    if len(chosen) < len(request.chosen):
        return Grant(_refuse_radius(policies, request, held, room))
    picked = cap_per_workload(chosen, free, room)
    if picked is None or not picked:
        return Grant(_refuse_radius(policies, request, held, room))
    names = [p.name for p in picked]
    notes: list[str] = []
    pdbs = pdb_headroom(request.pdbs, me.target_namespace, others)
    if request.respect_pdbs:
        names, notes = core_policy.pdb_limit(names, pdbs)
        if not names:
            held_elsewhere = any(
                p.disruptions_allowed < q.disruptions_allowed for p, q in zip(pdbs, request.pdbs, strict=True)
            )
            suffix = " (counting the disruptions other active runs hold)" if held_elsewhere else ""
            return Grant(
                Decision(False, DISRUPTION_BUDGET, "; ".join(notes) + suffix + "; nothing was injected", None)
            )
    workload_of = {p.name: p.workload for p in picked}
    counts = Counter(workload_of[n] for n in names)
    charges = {
        f"{me.target_namespace}/{p.name}": n
        for p in request.pdbs
        if (n := sum(1 for name in names if name in p.covers))
    }
    claim = dataclasses.replace(
        me, workloads=dict(sorted(counts.items())), pdbs=charges, pods=tuple(sorted(names))
    )
    return Grant(
        Decision.allow(f"within the shared budgets with {len(others)} other active claims"),
        kept=tuple(names),
        notes=tuple(notes),
        claim=claim,
    )


def released(claims: Sequence[Claim], releases: Sequence[tuple[str, str | None]]) -> list[Claim]:
    """`claims` without those of each released (run uid, holder): a holder of None releases the
    run's claims whoever wrote them."""
    return [
        c for c in claims if not any(c.uid == uid and holder in (None, c.holder) for uid, holder in releases)
    ]


def recorded(claims: Sequence[Claim], claim: Claim) -> list[Claim]:
    """`claims` with `claim` in place of what its holder claimed for the same run before."""
    return [*(c for c in claims if not (c.uid == claim.uid and c.holder == claim.holder)), claim]


def decide_batch(
    claims: Sequence[Claim], active: Sequence[ActiveRun], asks: Sequence[tuple[Policies, Request]]
) -> tuple[list[Grant], list[Claim]]:
    """The decisions for requests that arrived together (group commit, runs/ledger.py), each as if
    they came one after another in `asks` order: every request sees `claims` (already pruned) and
    the claims granted before it in the batch; a refusal holds nothing. Returns the grants, in
    order, and the claims to write."""
    held = list(claims)
    grants = []
    for policies, request in asks:
        grant = decide(policies, held, active, request)
        if grant.allowed and grant.claim is not None:
            held = recorded(held, grant.claim)
        grants.append(grant)
    return grants, held


def check_shares(policies: Policies, workloads: Sequence[WorkloadShare], requested: int) -> Decision:
    """Whether `requested` pods can be hit with each workload's share within its own blast radius
    (admission: no other run counted; a selector matching several workloads is capped per workload,
    so the run is refused only when even the best spread would not fit)."""
    caps = [(w, core_policy.pod_cap(policies, total_pods=w.desired)) for w in workloads]
    room = sum(cap for _, (cap, _) in caps)
    if requested <= room:
        return Decision.allow(f"{requested} pods fit within the blast radius of each workload")
    parts = "; ".join(f"{w.title}: {sentence}" for w, (_, sentence) in caps)
    return Decision.deny(
        core_policy.Reason.BLAST_RADIUS_EXCEEDED,
        f"The run would hit {requested} pods, but the blast radius is per workload and the"
        f" {_noun(len(workloads), 'workload')} the selector matches allow at most {room} together ({parts})."
        " Lower spec.target (mode/value) or narrow the selector.",
    )


def _noun(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
