"""kopf settings of our own (annotation prefix and finalizer under aftershock.dev), and the
operator's shared parts, built once: the watch-fed cache, this operator's Lease, the I/O pools,
the run environment, the scheduler, the guardrail monitor, the sweeper and the default ChaosPolicy."""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import kopf

from aftershock import GROUP
from aftershock.cluster import review_key
from aftershock.cluster.cache import ClusterCache
from aftershock.cluster.coalesce import Coalescer
from aftershock.cluster.experiment_status import refresh_experiment_status
from aftershock.cluster.io import io_pool
from aftershock.cluster.lease import OperatorLease
from aftershock.core.naming import FINALIZER
from aftershock.core.watch_scope import Scope, explicit_namespaces
from aftershock.engines.default_policy import ensure_default_policy, load_spec
from aftershock.engines.policy_gate import WATCH
from aftershock.handlers.context import (
    OperatorContext,
    default_identity,
    get_context,
    namespace_patterns,
    set_context,
)
from aftershock.handlers.kopf_storage import NoDiffBase
from aftershock.handlers.sweeper import Sweeper
from aftershock.kube import Kube, Obj, RetryPolicy, load_client
from aftershock.runs.base import Reviews, RunEnv
from aftershock.runs.guardrails import GuardrailMonitor
from aftershock.runs.namespaces import NamespaceLabels
from aftershock.runs.review import stamp_slot
from aftershock.runs.view import CachedView
from aftershock.scheduling.scheduler import Scheduler
from aftershock.scheduling.ticks import tick
from aftershock.tls import ServingCert, self_signed

log = logging.getLogger(__name__)
_sweeper: Sweeper | None = None
_guardrails: GuardrailMonitor | None = None
_unlisten: list[Callable[[], None]] = []
_ready = asyncio.Event()
_background: set[asyncio.Task[None]] = set()
SYNC_PATIENCE = 120.0
ADMISSION_RETRY = RetryPolicy(budget=5.0, connect_timeout=2.0, read_timeout=4.0)
GUARDRAIL_RETRY = RetryPolicy(budget=3.0, connect_timeout=2.0, read_timeout=3.0)  # a round every 2 s


def lease_namespace(operator_namespace: str | None, scope: Scope) -> str:
    """Where this operator's Lease lives: its own namespace, else the first one it watches."""
    explicit = os.environ.get("AFTERSHOCK_LEASE_NAMESPACE")
    return explicit or operator_namespace or (scope[0] if scope else "default")


