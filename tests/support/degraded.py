"""A degraded API server: Toxiproxy between a client (the operator) and kube-apiserver.

`degraded_apiserver` starts the pinned toxiproxy-server on loopback, makes one TCP proxy whose
upstream is the API server of a kubeconfig, and writes a second kubeconfig pointing at the proxy.
TLS passes through untouched, so the client still verifies the API server's own certificate; the
proxy only delays, cuts or swallows the bytes. Everything else (the tests' own reads and writes)
keeps using the undegraded kubeconfig.

Toxics are set through Toxiproxy's HTTP API (plain urllib and json):

- `latency(ms)`: every chunk the API server sends arrives `ms` later, so every call takes longer;
- `reset_peer(toxicity, after_ms)`: that share of connections is reset `after_ms` after the API
  server first answers on it (0: at once), cutting requests mid-flight; `reroll` re-draws which
  connections are hit, so long-lived keep-alive connections do not simply escape it;
- `blackhole()`: `timeout` toxics in both directions swallow every byte and close nothing, like
  a network that drops packets; requests hang until the client's own timeouts fire. Removing the
  toxics closes the connections they held, as Toxiproxy's timeout toxic does on cleanup;
- `disabled()`: the proxy stops listening and drops its connections (connection refused).
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import ssl
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from tests.support.net import free_port
from tests.support.tools import built
from tests.support.waiting import wait_for

LOOPBACK = "127.0.0.1"
STREAMS = ("upstream", "downstream")  # client -> API server, API server -> client


class ToxiproxyError(RuntimeError):
    """Toxiproxy's API refused a request (the message carries its answer)."""


