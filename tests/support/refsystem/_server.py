"""The HTTP server both services use: threaded, loopback only, quiet about clients that hang up."""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOOPBACK = "127.0.0.1"


class LoopbackServer(ThreadingHTTPServer):
    """A thread per connection on 127.0.0.1:`port` (0: any free port).

    The listen backlog is raised from socketserver's 5: bursts of retries or of load must queue in
    the kernel, not be refused (a refused SYN is retried by the client only after a second). A
    client that resets its connection (the load generator stopping, a timed-out attempt) is not
    an error worth a traceback in the log.
    """

    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, port: int, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__((LOOPBACK, port), handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def handle_error(self, request: object, client_address: object) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]