async def ready() -> None:
    """Returns once the shared cache has listed everything (runs decide on nothing before)."""
    await _ready.wait()


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    global _sweeper, _guardrails
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = NoDiffBase()
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # a line per probe and review
    settings.posting.level = logging.WARNING  # our own Events describe each transition
    # sync handlers are short now (no daemon holds a thread): a small pool is plenty
    settings.execution.max_workers = int(os.environ.get("AFTERSHOCK_MAX_WORKERS", "16"))
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.peering.standalone = True
    settings.networking.error_backoffs = [1, 2, 5, 10]
    kube = Kube(load_client())
    operator_namespace = os.environ.get("AFTERSHOCK_OPERATOR_NAMESPACE") or None
    scope = explicit_namespaces(namespace_patterns())
    identity = default_identity()
    leases = lease_namespace(operator_namespace, scope)
    cache = ClusterCache(kube.api, scope, lease_namespace=leases)
    lease = OperatorLease(kube, leases, identity, read=lambda ns, name: cache.get("Lease", ns, name))
    try:
        lease.start()  # before anything is claimed: others must be able to see we are alive
    except Exception as exc:
        raise kopf.TemporaryError(
            f"cannot create or renew this operator's Lease {leases}/{lease.name} (does namespace {leases}"
            f" exist, may the operator write Leases there?): {exc}",
            delay=5,
        ) from exc
    reviews = load_reviews(kube, operator_namespace or leases)
    cache.start()
    run_io = io_pool("aftershock-run-io", "AFTERSHOCK_RUN_THREADS", 64)
    urgent_io = io_pool("aftershock-abort-io", "AFTERSHOCK_ABORT_THREADS", 8)
    tick_io = io_pool("aftershock-tick-io", "AFTERSHOCK_TICK_THREADS", 32)
    admission_io = io_pool("aftershock-admission", "AFTERSHOCK_ADMISSION_THREADS", 8)
    guardrail_io = io_pool("aftershock-guardrail-io", "AFTERSHOCK_GUARDRAIL_THREADS", 4)
    view = CachedView(cache)
    namespace_labels = NamespaceLabels()  # shared by the runs' policy gate and the guardrail monitor
    _guardrails = GuardrailMonitor(
        view=view,
        kube=kube.with_retry(GUARDRAIL_RETRY),
        io=guardrail_io,
        namespace_labels=namespace_labels,
        identity=identity,
        operator_namespace=operator_namespace,
        wake=WATCH.notify,  # the kill switch's listeners: waiting runs wake and see revoked()
    )

    async def refresh_status(key: tuple[str, str]) -> None:
        # a consistent LIST, not the cache: the run's own write may not have arrived there yet,
        # and this refresh (a run starting or ending) is the one the status must not miss
        await run_io(refresh_experiment_status, kube, *key)

    refresher: Coalescer[tuple[str, str]] = Coalescer(refresh_status)

    async def experiment_changed(namespace: str, experiment: str) -> None:
        await refresher.request((namespace, experiment))

    context = OperatorContext(
        kube=kube,
        operator_namespace=operator_namespace,
        identity=identity,
        scope=scope,
        cache=cache,
        lease=lease,
        runs=RunEnv(
            kube=kube,
            io=run_io,
            view=view,
            identity=identity,
            operator_namespace=operator_namespace,
            scope=scope,
            suspended=WATCH.suspended,
            revoked=_guardrails.revoked,
            claims=lease,
            on_change=experiment_changed,
            urgent_io=urgent_io,
            namespace_labels=namespace_labels,
            reviews=reviews,
            api_server=kube.api_endpoints(),
        ),
        scheduler=None,
        admission_io=admission_io,
        admission_kube=kube.with_retry(ADMISSION_RETRY),
        pools=[run_io, urgent_io, tick_io, admission_io, guardrail_io],
    )

    def slot_stamp(experiment: Obj, run: Obj) -> Obj:
        return stamp_slot(reviews, experiment, run, identity)

    def plan(body: Obj) -> float:
        meta = body["metadata"]
        key = (str(meta["namespace"]), str(meta["name"]))
        scheduler = context.scheduler
        assert scheduler is not None
        return tick(
            kube,
            body,
            read=context.runs_of,
            stamp=slot_stamp,
            follow_up=lambda work: scheduler.follow_up(key, work),
        )

    context.scheduler = Scheduler(plan, tick_io)
    set_context(context)
    log.info("operator identity: %s (Lease %s/%s)", identity, leases, lease.name)
    configure_webhook(settings)
    interval = float(os.environ.get("AFTERSHOCK_SWEEP_SECONDS", "10"))
    if interval > 0:
        _sweeper = Sweeper(kube, interval, context.scope)
        _sweeper.start()


@kopf.on.startup()
async def start_scheduler(**_: Any) -> None:
    """Start the one scheduler loop and the one guardrail monitor, and open the gate for runs once
    the cache has synced."""
    ctx = get_context()
    assert ctx.scheduler is not None and ctx.cache is not None
    _start_background(ctx.scheduler.run(), "aftershock-scheduler")
    cache = ctx.cache
    if _guardrails is not None:
        monitor = _guardrails
        # a round at once on every ChaosPolicy change: kopf's event (as the kill switch) and the
        # cache's own (the round reads the policies from the cache, which may see it a moment later)
        _unlisten.append(WATCH.listen(monitor.poke))
        _unlisten.append(cache.subscribe("ChaosPolicy", lambda _type, _obj: monitor.poke()))
        _start_background(monitor.run(), "aftershock-guardrails")
    loop = asyncio.get_running_loop()
    synced = await loop.run_in_executor(None, cache.wait_synced, SYNC_PATIENCE)
    if not synced:
        raise kopf.PermanentError(
            f"the watch cache did not list everything within {SYNC_PATIENCE:.0f} s (RBAC? API server?)"
        )
    _ready.set()


def _start_background(coroutine: Coroutine[Any, Any, None], name: str) -> None:
    task = asyncio.create_task(coroutine, name=name)
    _background.add(task)
    task.add_done_callback(_background.discard)


