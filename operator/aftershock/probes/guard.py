"""An HTTP client that connects only where the endpoint rules allow (core/endpoints.py).

The URL is judged as written before each request and each redirect hop; the address a name
resolves to is judged again when the connection is made (a resolver that refuses), so DNS that
changes between the check and the request cannot lead the operator elsewhere. Bodies are read up
to a cap; redirects are followed by hand, at most a few hops, each judged like the first URL.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urljoin

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from aftershock.core.endpoints import EndpointRules

BODY_CAP: Final = 64 * 1024
MAX_REDIRECTS: Final = 5
REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})


class Refused(Exception):
    """The endpoint rules forbid this connection."""


class _GuardedResolver(AbstractResolver):
    def __init__(self, rules: EndpointRules) -> None:
        self.rules = rules
        self.inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        for result in results:
            address = ipaddress.ip_address(result["host"])
            why = self.rules.address_refusal(f"{host}:{port}", host.lower().rstrip("."), address, port)
            if why is not None:
                raise Refused(why)
        return results

    async def close(self) -> None:
        await self.inner.close()


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    seconds: float
    url: str


class GuardedClient:
    """One per run: an aiohttp session whose every connection passes the run's endpoint rules."""

    def __init__(self, rules: EndpointRules) -> None:
        self.rules = rules
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                resolver=_GuardedResolver(self.rules), limit=16, force_close=True
            )
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def get(
        self, url: str, *, method: str = "GET", timeout: float, params: dict[str, Any] | None = None
    ) -> Response:
        """Request `url` (following allowed redirects); Refused when the rules forbid any hop,
        asyncio.TimeoutError / aiohttp.ClientError when the endpoint does not answer."""
        started = time.monotonic()
        deadline = aiohttp.ClientTimeout(total=timeout)
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            why = self.rules.refusal(current)
            if why is not None:
                raise Refused(why if current == url else f"redirect to {current} refused: {why}")
            async with self._client().request(
                method, current, params=params, allow_redirects=False, timeout=deadline
            ) as resp:
                location = resp.headers.get("Location")
                if resp.status in REDIRECTS and location:
                    current, params = urljoin(current, location), None
                    continue
                body = await resp.content.read(BODY_CAP)
                return Response(resp.status, body, time.monotonic() - started, current)
        raise Refused(f"more than {MAX_REDIRECTS} redirects from {url}")
