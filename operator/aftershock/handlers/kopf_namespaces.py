"""A fix for a race in kopf's namespace discovery (kopf 1.45; needed with `--namespace` globs).

kopf lists the namespaces once, then starts a watch on them that begins with a listing of its own,
and ignores that second listing. A namespace created between the two listings is never watched
until it changes again: experiments and runs in it get no handler, so their schedules silently
never fire (seen in CI, and at scale for the first namespaces a benchmark created right after the
operator started). Counting the second listing — and every re-listing after a watch restart —
as discovered namespaces closes the gap: adding a namespace kopf already knows changes nothing.
"""

from __future__ import annotations

from typing import Any

from kopf._core.reactor import observation

_original = observation.process_discovered_namespace_event


async def process_namespace_event(*, raw_event: Any, namespaces: Any, insights: Any, **kwargs: Any) -> None:
    if raw_event.get("type") is not None:
        await _original(raw_event=raw_event, namespaces=namespaces, insights=insights, **kwargs)
        return
    async with insights.revised:
        observation.revise_namespaces(raw_events=[raw_event], insights=insights, namespaces=namespaces)
        insights.revised.notify_all()


def install() -> None:
    """Patch kopf's observer (looked up by name when it starts its watch, so before `kopf.run`)."""
    observation.process_discovered_namespace_event = process_namespace_event
