"""The pinned toxiproxy build runs on loopback and its latency toxic really delays traffic."""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import time
import urllib.request
from collections.abc import Iterator

import pytest

from tests.support.net import echo_server, free_port
from tests.support.tools import bin_dir, versions
from tests.support.waiting import wait_for


def _request(method: str, url: str, body: dict[str, object] | None = None) -> str:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        text: str = resp.read().decode()
    return text


@pytest.fixture
def toxiproxy() -> Iterator[str]:
    port = free_port()
    server = subprocess.Popen(
        [str(bin_dir("toxiproxy") / "toxiproxy-server"), "-host", "127.0.0.1", "-port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        version = wait_for(lambda: _request("GET", f"{url}/version"), timeout=20, message="toxiproxy API")
        assert json.loads(version)["version"] == versions()["TOXIPROXY_VERSION"]
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def _round_trips(port: int, count: int = 5) -> list[float]:
    times = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        for i in range(count):
            message = f"ping-{i}".encode()
            started = time.perf_counter()
            conn.sendall(message)
            received = b""
            while len(received) < len(message):
                received += conn.recv(4096)
            times.append(time.perf_counter() - started)
            assert received == message
    return times


def test_latency_toxic_delays_a_proxied_connection(toxiproxy: str) -> None:
    listen_port = free_port()
    with echo_server() as upstream:
        _request(
            "POST",
            f"{toxiproxy}/proxies",
            {"name": "echo", "listen": f"127.0.0.1:{listen_port}", "upstream": f"127.0.0.1:{upstream}"},
        )
        baseline = statistics.median(_round_trips(listen_port))
        _request(
            "POST",
            f"{toxiproxy}/proxies/echo/toxics",
            {
                "name": "slow",
                "type": "latency",
                "stream": "downstream",
                "attributes": {"latency": 300, "jitter": 0},
            },
        )
        delayed = statistics.median(_round_trips(listen_port))
        _request("DELETE", f"{toxiproxy}/proxies/echo/toxics/slow")
        restored = statistics.median(_round_trips(listen_port))

    assert baseline < 0.1
    assert delayed >= baseline + 0.25, f"latency toxic added only {delayed - baseline:.3f}s"
    assert restored < 0.1
