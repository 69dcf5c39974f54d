"""The http probe: a GET or HEAD that must answer with an expected status, in time, with text."""

from __future__ import annotations

import datetime as dt

import aiohttp

from aftershock.api.durations import parse_duration
from aftershock.api.steady_state import HttpProbe
from aftershock.core.probes import Answer
from aftershock.probes.guard import GuardedClient, Refused


async def check(probe: HttpProbe, client: GuardedClient, now: dt.datetime) -> Answer:
    timeout = parse_duration(probe.timeout).total_seconds()
    try:
        resp = await client.get(probe.url, method=str(probe.method), timeout=timeout)
    except Refused as exc:
        return Answer(ok=False, detail=f"refused: {exc}", at=now, refused=True)
    except TimeoutError:
        return Answer(ok=False, detail=f"no answer within {probe.timeout}", at=now, latency_ms=timeout * 1000)
    except aiohttp.ClientError as exc:
        return Answer(ok=False, detail=f"connection failed: {type(exc).__name__}: {exc}"[:300], at=now)
    millis = resp.seconds * 1000
    said = f"HTTP {resp.status} in {millis:.0f} ms"
    if resp.status not in probe.expect_status:
        return Answer(ok=False, detail=f"{said}, expected {probe.expect_status}", at=now, latency_ms=millis)
    if probe.max_latency is not None and resp.seconds > parse_duration(probe.max_latency).total_seconds():
        return Answer(
            ok=False, detail=f"{said}, slower than maxLatency {probe.max_latency}", at=now, latency_ms=millis
        )
    if probe.body_contains is not None and probe.body_contains.encode() not in resp.body:
        return Answer(
            ok=False, detail=f"{said}, body lacks {probe.body_contains!r}", at=now, latency_ms=millis
        )
    return Answer(ok=True, detail=said, at=now, latency_ms=millis)
