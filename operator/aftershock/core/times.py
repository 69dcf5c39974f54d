"""Kubernetes timestamps (RFC 3339, usually with a Z) to aware datetimes."""

from __future__ import annotations

import datetime as dt


def parse_time(value: str | None) -> dt.datetime | None:
    """None for a missing value; always timezone-aware (UTC when the text has no offset)."""
    if not value:
        return None
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
