"""kopf settings of our own (annotation prefix and finalizer under aftershock.dev), the shared
context, the sweeper's lifetime, and the default ChaosPolicy."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import kopf

from aftershock import GROUP
from aftershock.core.naming import FINALIZER
from aftershock.core.watch_scope import explicit_namespaces
from aftershock.engines.default_policy import ensure_default_policy, load_spec
from aftershock.handlers.context import OperatorContext, default_identity, get_context, set_context
from aftershock.handlers.sweeper import Sweeper
from aftershock.kube import Kube, load_client
from aftershock.tls import ServingCert, self_signed

log = logging.getLogger(__name__)
_sweeper: Sweeper | None = None


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    global _sweeper
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING  # our own Events describe each transition
    settings.execution.max_workers = int(os.environ.get("AFTERSHOCK_MAX_WORKERS", "128"))
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.peering.standalone = True
    settings.networking.error_backoffs = [1, 2, 5, 10]
    kube = Kube(load_client())
    context = OperatorContext(
        kube=kube,
        operator_namespace=os.environ.get("AFTERSHOCK_OPERATOR_NAMESPACE") or None,
        identity=default_identity(),
        scope=explicit_namespaces([n for n in os.environ.get("AFTERSHOCK_NAMESPACES", "").split(",") if n]),
    )
    set_context(context)
    log.info("operator identity: %s", context.identity)
    configure_webhook(settings)
    interval = float(os.environ.get("AFTERSHOCK_SWEEP_SECONDS", "10"))
    if interval > 0:
        _sweeper = Sweeper(kube, interval, context.scope)
        _sweeper.start()


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
