"""What every handler needs, built once at startup: the API facade and operator settings."""

from __future__ import annotations

from dataclasses import dataclass

from aftershock.kube import Kube


@dataclass
class OperatorContext:
    kube: Kube
    operator_namespace: str | None
    poll_seconds: float = 0.25


_context: OperatorContext | None = None


def set_context(context: OperatorContext) -> None:
    global _context
    _context = context


def get_context() -> OperatorContext:
    if _context is None:
        raise RuntimeError("the operator context is not initialised (startup handler did not run)")
    return _context
