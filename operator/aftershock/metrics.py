"""Prometheus metrics. Labels are bounded sets (fault kind, verdict, severity, phase): never pod or
run names, which would grow without bound over months of continuous chaos."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

REGISTRY = CollectorRegistry(auto_describe=True)

RUNS = Counter(
    "aftershock_runs_total",
    "Chaos runs that reached a terminal phase.",
    ["fault", "phase", "verdict", "severity"],
    registry=REGISTRY,
)
RECOVERY = Histogram(
    "aftershock_recovery_seconds",
    "Time from fault injection until the target was healthy again (ground truth from Ready transitions).",
    ["fault"],
    buckets=(0.5, 1, 2, 3, 5, 8, 13, 21, 30, 60, 120, 300, 600, 1800),
    registry=REGISTRY,
)
DETECTION_LAG = Histogram(
    "aftershock_recovery_detection_lag_seconds",
    "Time from the target becoming healthy until the operator recorded it in status.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
    registry=REGISTRY,
)
ACTIVE_FAULTS = Gauge(
    "aftershock_active_faults",
    "Faults injected and not yet reverted or recovered, by fault kind.",
    ["fault"],
    registry=REGISTRY,
)
POLICIES_SUSPENDED = Gauge(
    "aftershock_policies_suspended",
    "ChaosPolicies with spec.suspend: true (the kill switch), as this operator last saw them.",
    registry=REGISTRY,
)
RECONCILE_ERRORS = Counter(
    "aftershock_reconcile_errors_total",
    "Handler invocations that failed (retried by the operator).",
    ["kind", "handler"],
    registry=REGISTRY,
)
INJECTIONS = Counter(
    "aftershock_injections_total",
    "Individual fault actions carried out (one per affected pod or object).",
    ["fault"],
    registry=REGISTRY,
)
API_RETRIES = Counter(
    "aftershock_api_retries_total",
    "Kubernetes API requests retried after a transient error, by reason: the HTTP status (429, 500,"
    " 502, 503, 504), timeout or connection.",
    ["reason"],
    registry=REGISTRY,
)
API_REQUESTS = Counter(
    "aftershock_api_requests_total",
    "Kubernetes API requests the operator issued outside the shared cache's LIST/WATCH (each retry"
    " counts), by client operation.",
    ["operation"],
    registry=REGISTRY,
)
CACHE_WATCHES = Counter(
    "aftershock_cache_watch_starts_total",
    "WATCH calls the shared cluster cache started (the first and every restart), by kind.",
    ["kind"],
    registry=REGISTRY,
)
CACHE_LISTS = Counter(
    "aftershock_cache_relists_total",
    "LIST calls the shared cluster cache made (the initial one and every relist after 410 or an error), by kind.",
    ["kind"],
    registry=REGISTRY,
)
CACHE_OBJECTS = Gauge(
    "aftershock_cache_objects",
    "Objects held in the shared cluster cache, by kind.",
    ["kind"],
    registry=REGISTRY,
)


def serve(port: int, address: str = "0.0.0.0") -> None:
    """Expose /metrics on a background thread."""
    start_http_server(port, addr=address, registry=REGISTRY)


ADMISSION = Histogram(
    "aftershock_admission_seconds",
    "Time the operator spent answering one admission review, by webhook and answer (allowed,"
    " refused); the API server adds its TLS and round trip on top.",
    ["webhook", "answer"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2.5, 10),
    registry=REGISTRY,
)
PROBE_SUCCESS = Gauge(
    "aftershock_probe_success_ratio",
    "Share of a steady-state probe's checks that held while its run's fault was in place (the latest run).",
    ["namespace", "experiment", "probe"],
    registry=REGISTRY,
)
PROBE_ABORTS = Counter(
    "aftershock_probe_aborts_total",
    "Runs aborted because a steady-state probe failed abortAfter consecutive checks.",
    ["fault"],
    registry=REGISTRY,
)
