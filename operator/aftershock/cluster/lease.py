"""One coordination.k8s.io Lease per operator process: the liveness of every run it claims.

A run records only who claimed it (`status.claimedBy`, the operator's identity). The claimant
renews its own Lease every few seconds — one write per operator, not one per run. Another
operator (a second replica, or this one restarted under a new identity) may take a run over once
the claimant's Lease has not been renewed for its duration, or is gone: a clean shutdown deletes
it, so a successor takes over at once. An operator whose own renewals keep failing stops acting
on its runs before its Lease can lapse in others' eyes (`valid`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import time
from collections.abc import Callable

from aftershock.kube import Kube, NotFound, Obj, RetryPolicy, now

log = logging.getLogger(__name__)

DURATION = dt.timedelta(seconds=15)
RENEW_EVERY = dt.timedelta(seconds=5)
FOREIGN_TTL = 3.0  # seconds a Lease read from another namespace is reused (no GET per look)
RENEW_RETRY = RetryPolicy(budget=4.0, connect_timeout=2.0, read_timeout=3.0)
"""A renewal retried longer than its period would write a renewTime that is already old."""
LABELS = {"app.kubernetes.io/part-of": "aftershock", "aftershock.dev/lease": "operator"}


def lease_name(identity: str) -> str:
    """Deterministic, DNS-safe, and the same in every operator that reads it."""
    return "aftershock-op-" + hashlib.sha256(identity.encode()).hexdigest()[:16]


def _time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _micro(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def is_live(lease: Obj | None, holder: str, moment: dt.datetime) -> bool:
    """Whether `lease` shows `holder` alive at `moment` (pure: unit-tested)."""
    if lease is None:
        return False
    spec = lease.get("spec") or {}
    if spec.get("holderIdentity") != holder:
        return False
    renewed = _time(spec.get("renewTime")) or _time(spec.get("acquireTime"))
    if renewed is None:
        return False
    seconds = int(spec.get("leaseDurationSeconds") or DURATION.total_seconds())
    return moment - renewed <= dt.timedelta(seconds=seconds)


class OperatorLease:
    """This operator's Lease (renewed on a thread of its own) and the liveness of others'."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        identity: str,
        *,
        duration: dt.timedelta = DURATION,
        read: Callable[[str, str], Obj | None] | None = None,
        clock: Callable[[], dt.datetime] = now,
    ) -> None:
        self.kube = kube.with_retry(RENEW_RETRY)
        self.namespace = namespace
        self.identity = identity
        self.name = lease_name(identity)
        self.duration = duration
        self.clock = clock
        self._read = read  # the watch-fed cache's Lease reader, when there is one
        self._renewed: dt.datetime | None = None
        self._foreign: dict[tuple[str, str], tuple[float, Obj | None]] = {}  # other namespaces' Leases
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="aftershock-lease", daemon=True)

    # --- ours ----------------------------------------------------------------------------

    def body(self, moment: dt.datetime) -> Obj:
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace, "labels": dict(LABELS)},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": int(self.duration.total_seconds()),
                "acquireTime": _micro(moment),
                "renewTime": _micro(moment),
            },
        }

    def renew(self) -> None:
        """Create or renew the Lease (raises on failure)."""
        moment = self.clock()
        try:
            self.kube.patch_lease(
                self.namespace, self.name, {"holderIdentity": self.identity, "renewTime": _micro(moment)}
            )
        except NotFound:
            self.kube.create_lease(self.namespace, self.body(moment))  # False (409): made meanwhile
        self._renewed = moment

    def start(self) -> None:
        """Renew once (so nothing is claimed before the Lease exists), then keep renewing."""
        self.renew()
        self._thread.start()

    def stop(self, release: bool = True) -> None:
        """Stop renewing; with `release`, delete the Lease so a successor takes over at once."""
        self._stop.set()
        if release:
            try:
                self.kube.delete_lease(self.namespace, self.name)
            except Exception:
                log.exception("could not delete the operator Lease %s/%s", self.namespace, self.name)

    def _loop(self) -> None:
        while not self._stop.wait(RENEW_EVERY.total_seconds()):
            try:
                self.renew()
            except Exception as exc:
                log.warning("operator Lease %s/%s not renewed: %s", self.namespace, self.name, exc)

    def valid(self, moment: dt.datetime) -> bool:
        """Whether others still see us alive with a margin (a renewal period before the end)."""
        if self._renewed is None:
            return False
        return moment - self._renewed < self.duration - RENEW_EVERY

    # --- theirs --------------------------------------------------------------------------

    @property
    def reference(self) -> str:
        """Where others find this operator's Lease (written into the runs it claims)."""
        return f"{self.namespace}/{self.name}"

    def holder_is_live(self, holder: str, lease: str | None, moment: dt.datetime) -> bool:
        """Whether `holder` (with its Lease at `lease`, "namespace/name") is alive. A Lease this
        operator may not read counts as live: a claim it cannot verify is never taken over (the
        run's deadline still ends it)."""
        if holder == self.identity:
            return self.valid(moment)
        namespace, name = self.namespace, lease_name(holder)
        if lease and lease.partition("/")[2] == name:  # only the holder's own Lease counts
            namespace = lease.partition("/")[0]
        try:
            found = self._lease_at(namespace, name)
        except Exception as exc:
            log.warning(
                "cannot read the Lease %s/%s of %s (claim treated as live): %s", namespace, name, holder, exc
            )
            return True
        return is_live(found, holder, moment)

    def _lease_at(self, namespace: str, name: str) -> Obj | None:
        if namespace == self.namespace and self._read is not None:
            return self._read(namespace, name)  # the watch cache: no API call
        cached = self._foreign.get((namespace, name))
        at = time.monotonic()
        if cached is not None and at - cached[0] < FOREIGN_TTL:
            return cached[1]
        found = self.kube.find_lease(namespace, name)
        self._foreign[(namespace, name)] = (at, found)
        return found
