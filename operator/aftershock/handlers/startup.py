"""kopf settings of our own (annotation prefix and finalizer under aftershock.dev), the shared
context, and the sweeper's lifetime."""

from __future__ import annotations

import logging
import os
from typing import Any

import kopf

from aftershock import GROUP
from aftershock.core.naming import FINALIZER
from aftershock.handlers.context import OperatorContext, default_identity, set_context
from aftershock.handlers.sweeper import Sweeper
from aftershock.kube import Kube, load_client

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
    )
    set_context(context)
    log.info("operator identity: %s", context.identity)
    interval = float(os.environ.get("AFTERSHOCK_SWEEP_SECONDS", "10"))
    if interval > 0:
        _sweeper = Sweeper(kube, interval)
        _sweeper.start()


@kopf.on.cleanup()
def shutdown(**_: Any) -> None:
    if _sweeper is not None:
        _sweeper.stop()