@kopf.on.startup()
def default_policy(**_: Any) -> None:
    """Apply the default ChaosPolicy the chart configured (see core/default_policy.py). Retried by
    kopf until it succeeds: on a first install the CRD may not be served yet."""
    name = os.environ.get("AFTERSHOCK_DEFAULT_POLICY_NAME")
    if not name:
        return
    path = os.environ.get("AFTERSHOCK_DEFAULT_POLICY_FILE")
    spec = load_spec(Path(path)) if path else None
    labels = {"app.kubernetes.io/part-of": "aftershock"}
    try:
        ensure_default_policy(get_context().kube, name, spec, labels)
    except Exception as exc:
        raise kopf.TemporaryError(f"default ChaosPolicy {name}: {exc}", delay=2) from exc


def load_reviews(kube: Kube, default_namespace: str) -> Reviews:
    """The review stamps' key (cluster/review_key.py), or trust by explicit choice. Without the
    webhook and without trust, every run ends Errored (AuthorNotReviewed): say so at start."""
    trust = os.environ.get("AFTERSHOCK_TRUST_UNREVIEWED", "").lower() in ("1", "true", "yes")
    if trust:
        log.warning(
            "--trust-unreviewed: runs start without proof that the admission webhook checked their"
            " author; anyone who may write ChaosExperiments can do whatever this operator may do"
        )
        return Reviews(key=None, trust=True)
    namespace = os.environ.get("AFTERSHOCK_REVIEW_KEY_NAMESPACE") or default_namespace
    try:
        key = review_key.load_or_create(kube, namespace)
    except Exception as exc:
        raise kopf.TemporaryError(
            f"cannot read or create the review key Secret {namespace}/{review_key.NAME} (may the"
            f" operator get and create Secrets there?): {exc}",
            delay=5,
        ) from exc
    if not int(os.environ.get("AFTERSHOCK_WEBHOOK_PORT", "0")):
        log.warning(
            "this operator serves no admission webhook: runs are refused (AuthorNotReviewed) unless"
            " another replica's webhook stamped their experiments with the key in %s/%s",
            namespace,
            review_key.NAME,
        )
    return Reviews(key=key, trust=False)


def configure_webhook(settings: kopf.OperatorSettings) -> None:
    """Serve the admission webhooks over TLS when a port is configured.

    With a certificate directory (tls.crt, tls.key, ca.crt — e.g. from cert-manager) those files
    are used; otherwise a self-signed CA and certificate are made for the advertised host. With a
    configuration name, kopf keeps that ValidatingWebhookConfiguration pointed at this server.
    """
    port = int(os.environ.get("AFTERSHOCK_WEBHOOK_PORT", "0"))
    if not port:
        return
    addr = os.environ.get("AFTERSHOCK_WEBHOOK_ADDR", "0.0.0.0")
    host = os.environ.get("AFTERSHOCK_WEBHOOK_HOST") or ("127.0.0.1" if addr in ("0.0.0.0", "") else addr)
    cert_dir = os.environ.get("AFTERSHOCK_WEBHOOK_CERT_DIR")
    if cert_dir:
        directory = Path(cert_dir)
        cert = ServingCert(directory / "tls.crt", directory / "tls.key", (directory / "ca.crt").read_bytes())
    else:
        cert = self_signed(Path(tempfile.mkdtemp(prefix="aftershock-webhook-")), [host, "localhost"])
    settings.admission.server = kopf.WebhookServer(
        addr=addr,
        port=port,
        host=host,
        certfile=str(cert.certfile),
        pkeyfile=str(cert.keyfile),
        cadata=cert.ca_pem,
    )
    managed = os.environ.get("AFTERSHOCK_WEBHOOK_CONFIG", "aftershock.dev")
    if managed:
        settings.admission.managed = managed
    log.info("admission webhook on https://%s:%d (config %s)", host, port, managed or "unmanaged")


@kopf.on.cleanup()
def shutdown(**_: Any) -> None:
    if _sweeper is not None:
        _sweeper.stop()
    while _unlisten:
        _unlisten.pop()()
    for task in list(_background):
        task.cancel()
    ctx = get_context()
    if ctx.lease is not None:
        ctx.lease.stop(release=True)  # a successor takes our runs over at once
    if ctx.cache is not None:
        ctx.cache.stop()
    for pool in ctx.pools:
        pool.shutdown()
