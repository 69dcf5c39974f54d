"""Kubernetes I/O beyond single calls: the shared watch-fed cache (cache.py, store.py, kinds.py)
and the operator's Lease."""
