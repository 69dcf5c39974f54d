"""fault.toxiproxy: toxics on an existing Toxiproxy proxy for fault.duration.

Toxic names carry the run: ``aftershock.<run namespace>.<run uid>.<index>``. That makes adding
idempotent (a 409 is "already done" exactly when the name is this run's, which the name itself
proves: nobody else can know the run's uid in advance and a tenant who reads it gains nothing, the
toxic is the one this run wants), lets revert remove exactly this run's toxics and nothing else,
and lets the sweeper find toxics whose run is gone: it asks every Toxiproxy endpoint named by the
experiments and runs it can see.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any, Final

from aftershock.api.common import Finding
from aftershock.api.experiment import Fault
from aftershock.api.run import TargetRecord
from aftershock.core.endpoints import EndpointRules
from aftershock.core.naming import LABEL_RUN, LABEL_RUN_NAMESPACE
from aftershock.core.sweep import Artifact
from aftershock.core.watch_scope import Scope
from aftershock.engines.base import (
    ABORT_WAIT_SECONDS,
    ArtifactFinder,
    EngineError,
    InjectContext,
    Native,
    Permission,
)
from aftershock.engines.policy_gate import parse_policies
from aftershock.engines.toxiproxy_api import Refused, ToxiproxyAPI, Unreachable
from aftershock.kube import Kube, Obj, now

log = logging.getLogger(__name__)

PREFIX: Final = "aftershock"
UNREACHABLE: Final = "ToxiproxyUnreachable"
PROXY_MISSING: Final = "ToxiproxyProxyNotFound"
REFUSED: Final = "EndpointNotAllowed"


def toxic_name(run_namespace: str, run_uid: str, index: int) -> str:
    return f"{PREFIX}.{run_namespace}.{run_uid}.{index}"


def run_of(toxic: str) -> tuple[str, str] | None:
    """(run namespace, run uid) of a toxic aftershock named; None for anyone else's."""
    parts = toxic.split(".")
    if len(parts) != 4 or parts[0] != PREFIX or not parts[3].isdigit():
        return None
    return parts[1], parts[2]


def toxic_bodies(ctx: InjectContext) -> list[dict[str, Any]]:
    assert ctx.fault.toxiproxy is not None
    return [
        {
            "name": toxic_name(ctx.run_namespace, ctx.run_uid, index),
            "type": str(toxic.type),
            "stream": str(toxic.stream),
            "toxicity": toxic.toxicity,
            "attributes": dict(toxic.attributes),
        }
        for index, toxic in enumerate(ctx.fault.toxiproxy.toxics)
    ]


def _rules(ctx: InjectContext) -> EndpointRules:
    policies = parse_policies(ctx.kube.list_policies())
    return EndpointRules.from_policies(ctx.target_namespace, policies, ctx.kube.api_endpoints())


def _api(ctx: InjectContext, *, guarded: bool) -> ToxiproxyAPI:
    assert ctx.fault.toxiproxy is not None
    timeout = ABORT_WAIT_SECONDS / 4 if ctx.urgent else 5.0
    try:
        return ToxiproxyAPI(ctx.fault.toxiproxy.endpoint, _rules(ctx) if guarded else None, timeout)
    except Refused as exc:
        raise EngineError(REFUSED, f"{exc}; nothing was injected") from exc


# --- the sweeper's view: toxics of runs that are gone ----------------------------------------------


def _endpoints(kube: Kube, scope: Scope) -> set[str]:
    """Toxiproxy endpoints named by the experiments and runs in scope."""
    found: set[str] = set()
    for kind in ("ChaosExperiment", "ChaosRun"):
        for obj in kube.list_in(kind, scope):
            toxiproxy = (((obj.get("spec") or {}).get("fault") or {}).get("toxiproxy")) or {}
            if toxiproxy.get("endpoint"):
                found.add(str(toxiproxy["endpoint"]).rstrip("/"))
    return found