@dataclass
class Toxiproxy:
    """The HTTP API of one toxiproxy-server."""

    url: str

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.url}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as exc:
            raise ToxiproxyError(
                f"{method} {path}: {exc.code} {exc.read().decode(errors='replace')}"
            ) from exc
        return json.loads(text) if text.strip().startswith(("{", "[")) else text

    def version(self) -> str:
        answer = self.call("GET", "/version")  # 2.12 answers {"version": ...}, older releases plain text
        return str(answer.get("version") if isinstance(answer, dict) else answer).strip()

    def create_proxy(self, name: str, listen: str, upstream: str) -> None:
        self.call("POST", "/proxies", {"name": name, "listen": listen, "upstream": upstream, "enabled": True})

    def set_enabled(self, proxy: str, enabled: bool) -> None:
        self.call("POST", f"/proxies/{proxy}", {"enabled": enabled})

    def add_toxic(
        self,
        proxy: str,
        name: str,
        kind: str,
        *,
        stream: str = "downstream",
        toxicity: float = 1.0,
        **attributes: int | float,
    ) -> None:
        self.call(
            "POST",
            f"/proxies/{proxy}/toxics",
            {"name": name, "type": kind, "stream": stream, "toxicity": toxicity, "attributes": attributes},
        )

    def remove_toxic(self, proxy: str, name: str) -> None:
        self.call("DELETE", f"/proxies/{proxy}/toxics/{name}")

    def toxics(self, proxy: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.call("GET", f"/proxies/{proxy}/toxics")
        return found


@dataclass
class DegradedApiServer:
    """One proxy in front of the API server, the kubeconfig that uses it, and its toxics."""

    toxiproxy: Toxiproxy
    proxy: str
    listen: str  # host:port the proxy listens on
    upstream: str  # host:port of the API server
    kubeconfig: Path
    tls_server_name: str | None  # set when the certificate does not cover the proxy's address

    def latency(self, ms: int, jitter: int = 0, name: str = "latency") -> str:
        """Delay every chunk the API server sends by `ms` (± `jitter`): every call is slower."""
        self.toxiproxy.add_toxic(self.proxy, name, "latency", stream="downstream", latency=ms, jitter=jitter)
        return name

    def reset_peer(self, toxicity: float, after_ms: int = 0, name: str = "reset") -> str:
        """Reset (TCP RST) a `toxicity` share of connections `after_ms` after the API server first
        sends on them: requests in flight on such a connection fail, or their answer is lost."""
        self.toxiproxy.add_toxic(
            self.proxy, name, "reset_peer", stream="downstream", toxicity=toxicity, timeout=after_ms
        )
        return name

    def reroll(self, name: str) -> None:
        """Re-add a toxic: Toxiproxy draws its toxicity per connection when the toxic is added, so
        this picks anew which of the open connections it hits."""
        current = [t for t in self.toxiproxy.toxics(self.proxy) if t["name"] == name]
        if not current:
            raise ToxiproxyError(f"no toxic {name} on proxy {self.proxy}")
        toxic = current[0]
        self.toxiproxy.remove_toxic(self.proxy, name)
        self.toxiproxy.add_toxic(
            self.proxy,
            name,
            toxic["type"],
            stream=toxic["stream"],
            toxicity=toxic["toxicity"],
            **toxic["attributes"],
        )

    def blackhole(self, name: str = "blackhole") -> list[str]:
        """Swallow every byte in both directions, close nothing (a `timeout` toxic with timeout 0)."""
        names = [f"{name}-{stream}" for stream in STREAMS]
        for toxic, stream in zip(names, STREAMS, strict=True):
            self.toxiproxy.add_toxic(self.proxy, toxic, "timeout", stream=stream, timeout=0)
        return names

    def remove(self, *names: str) -> None:
        for name in names:
            self.toxiproxy.remove_toxic(self.proxy, name)

    def clear(self) -> None:
        """No toxics, proxy enabled: the API server as it is."""
        self.toxiproxy.set_enabled(self.proxy, True)
        for toxic in self.toxiproxy.toxics(self.proxy):
            self.toxiproxy.remove_toxic(self.proxy, toxic["name"])

    @contextlib.contextmanager
    def toxic(self, *names: str) -> Iterator[None]:
        """Remove the named toxics when the block ends (also on failure)."""
        try:
            yield
        finally:
            self.remove(*names)

    @contextlib.contextmanager
    def disabled(self) -> Iterator[None]:
        """The proxy closes its listener and every connection: the API server refuses connections."""
        self.toxiproxy.set_enabled(self.proxy, False)
        try:
            yield
        finally:
            self.toxiproxy.set_enabled(self.proxy, True)


@contextlib.contextmanager
def toxiproxy_server(log_path: Path) -> Iterator[Toxiproxy]:
    """A toxiproxy-server of the pinned version on loopback; stopped when the block ends."""
    port = free_port()
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [str(built("toxiproxy") / "toxiproxy-server"), "-host", LOOPBACK, "-port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    api = Toxiproxy(f"http://{LOOPBACK}:{port}")
    try:
        wait_for(lambda: process.poll() is not None or api.version(), timeout=20, message="the toxiproxy API")
        if process.poll() is not None:
            raise RuntimeError(f"toxiproxy-server exited with {process.returncode}: {log_path.read_text()}")
        yield api
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _current_cluster(config: dict[str, Any]) -> dict[str, Any]:
    contexts = {c["name"]: c["context"] for c in config.get("contexts") or []}
    name = config.get("current-context") or next(iter(contexts), None)
    cluster_name = contexts[name]["cluster"] if name in contexts else config["clusters"][0]["name"]
    entry: dict[str, Any] = next(c for c in config["clusters"] if c["name"] == cluster_name)["cluster"]
    return entry


def _absolute_paths(config: dict[str, Any], base: Path) -> None:
    """Files a kubeconfig names relative to itself, made absolute (the copy lives elsewhere)."""
    for section, keys in (
        ("clusters", ("certificate-authority",)),
        ("users", ("client-certificate", "client-key", "tokenFile")),
    ):
        for item in config.get(section) or []:
            body = item.get(section[:-1]) or {}
            for key in keys:
                if body.get(key) and not Path(body[key]).is_absolute():
                    body[key] = str((base / body[key]).resolve())


def _ca_context(cluster: dict[str, Any]) -> ssl.SSLContext | None:
    """A client context trusting the kubeconfig's CA; None when it does not verify at all."""
    if cluster.get("insecure-skip-tls-verify"):
        return None
    context = ssl.create_default_context()
    if cluster.get("certificate-authority-data"):
        context.load_verify_locations(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    elif cluster.get("certificate-authority"):
        context.load_verify_locations(cafile=cluster["certificate-authority"])
    return context


def certificate_covers(cluster: dict[str, Any], host: str, port: int, name: str) -> bool:
    """Whether the API server at host:port presents a certificate valid for `name` (verified
    against the kubeconfig's CA, as the client will); True when the kubeconfig skips verification."""
    context = _ca_context(cluster)
    if context is None:
        return True
    try:
        with (
            socket.create_connection((host, port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=name),
        ):
            return True
    except ssl.SSLCertVerificationError as exc:
        if exc.verify_code == 62:  # X509_V_ERR_HOSTNAME_MISMATCH (IP addresses included)
            return False
        raise


def proxied_kubeconfig(source: Path, listen: str, out: Path) -> tuple[dict[str, Any], str | None]:
    """Write a copy of `source` whose current cluster's server is https://`listen`.

    Returns the original cluster entry and the `tls-server-name` set, if the API server's
    certificate does not cover the proxy's address. Note: the kubernetes client honours
    tls-server-name, kopf's own connection does not; on the local cluster it is not needed.
    """
    config = yaml.safe_load(source.read_text())
    _absolute_paths(config, source.parent)
    cluster = _current_cluster(config)
    original = dict(cluster)
    server = urlsplit(cluster["server"])
    if server.scheme != "https" or not server.hostname:
        raise ValueError(f"expected an https server in {source}, found {cluster['server']!r}")
    listen_host = listen.rsplit(":", 1)[0]
    server_name = None
    if not certificate_covers(cluster, server.hostname, server.port or 443, listen_host):
        server_name = cluster.get("tls-server-name") or server.hostname
        cluster["tls-server-name"] = server_name
    cluster["server"] = f"https://{listen}"
    out.write_text(yaml.safe_dump(config))
    return original, server_name


@contextlib.contextmanager
def degraded_apiserver(
    kubeconfig: Path, workdir: Path, proxy: str = "kube-apiserver"
) -> Iterator[DegradedApiServer]:
    """Toxiproxy in front of `kubeconfig`'s API server; yields the proxy and its kubeconfig."""
    config = yaml.safe_load(kubeconfig.read_text())
    server = urlsplit(_current_cluster(config)["server"])
    upstream = f"{server.hostname}:{server.port or 443}"
    listen = f"{LOOPBACK}:{free_port()}"
    workdir.mkdir(parents=True, exist_ok=True)
    with toxiproxy_server(workdir / "toxiproxy.log") as api:
        api.create_proxy(proxy, listen, upstream)
        out = Path(tempfile.mkstemp(prefix="degraded-", suffix=".kubeconfig", dir=workdir)[1])
        _, server_name = proxied_kubeconfig(kubeconfig, listen, out)
        yield DegradedApiServer(api, proxy, listen, upstream, out, server_name)
