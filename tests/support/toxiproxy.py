"""The pinned Toxiproxy as a local process, with a proxy in front of a local echo service."""

from __future__ import annotations

import contextlib
import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tests.support.net import echo_server, free_port
from tests.support.tools import bin_dir
from tests.support.waiting import wait_for


@dataclass
class Toxiproxy:
    url: str  # the HTTP API
    proxy: str  # the proxy's name
    listen: int  # the proxy's port on 127.0.0.1

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            text = resp.read().decode()
        return json.loads(text) if text else None

    def toxics(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", f"/proxies/{self.proxy}/toxics")
        return result

    def names(self) -> set[str]:
        return {str(t["name"]) for t in self.toxics()}


@contextmanager
def toxiproxy(
    proxy: str = "backend", *, upstream: str | None = None, listen: int | None = None
) -> Iterator[Toxiproxy]:
    """toxiproxy-server on a free loopback port with one proxy, `proxy` (listening on `listen`, a
    free port by default), in front of `upstream` ("127.0.0.1:PORT"; an echo server by default)."""
    with contextlib.ExitStack() as stack:
        target = upstream or f"127.0.0.1:{stack.enter_context(echo_server())}"
        yield stack.enter_context(_server(proxy, target, listen or free_port()))


@contextmanager
def _server(proxy: str, upstream: str, listen: int) -> Iterator[Toxiproxy]:
    port = free_port()
    server = subprocess.Popen(
        [str(bin_dir("toxiproxy") / "toxiproxy-server"), "-host", "127.0.0.1", "-port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        tp = Toxiproxy(f"http://127.0.0.1:{port}", proxy, listen)

        def up() -> bool:
            try:
                tp.request("GET", "/version")
            except (urllib.error.URLError, ConnectionError):
                return False
            return True

        wait_for(up, timeout=20, message="the Toxiproxy API")
        tp.request("POST", "/proxies", {"name": proxy, "listen": f"127.0.0.1:{listen}", "upstream": upstream})
        yield tp
    finally:
        server.terminate()
        server.wait(timeout=10)