def _find_toxics(kube: Kube, scope: Scope) -> list[Obj]:
    items: list[Obj] = []
    for endpoint in sorted(_endpoints(kube, scope)):
        try:
            proxies = ToxiproxyAPI(endpoint, None).proxies()
        except (Unreachable, Refused) as exc:
            log.warning("sweeper: cannot list the toxics at %s: %s", endpoint, exc)
            continue
        for proxy_name, proxy in proxies.items():
            for toxic in (proxy or {}).get("toxics") or []:
                owner = run_of(str(toxic.get("name", "")))
                if owner is None:
                    continue
                run_namespace, run_uid = owner
                items.append(
                    {
                        "metadata": {
                            "name": f"{endpoint} {proxy_name} {toxic['name']}",
                            "namespace": run_namespace,
                            "labels": {LABEL_RUN: run_uid, LABEL_RUN_NAMESPACE: run_namespace},
                        }
                    }
                )
    return items


def _remove_toxic(kube: Kube, artifact: Artifact) -> None:
    endpoint, proxy, toxic = artifact.name.split(" ", 2)
    ToxiproxyAPI(endpoint, None).remove_toxic(proxy, toxic)


TOXICS = ArtifactFinder(
    kind="ToxiproxyToxic",
    find=_find_toxics,
    remove=_remove_toxic,
    by_hand="for each toxic named aftershock.<run namespace>.{uid}.<n> (the run's aftershock.dev/run label is its"
    " uid): curl -X DELETE <endpoint>/proxies/<proxy>/toxics/<name>",
)


class ToxiproxyEngine(Native):
    kind = "toxiproxy"
    sustained = True
    artifacts = (TOXICS,)

    def damage(self, fault: Fault) -> tuple[Permission, ...]:
        """Nothing in the Kubernetes API: where the toxics go is the endpoint rules' business."""
        return ()

    def describe(self, fault: Fault) -> str:
        assert fault.toxiproxy is not None
        kinds = ", ".join(str(t.type) for t in fault.toxiproxy.toxics)
        return (
            f"add Toxiproxy toxics ({kinds}) to proxy {fault.toxiproxy.proxy} at {fault.toxiproxy.endpoint}"
        )

    def preflight(self, ctx: InjectContext) -> None:
        """The endpoint allowed, Toxiproxy answering, the proxy there: else Errored, nothing done."""
        assert ctx.fault.toxiproxy is not None
        api = _api(ctx, guarded=True)
        proxy = ctx.fault.toxiproxy.proxy
        try:
            api.version()
            found = api.proxy(proxy)
            if found is None:
                names = sorted(api.proxies())
                raise EngineError(
                    PROXY_MISSING,
                    f"Toxiproxy at {api.endpoint} has no proxy named {proxy} (it has: {', '.join(names) or 'none'});"
                    " aftershock adds toxics to an existing proxy and never creates one; nothing was injected",
                )
        except Unreachable as exc:
            raise EngineError(UNREACHABLE, f"{exc}; nothing was injected") from exc
        except Refused as exc:
            raise EngineError(REFUSED, f"{exc}; nothing was injected") from exc

    def inject(self, ctx: InjectContext, target: TargetRecord) -> dt.datetime | None:
        """All toxics at once, on the first target; later targets find them in place (409)."""
        assert ctx.fault.toxiproxy is not None
        api = _api(ctx, guarded=True)
        proxy = ctx.fault.toxiproxy.proxy
        try:
            for body in toxic_bodies(ctx):
                if not api.add_toxic(proxy, body):
                    log.info(
                        "run %s/%s: toxic %s already in place", ctx.run_namespace, ctx.run_name, body["name"]
                    )
        except Refused as exc:
            raise EngineError(REFUSED, f"{exc}; nothing was injected") from exc
        except Unreachable as exc:
            raise EngineError(UNREACHABLE, str(exc)) from exc
        return now()

    def revert(self, ctx: InjectContext) -> Sequence[Finding]:
        """Remove this run's toxics (by name: the ones it would have added, and any other that
        carries its uid); gone already is fine. Toxiproxy unreachable raises: the driver retries
        and records an unrevertable fault if it never answers."""
        assert ctx.fault.toxiproxy is not None
        api = _api(ctx, guarded=False)
        proxy = ctx.fault.toxiproxy.proxy
        names = {b["name"] for b in toxic_bodies(ctx)}
        names |= {
            str(t.get("name"))
            for t in api.toxics(proxy)
            if (run_of(str(t.get("name", ""))) or ("", ""))[1] == ctx.run_uid
        }
        for name in sorted(names):
            api.remove_toxic(proxy, name)
        return ()
