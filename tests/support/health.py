"""Local HTTP services whose health follows the cluster, for steady-state probes.

The operator runs on this machine, so a probe reaches these on 127.0.0.1 (the suite's policy lists
127.0.0.1/32 in endpoints.allow). Health is decided per request from the real API server: e.g. 200
only while the workload's Service has at least N ready endpoints in its EndpointSlices (kept by
the real kube-controller-manager), so a deleted pod really shows as a failing service.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from kubernetes import client


@dataclass
class HealthServer:
    url: str
    answers: list[int] = field(default_factory=list)  # the status of every answer, in order


@contextmanager
def health_server(healthy: Callable[[], bool], *, redirect_to: str | None = None) -> Iterator[HealthServer]:
    """200 while `healthy()`, else 503; with `redirect_to`, every answer is a 302 there."""
    record = HealthServer("")

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self, body: bool) -> None:
            if redirect_to is not None:
                code = 302
            else:
                try:
                    code = 200 if healthy() else 503
                except Exception:
                    code = 500
            record.answers.append(code)
            self.send_response(code)
            if redirect_to is not None:
                self.send_header("Location", redirect_to)
            payload = b"ok\n" if code == 200 else b"unavailable\n"
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if body:
                self.wfile.write(payload)

        def do_GET(self) -> None:
            self._answer(True)

        def do_HEAD(self) -> None:
            self._answer(False)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    record.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield record
    finally:
        server.shutdown()
        server.server_close()


def ready_endpoints(api: client.ApiClient, namespace: str, service: str) -> int:
    """Ready endpoints of a Service, from its EndpointSlices."""
    slices = client.DiscoveryV1Api(api).list_namespaced_endpoint_slice(
        namespace, label_selector=f"kubernetes.io/service-name={service}"
    )
    return sum(
        1 for s in slices.items for e in s.endpoints or [] if e.conditions is not None and e.conditions.ready
    )


def service(name: str, app: str) -> dict[str, object]:
    """A ClusterIP Service selecting the workload's pods (for its EndpointSlices)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": app}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
