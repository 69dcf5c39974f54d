"""Names, labels and keys the operator stamps on objects.

A run's name is ``<experiment>-<scheduled unix seconds>``: deterministic, so creating the same
slot twice answers 409 Conflict and a slot can never fire twice (the CronJob pattern). Experiment
names are limited to 52 characters, as CronJob names are, so that the run name (52 + "-" + 10
digits = 63) also fits a label value and a DNS-1123 label.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from aftershock import GROUP

ANNOTATION_PREFIX = GROUP  # kopf's progress/diff-base storage prefix: our own, never kopf's default
LABEL_RUN = f"{GROUP}/run"  # value: the run's uid, on every artifact a fault creates
LABEL_RUN_NAMESPACE = f"{GROUP}/run-namespace"  # beside LABEL_RUN: whose operator the artifact is
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
