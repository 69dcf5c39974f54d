"""Go-style duration strings ("90s", "5m", "1h30m", "500ms").

Kubernetes users write durations the way Go's ``time.ParseDuration`` reads them, and the CRD's
CEL rules compare them with ``duration()``, which uses the same grammar. The pattern here is a
strict subset of that grammar (no sign, no bare ``0``, no ``µs``), so everything the schema
accepts, both CEL and this module can parse.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Final

DURATION_PATTERN: Final = r"^([0-9]+(\.[0-9]+)?(h|ms|us|ns|m|s))+$"
"""Anchored, non-empty, unsigned: one or more ``<number><unit>`` groups, units h/m/s/ms/us/ns."""

DURATION_MAX_LENGTH: Final = 32
"""Longest duration string the schema accepts; bounds the cost of CEL rules that parse it."""

_DURATION_RE: Final = re.compile(DURATION_PATTERN)
_PART_RE: Final = re.compile(r"([0-9]+(?:\.[0-9]+)?)(h|ms|us|ns|m|s)")
_NANOS_PER_UNIT: Final = {
    "h": 3_600_000_000_000,
    "m": 60_000_000_000,
    "s": 1_000_000_000,
    "ms": 1_000_000,
    "us": 1_000,
    "ns": 1,
}
_MAX_NANOS: Final = 2**63 - 1  # Go's time.Duration is an int64 of nanoseconds; CEL shares the limit.
_HINT: Final = "use a number and a unit (h, m, s, ms, us, ns) such as 90s, 5m, 1h30m or 500ms"


def parse_duration(text: str) -> timedelta:
    """Parse a Go-style duration; raise ValueError saying what is wrong and what is expected.

    Sub-microsecond parts are truncated: timedelta cannot hold nanoseconds.
    """
    if not isinstance(text, str):
        raise ValueError(f"a duration must be a string, got {type(text).__name__}: {_HINT}")
    if not text:
        raise ValueError(f"a duration must not be empty: {_HINT}")
    if len(text) > DURATION_MAX_LENGTH:
        raise ValueError(f"duration {text!r} is longer than {DURATION_MAX_LENGTH} characters")
    if not _DURATION_RE.fullmatch(text):
        raise ValueError(f"invalid duration {text!r}: {_HINT}")
    nanos = Decimal(0)
    for number, unit in _PART_RE.findall(text):
        nanos += Decimal(number) * _NANOS_PER_UNIT[unit]
    if nanos > _MAX_NANOS:
        raise ValueError(f"duration {text!r} is out of range: at most about 2562047h")
    return timedelta(microseconds=int(nanos // 1000))


def format_duration(value: timedelta) -> str:
    """Format a non-negative timedelta compactly ("1h30m", "90s" as "1m30s", "500ms", "0s").

    The result always matches DURATION_PATTERN and parses back to the same value.
    """
    if value < timedelta(0):
        raise ValueError(f"durations cannot be negative, got {value}")
    micros = value // timedelta(microseconds=1)
    if micros == 0:
        return "0s"
    hours, micros = divmod(micros, 3_600_000_000)
    minutes, micros = divmod(micros, 60_000_000)
    seconds, micros = divmod(micros, 1_000_000)
    millis, micros = divmod(micros, 1_000)
    parts = [(hours, "h"), (minutes, "m"), (seconds, "s"), (millis, "ms"), (micros, "us")]
    return "".join(f"{amount}{unit}" for amount, unit in parts if amount)
