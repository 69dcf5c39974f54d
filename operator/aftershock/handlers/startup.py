"""kopf settings of our own: annotation prefix and finalizer under aftershock.dev, our events."""

from __future__ import annotations

import logging
import os
from typing import Any

import kopf

from aftershock import GROUP
from aftershock.core.naming import FINALIZER
from aftershock.handlers.context import OperatorContext, set_context
from aftershock.kube import Kube, load_client


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING  # our own Events describe each transition
    settings.execution.max_workers = int(os.environ.get("AFTERSHOCK_MAX_WORKERS", "64"))
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.peering.standalone = True
    settings.networking.error_backoffs = [1, 2, 5, 10]
    set_context(
        OperatorContext(
            kube=Kube(load_client()),
            operator_namespace=os.environ.get("AFTERSHOCK_OPERATOR_NAMESPACE") or None,
        )
    )
