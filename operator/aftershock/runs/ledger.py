"""The claim ledger: one coordination.k8s.io Lease, `aftershock-claims`, in the operator's Lease
namespace (where every replica already renews its own Lease, so no new permission), whose
annotation holds the claims of the active runs (core/budget.py says why and decides).

Claiming is read → prune → decide → replace under the Lease's resourceVersion; a 409 means
another run (in this process or another replica) claimed meanwhile, so it re-reads and decides
again. One object for every scope, because the cluster-wide concurrency limit is one shared
budget anyway; it is written once per run start and once per run end, well below what a single
object takes. A claim is released when its run ends (best effort); pruning by the cache's view of
the runs, and each claim's expiry, cover a crash or a lost release.

Within one process, claims and releases take turns (one asyncio lock per event loop) and start
from the Lease as this process last wrote it: a burst of slots is a queue of one write each, not
a storm of conflicting writes (measured: at 3.3 runs per second, unserialised claims re-read and
re-wrote the Lease about four times per run, and a few runs gave up). A 409 — another replica
wrote — re-reads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aftershock.api.common import RunPhase
from aftershock.core import budget
from aftershock.core.budget import ActiveRun, Claim, Grant, Request, RunState
from aftershock.core.policy import Decision, Policies
from aftershock.core.times import parse_time
from aftershock.kube import Conflict, NotFound, Obj
from aftershock.runs.base import RunEnv

log = logging.getLogger(__name__)

NAME = "aftershock-claims"
ANNOTATION = "aftershock.dev/claims"
LABELS = {"app.kubernetes.io/part-of": "aftershock", "aftershock.dev/lease": "claims"}
ATTEMPTS = 20

_turns: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}
_written: dict[str, Obj] = {}  # namespace → the ledger as this process last read or wrote it


def _turn() -> asyncio.Lock:
    """This process's lock on the ledger (one per event loop: locks belong to a loop)."""
    loop = asyncio.get_running_loop()
    if loop not in _turns:
        _turns[loop] = asyncio.Lock()
    return _turns[loop]


async def _read(env: RunEnv, namespace: str) -> Obj | None:
    known = _written.get(namespace)
    if known is not None:
        return known
    lease = await env.io(env.kube.find_lease, namespace, NAME)
    if lease is not None:
        _written[namespace] = lease
    return lease


async def _replace(env: RunEnv, namespace: str, lease: Obj) -> None:
    """Write the ledger; on a 409/404 forget what we knew (the caller re-reads)."""
    try:
        _written[namespace] = await env.io(env.kube.replace_lease, lease)
    except (Conflict, NotFound):
        _written.pop(namespace, None)
        raise


def ledger_namespace(env: RunEnv) -> str | None:
    """The namespace of this operator's own Lease (None: a one-shot caller with no Lease)."""
    reference = env.claims.reference
    return reference.split("/", 1)[0] if reference else None


def run_state(env: RunEnv) -> Callable[[Claim], RunState]:
    """What this operator's cache says about a claim's run (see core/budget.py `prune`)."""
    view = env.cluster()
    now = env.clock()

    def state(claim: Claim) -> RunState:
        if env.scope is not None and claim.namespace not in env.scope:
            return RunState.UNSEEN
        cached = view.get_run(claim.namespace, claim.name)
        if cached is None or cached["metadata"].get("uid") != claim.uid:
            return RunState.GONE
        status = cached.get("status") or {}
        phase = RunPhase(status.get("phase") or RunPhase.PENDING)
        if phase.is_terminal:
            return RunState.ENDED
        if phase is RunPhase.PENDING:
            return RunState.PENDING
        deadline = parse_time(status.get("deadline"))
        if deadline is not None and deadline <= now:
            return RunState.ENDED
        holder = status.get("claimedBy")
        if holder and holder != claim.holder:
            return RunState.GONE  # another operator holds the run; its own claim counts
        return RunState.ACTIVE

    return state


def active_runs(env: RunEnv) -> list[ActiveRun]:
    """The cache's active runs (counted for concurrency whether or not they hold a claim)."""
    now = env.clock()
    found = []
    for run in env.cluster().active_runs():
        deadline = parse_time((run.get("status") or {}).get("deadline"))
        if deadline is not None and deadline <= now:
            continue
        spec = run.get("spec") or {}
        target = str((spec.get("target") or {}).get("namespace") or run["metadata"]["namespace"])
        found.append(ActiveRun(str(run["metadata"]["uid"]), target))
    return found


def _claims(lease: Obj) -> list[Claim]:
    return budget.load((lease["metadata"].get("annotations") or {}).get(ANNOTATION))


def _with(lease: Obj, claims: list[Claim]) -> Obj:
    meta = dict(lease["metadata"])
    meta["annotations"] = {**(meta.get("annotations") or {}), ANNOTATION: budget.dump(claims)}
    return {**lease, "metadata": meta}


def _new(namespace: str) -> Obj:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": NAME, "namespace": namespace, "labels": dict(LABELS), "annotations": {}},
        "spec": {},
    }


async def claim(env: RunEnv, policies: Policies, request: Request) -> Grant:
    """Decide `request` against every other active claim and write its own claim, atomically.
    Without a Lease namespace (no operator Lease) the cache alone decides, as before."""
    namespace = ledger_namespace(env)
    if namespace is None:
        return budget.decide(policies, [], active_runs(env), request)
    kube = env.kube
    me = request.claim
    read_anew = False
    async with _turn():
        for _ in range(ATTEMPTS):
            lease = await _read(env, namespace)
            if lease is None:
                await env.io(kube.create_lease, namespace, _new(namespace))  # False: made meanwhile
                continue
            claims = budget.prune(_claims(lease), run_state(env), env.clock())
            grant = budget.decide(policies, claims, active_runs(env), request)
            if not grant.allowed and namespace in _written and not read_anew:
                # refused on what this process last wrote: another replica may have released
                # since, so a refusal is only ever decided on a fresh read
                _written.pop(namespace, None)
                read_anew = True
                continue
            if not grant.allowed or grant.claim is None:
                return grant
            mine = [c for c in claims if not (c.uid == me.uid and c.holder == me.holder)]
            try:
                await _replace(env, namespace, _with(lease, [*mine, grant.claim]))
            except (Conflict, NotFound):
                continue  # someone claimed (or released) meanwhile: decide again on what they wrote
            return grant
    return Grant(
        Decision(
            False,
            budget.CLAIM_CONTENTION,
            f"the claim ledger {namespace}/{NAME} kept changing over {ATTEMPTS} attempts; nothing was"
            " injected, the run can be triggered again",
            None,
        )
    )


async def release(env: RunEnv, uid: str, holder: str | None = None) -> None:
    """Remove the run's claims (only `holder`'s, when given); best effort, logged on failure —
    pruning removes what a lost release leaves."""
    namespace = ledger_namespace(env)
    if namespace is None or not uid:
        return
    try:
        async with _turn():
            for _ in range(ATTEMPTS):
                lease = await _read(env, namespace)
                if lease is None:
                    return
                claims = _claims(lease)
                rest = [c for c in claims if not (c.uid == uid and holder in (None, c.holder))]
                if len(rest) == len(claims):
                    return
                try:
                    await _replace(env, namespace, _with(lease, rest))
                    return
                except NotFound:
                    return
                except Conflict:
                    continue
        log.warning("could not release the claim of run %s: the ledger kept changing", uid)
    except Exception as exc:
        log.warning("could not release the claim of run %s: %s", uid, exc)
