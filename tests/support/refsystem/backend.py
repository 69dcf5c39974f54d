"""The reference system's backend: answers GET /work after a fixed service time, counts what it served.

It is deliberately well-behaved (no failures of its own, unbounded threads): every fault the
frontend sees comes from the Toxiproxy proxy in between, so the requests the backend counts
(`refsys_backend_served_total`) measure exactly how much work the frontend's retries cause.

Run as `python -m tests.support.refsystem backend --port PORT [--service-time SECONDS]`.
"""

from __future__ import annotations

import argparse
import time
from http.server import BaseHTTPRequestHandler

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest

from tests.support.refsystem._server import LoopbackServer


class Backend:
    """An HTTP server on 127.0.0.1:`port` (0: any free port) with its own metrics registry."""

    def __init__(self, port: int = 0, *, service_time: float = 0.01) -> None:
        self.service_time = service_time
        self.registry = CollectorRegistry()
        self.served = Counter(
            "refsys_backend_served", "Requests to /work the backend answered.", registry=self.registry
        )
        self.inflight = Gauge(
            "refsys_backend_inflight_requests", "Requests to /work being served.", registry=self.registry
        )
        self.server = LoopbackServer(port, _handler(self))

    @property
    def address(self) -> str:
        """host:port, e.g. the upstream of a Toxiproxy proxy."""
        return self.server.url.removeprefix("http://")

    def work(self) -> bytes:
        with self.inflight.track_inprogress():
            time.sleep(self.service_time)
        self.served.inc()
        return b"ok\n"

    def serve_forever(self) -> None:
        self.server.serve_forever(poll_interval=0.1)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(backend: Backend) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.0: one request per connection, so each frontend attempt is a new proxied connection
        server_version = "refsys-backend"

        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._answer(200, generate_latest(backend.registry), CONTENT_TYPE_LATEST)
            elif self.path.split("?", 1)[0] == "/work":
                self._answer(200, backend.work(), "text/plain")
            else:
                self._answer(404, b"not found\n", "text/plain")

        def _answer(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # one line per request would drown the logs under load

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--service-time", type=float, default=0.01)
    args = parser.parse_args(argv)
    Backend(args.port, service_time=args.service_time).serve_forever()


if __name__ == "__main__":
    main()
