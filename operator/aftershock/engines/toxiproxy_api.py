"""A small typed client for Toxiproxy 2.x's HTTP API, behind the endpoint rules.

Requests go to the address the rules approved: the host is resolved here, every address checked
(core/endpoints.py), and the connection made to that address with the original Host header, so a
DNS answer that changes in between cannot send the request elsewhere. Reverting and sweeping pass
no rules: removing a toxic this operator added must never be blocked by a policy edited since.
The PyPI client for Toxiproxy is unmaintained since 2019; the API is five calls.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
from typing import Any, Final
from urllib.parse import quote, urlsplit

from aftershock.core.endpoints import EndpointRules

TIMEOUT: Final = 5.0
BODY_CAP: Final = 1024 * 1024


class Unreachable(Exception):
    """Toxiproxy did not answer (connection refused, timeout, not Toxiproxy)."""


class Refused(Exception):
    """The endpoint rules forbid this endpoint."""


class ToxiproxyAPI:
    def __init__(self, endpoint: str, rules: EndpointRules | None, timeout: float = TIMEOUT) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.rules = rules
        self.timeout = timeout
        parts = urlsplit(self.endpoint)
        if parts.scheme != "http" or not parts.hostname:
            raise Refused(f"{endpoint}: the Toxiproxy API is plain http://HOST:PORT")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.base = parts.path.rstrip("/")

    def _address(self) -> str:
        """The address to connect to, checked against the rules (when there are rules)."""
        if self.rules is not None:
            why = self.rules.refusal(self.endpoint)
            if why is not None:
                raise Refused(why)
        try:
            infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise Unreachable(f"{self.endpoint}: cannot resolve {self.host}: {exc}") from exc
        addresses = [str(info[4][0]) for info in infos]
        if self.rules is not None:
            for address in addresses:
                why = self.rules.address_refusal(
                    self.endpoint, self.host, ipaddress.ip_address(address), self.port
                )
                if why is not None:
                    raise Refused(why)
        return addresses[0]

    def _call(self, method: str, path: str, body: object | None = None) -> tuple[int, Any]:
        address = self._address()
        conn = http.client.HTTPConnection(address, self.port, timeout=self.timeout)
        try:
            payload = json.dumps(body).encode() if body is not None else None
            headers = {"Host": f"{self.host}:{self.port}", "Accept": "application/json"}
            if payload is not None:
                headers["Content-Type"] = "application/json"
            conn.request(method, self.base + path, body=payload, headers=headers)
            resp = conn.getresponse()
            raw = resp.read(BODY_CAP)
        except (OSError, http.client.HTTPException) as exc:
            raise Unreachable(
                f"Toxiproxy at {self.endpoint} did not answer: {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            conn.close()
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = raw.decode(errors="replace")[:200]
        return resp.status, data

    def _ok(self, status: int, data: Any, what: str) -> Any:
        if status >= 400:
            detail = data.get("error") if isinstance(data, dict) else data
            raise Unreachable(f"Toxiproxy at {self.endpoint} refused to {what}: HTTP {status} {detail}")
        return data

    def version(self) -> str:
        status, data = self._call("GET", "/version")
        if status != 200:
            raise Unreachable(f"{self.endpoint} is not a Toxiproxy API (GET /version: HTTP {status})")
        return str(data.get("version") if isinstance(data, dict) else data)

    def proxies(self) -> dict[str, Any]:
        status, data = self._call("GET", "/proxies")
        result = self._ok(status, data, "list proxies")
        return dict(result) if isinstance(result, dict) else {}

    def proxy(self, name: str) -> dict[str, Any] | None:
        status, data = self._call("GET", f"/proxies/{quote(name)}")
        if status == 404:
            return None
        return dict(self._ok(status, data, f"read proxy {name}"))

    def add_toxic(self, proxy: str, toxic: dict[str, Any]) -> bool:
        """True when created, False when a toxic of that name exists (409)."""
        status, data = self._call("POST", f"/proxies/{quote(proxy)}/toxics", toxic)
        if status == 409:
            return False
        self._ok(status, data, f"add toxic {toxic.get('name')} to proxy {proxy}")
        return True

    def toxics(self, proxy: str) -> list[dict[str, Any]]:
        status, data = self._call("GET", f"/proxies/{quote(proxy)}/toxics")
        if status == 404:
            return []
        result = self._ok(status, data, f"list the toxics of proxy {proxy}")
        return [dict(t) for t in result] if isinstance(result, list) else []

    def remove_toxic(self, proxy: str, name: str) -> bool:
        """True when removed, False when it was not there (already reverted, or the proxy is gone)."""
        status, data = self._call("DELETE", f"/proxies/{quote(proxy)}/toxics/{quote(name)}")
        if status == 404:
            return False
        self._ok(status, data, f"remove toxic {name} from proxy {proxy}")
        return True
