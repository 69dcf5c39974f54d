"""The prometheus probe (and gate): an instant query whose every sample must stay within bounds."""

from __future__ import annotations

import datetime as dt
import json
import math

import aiohttp

from aftershock.api.analysis import PrometheusSource
from aftershock.api.durations import parse_duration
from aftershock.api.steady_state import PrometheusQuery
from aftershock.core.probes import Answer
from aftershock.probes.guard import GuardedClient, Refused


def values_of(payload: object) -> list[float] | str:
    """The sample values of a /api/v1/query answer, or why there are none."""
    if not isinstance(payload, dict) or payload.get("status") != "success":
        error = payload.get("error") if isinstance(payload, dict) else None
        return f"query failed: {error or 'not a Prometheus answer'}"
    data = payload.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar" and isinstance(result, list) and len(result) == 2:
        return [float(result[1])]
    if kind == "vector" and isinstance(result, list):
        return [
            float(sample["value"][1]) for sample in result if isinstance(sample, dict) and "value" in sample
        ]
    return f"the query returned {kind}, not an instant vector or scalar"


def within(query: PrometheusQuery, value: float) -> bool:
    if math.isnan(value):
        return False
    if query.below is not None and not value < query.below:
        return False
    return query.above is None or value > query.above


async def check(query: PrometheusQuery, client: GuardedClient, now: dt.datetime) -> Answer:
    timeout = parse_duration(query.timeout).total_seconds()
    url = query.url.rstrip("/") + "/api/v1/query"
    try:
        resp = await client.get(url, timeout=timeout, params={"query": query.query})
    except Refused as exc:
        return Answer(ok=False, detail=f"refused: {exc}", at=now, refused=True)
    except TimeoutError:
        return Answer(ok=False, detail=f"Prometheus did not answer within {query.timeout}", at=now)
    except aiohttp.ClientError as exc:
        return Answer(ok=False, detail=f"Prometheus unreachable: {type(exc).__name__}: {exc}"[:300], at=now)
    try:
        values = values_of(json.loads(resp.body))
    except (ValueError, TypeError, KeyError) as exc:
        values = f"unreadable answer (HTTP {resp.status}): {exc}"
    if isinstance(values, str):
        return Answer(ok=False, detail=values, at=now)
    if not values:
        return Answer(
            ok=False,
            detail=f"no data (must be {query.bounds_text()}; write `or vector(0)` if absence means 0)",
            at=now,
        )
    shown = ", ".join(f"{v:g}" for v in values[:5]) + (" …" if len(values) > 5 else "")
    bad = [v for v in values if not within(query, v)]
    if bad:
        return Answer(ok=False, detail=f"{shown} (must be {query.bounds_text()})", at=now)
    return Answer(ok=True, detail=f"{shown} ({query.bounds_text()})", at=now)


async def read(source: PrometheusSource, client: GuardedClient) -> tuple[float | None, str | None, bool]:
    """The largest sample of an analysis query: (value, why there is none, refused by the rules)."""
    timeout = parse_duration(source.timeout).total_seconds()
    url = source.url.rstrip("/") + "/api/v1/query"
    try:
        resp = await client.get(url, timeout=timeout, params={"query": source.query})
    except Refused as exc:
        return None, f"refused: {exc}", True
    except (TimeoutError, aiohttp.ClientError) as exc:
        return None, f"Prometheus unreachable: {type(exc).__name__}: {exc}"[:300], False
    try:
        values = values_of(json.loads(resp.body))
    except (ValueError, TypeError, KeyError) as exc:
        return None, f"unreadable answer (HTTP {resp.status}): {exc}"[:300], False
    if isinstance(values, str):
        return None, values[:300], False
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return None, "no data", False
    return max(finite), None, False
