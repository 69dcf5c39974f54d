"""Steady-state probes' I/O: HTTP and Prometheus requests through an endpoint guard, and workload
readiness from the operator's cache. What the answers mean is decided in core/probes.py."""
