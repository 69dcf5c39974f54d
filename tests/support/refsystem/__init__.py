"""A reference system for judging clients under dependency faults, on loopback, without a cluster.

aftershock injects faults into a dependency through Toxiproxy and judges from Prometheus whether
the client caused a retry storm, lacked backpressure or lacked timeouts. Its tests need a client
that demonstrably has those flaws and one that demonstrably does not, under the same fault:

- backend.py: an HTTP service (GET /work after a fixed service time) that counts what it served;
- frontend.py: GET /checkout calls the backend through the proxy; a `naive` build (no timeouts,
  immediate retries, unbounded queue) and a `resilient` one (timeouts and a deadline, backoff with
  jitter, a retry budget, a circuit breaker, a bounded queue that sheds with 503); policy.py holds
  the resilient mechanisms as pure parts;
- system.py: `ReferenceSystem` runs both as child processes on free ports, `scrape` reads /metrics;
- load.py: a steady, bounded, loopback-only load from locust, run in its own process because
  locust's gevent monkey-patching cannot share a process with the tests' threads.

Each service has its own prometheus-client registry (refsys_* metrics) served on /metrics.
"""

from tests.support.refsystem.frontend import NAIVE, RESILIENT, Build, FrontendSettings
from tests.support.refsystem.load import LoadError, LoadRun, LoadSummary, run_load, start_load, steady_load
from tests.support.refsystem.system import ReferenceSystem, Scrape, scrape

__all__ = [
    "NAIVE",
    "RESILIENT",
    "Build",
    "FrontendSettings",
    "LoadError",
    "LoadRun",
    "LoadSummary",
    "ReferenceSystem",
    "Scrape",
    "run_load",
    "scrape",
    "start_load",
    "steady_load",
]
