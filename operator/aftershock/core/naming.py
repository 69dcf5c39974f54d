"""Names, labels and keys the operator stamps on objects.

A run's name is ``<experiment>-<scheduled unix seconds>``: deterministic, so creating the same
slot twice answers 409 Conflict and a slot can never fire twice (the CronJob pattern). Experiment
names are limited to 52 characters, as CronJob names are, so that the run name (52 + "-" + 10
digits = 63) also fits a label value and a DNS-1123 label.

Names and label values derived from anything a person wrote (a hand-made run's name may be 253
characters) go through ``bounded_name`` or ``label_value``: when the input does not fit, a prefix
and a hash of the whole input, so two inputs never share a name by truncation and the result never
ends in ``-`` or ``.``. Whether an object of such a name is ours is decided by its run label
(``carries_run_label``), never by its name.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aftershock import GROUP

ANNOTATION_PREFIX = GROUP  # kopf's progress/diff-base storage prefix: our own, never kopf's default
LABEL_RUN = f"{GROUP}/run"  # value: the run's uid, on every artifact a fault creates
LABEL_RUN_NAMESPACE = f"{GROUP}/run-namespace"  # beside LABEL_RUN: whose operator the artifact is
# value: the run's uid, on the pods a run chose for a tool that selects by label (Litmus's
# pod-network-partition). Not LABEL_RUN: Litmus copies its engine's labels, LABEL_RUN among them,
# onto its own pods, which a selector on LABEL_RUN would then cut off too
LABEL_TARGET_OF = f"{GROUP}/target-of"
LABEL_EXPERIMENT = f"{GROUP}/experiment"  # value: the experiment's name
FINALIZER = f"{GROUP}/finalizer"
LABEL_TRIGGER = f"{GROUP}/trigger"  # schedule | manual | once: manual runs never count as slots
SKIP_REASON_ANNOTATION = f"{GROUP}/skip-reason"  # a run created only to record a skipped slot
SKIP_MESSAGE_ANNOTATION = f"{GROUP}/skip-message"

MAX_EXPERIMENT_NAME_LENGTH = 52
MAX_SUBDOMAIN_LENGTH = 253
MAX_LABEL_LENGTH = 63

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL = re.compile(rf"^{_LABEL}$")
_DNS1123_SUBDOMAIN = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
_RUN_NAME = re.compile(r"^(?P<experiment>.+)-(?P<ts>[0-9]{1,12})$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_NOT_IN_LABEL_VALUE = re.compile(r"[^-A-Za-z0-9_.]")
HASH_LENGTH = 8
"""Hex digits of SHA-256 appended to a name or value that had to be shortened (32 bits: a clash
needs tens of thousands of long names sharing a prefix)."""


def short_hash(text: str) -> str:
    """A stable 8-hex-digit digest of `text`."""
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_LENGTH]


def bounded_name(name: str, limit: int = MAX_SUBDOMAIN_LENGTH) -> str:
    """`name` when it fits in `limit`; otherwise its head, ``-`` and a hash of all of it.

    For names built from valid names (a run name plus a prefix): the head is cut back to end
    alphanumeric, so the result is a DNS-1123 subdomain (a label, if the input had no dots)
    whenever the input was one apart from its length.
    """
    if limit <= HASH_LENGTH:
        raise ValueError(f"a name limit of {limit} leaves no room for the hash")
    if len(name) <= limit:
        return name
    head = name[: limit - HASH_LENGTH - 1].rstrip("-.")
    return f"{head}-{short_hash(name)}" if head else short_hash(name)


def is_label_value(value: str) -> bool:
    """Valid label value: at most 63 of [-A-Za-z0-9_.], starting and ending alphanumeric, or empty."""
    return len(value) <= MAX_LABEL_LENGTH and bool(_LABEL_VALUE.match(value))


def label_value(value: str) -> str:
    """`value` as a valid label value: itself when it is one; otherwise its characters that may
    appear in a label value, cut to fit, with ``-`` and a hash of the original appended (so
    different inputs stay different)."""
    if is_label_value(value):
        return value
    head = _NOT_IN_LABEL_VALUE.sub("-", value)[: MAX_LABEL_LENGTH - HASH_LENGTH - 1]
    head = head.strip("-_.")
    return f"{head}-{short_hash(value)}" if head else short_hash(value)


def run_artifact_name(
    run_name: str,
    run_namespace: str,
    target_namespace: str,
    *,
    prefix: str = "",
    limit: int = MAX_SUBDOMAIN_LENGTH,
) -> str:
    """The name of an object a run creates in its target namespace: ``<prefix><run name>``, with a
    hash of the run's namespace when the target is elsewhere (runs of the same name in two
    namespaces never share an object), bounded to `limit`."""
    base = f"{prefix}{run_name}"
    if run_namespace != target_namespace:
        base = f"{base}-{short_hash(run_namespace)}"
    return bounded_name(base, limit)


def carries_run_label(obj: Mapping[str, Any] | None, run_uid: str) -> bool:
    """Whether `obj` was made by the run with this uid: it carries ``aftershock.dev/run=<uid>``.

    Objects of a run's artifact names that lack the label belong to someone else (a tenant can
    create an object of any name in its namespace): a run never adopts, changes or deletes them.
    """
    if obj is None or not run_uid:
        return False
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(LABEL_RUN) == run_uid)


def is_dns1123_subdomain(name: str) -> bool:
    """Valid Kubernetes object name (lower-case alphanumerics, '-', '.', <= 253 chars)."""
    return len(name) <= MAX_SUBDOMAIN_LENGTH and bool(_DNS1123_SUBDOMAIN.match(name))


def is_dns1123_label(name: str) -> bool:
    """Valid DNS-1123 label (no dots, <= 63 chars), e.g. for namespaces."""
    return len(name) <= MAX_LABEL_LENGTH and bool(_DNS1123_LABEL.match(name))


def validate_experiment_name(name: str) -> None:
    """Raise ValueError if `name` cannot be the prefix of run names."""
    if not name:
        raise ValueError("experiment name must not be empty")
    if len(name) > MAX_EXPERIMENT_NAME_LENGTH:
        raise ValueError(
            f"experiment name {name!r} is {len(name)} characters; at most {MAX_EXPERIMENT_NAME_LENGTH} "
            "are allowed so that run names (<name>-<unix seconds>) stay within 63"
        )
    if not is_dns1123_subdomain(name):
        raise ValueError(
            f"experiment name {name!r} is not a valid DNS-1123 subdomain "
            "(lower-case letters, digits, '-' and '.', starting and ending alphanumeric)"
        )


def run_name(experiment: str, scheduled: datetime) -> str:
    """``<experiment>-<scheduled time in unix seconds>``; sub-second parts are dropped."""
    validate_experiment_name(experiment)
    if scheduled.tzinfo is None or scheduled.utcoffset() is None:
        raise ValueError(f"scheduled time must be timezone-aware, got naive {scheduled.isoformat()}")
    seconds = int(scheduled.timestamp())
    if seconds < 0:
        raise ValueError(f"scheduled time {scheduled.isoformat()} is before 1970-01-01")
    name = f"{experiment}-{seconds}"
    if not is_dns1123_subdomain(name):  # unreachable given the checks above; a guard against drift
        raise ValueError(f"run name {name!r} is not a valid DNS-1123 subdomain")
    return name


def parse_run_name(name: str) -> tuple[str, datetime] | None:
    """Split a scheduled run's name into (experiment, scheduled time in UTC); None if it has not
    that shape (e.g. a run a person created with a name of their own)."""
    match = _RUN_NAME.match(name)
    if match is None:
        return None
    return match["experiment"], datetime.fromtimestamp(int(match["ts"]), tz=UTC)
