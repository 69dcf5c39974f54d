"""kopf's namespace discovery with `--namespace` globs: a namespace seen only in the watch's own
listing (created between kopf's first listing and its watch) must be watched too."""

from __future__ import annotations

import asyncio

from kopf._cogs.structs import references
from kopf._core.reactor import observation

from aftershock.handlers import kopf_namespaces


def _discover(event_type: str | None, name: str) -> set[str]:
    insights = references.Insights()
    event = {"type": event_type, "object": {"metadata": {"name": name}}}

    async def go() -> None:
        await observation.process_discovered_namespace_event(
            raw_event=event, namespaces=["bench-w-*"], insights=insights
        )

    asyncio.run(go())
    return {str(ns) for ns in insights.namespaces}


def test_a_namespace_only_in_the_watch_listing_is_watched() -> None:
    kopf_namespaces.install()
    assert _discover(None, "bench-w-000") == {"bench-w-000"}
    assert _discover("ADDED", "bench-w-001") == {"bench-w-001"}  # live events as before


def test_listing_adds_nothing_outside_the_patterns() -> None:
    kopf_namespaces.install()
    assert _discover(None, "other") == set()
    assert _discover(None, "bench-x-000") == set()


def test_unpatched_kopf_still_drops_the_listing() -> None:
    """If this fails, kopf fixed the race itself and kopf_namespaces can go."""
    insights = references.Insights()
    event = {"type": None, "object": {"metadata": {"name": "bench-w-000"}}}
    asyncio.run(kopf_namespaces._original(raw_event=event, namespaces=["bench-w-*"], insights=insights))
    assert not insights.namespaces
