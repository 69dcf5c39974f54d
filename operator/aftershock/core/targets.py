"""Which of the matching pods/nodes a run hits (``spec.target.mode`` / ``value``).

Selection is deterministic for a seed (use the run's name or uid): an operator that crashes after
choosing targets but before recording them re-selects the same ones on resume instead of hitting
new victims. Each candidate is ranked by a SHA-256 hash of (seed, key) — rendezvous hashing — so
the result does not depend on list order, Python version or PYTHONHASHSEED, and replacing one
candidate does not reshuffle the others.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import TypeVar

from aftershock.api.experiment import TargetMode

__all__ = ["TargetMode", "TargetSelectionError", "count_for_mode", "select_targets"]

T = TypeVar("T")


class TargetSelectionError(Exception):
    """The spec is valid but nothing can be selected (e.g. no pod matches the selector).

    Not a ValueError: the experiment is not wrong, the cluster just has nothing to hit right now.
    `reason` is meant for a person (a condition message or a Skipped run's reason).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def count_for_mode(mode: str, value: int | None, total: int) -> int:
    """How many of `total` candidates the mode selects.

    one: min(1, total); all: total (``value`` is ignored for both, so a defaulted value is harmless);
    fixed: min(value, total), value >= 1 required; percent: floor(total * value / 100) but at
    least 1 when total > 0, value in 1..100 required. Raises ValueError for invalid combinations.
    """
    if total < 0:
        raise ValueError(f"total must be >= 0, got {total}")
    try:
        m = TargetMode(mode)
    except ValueError:
        allowed = ", ".join(x.value for x in TargetMode)
        raise ValueError(f"unknown target mode {mode!r}: expected one of {allowed}") from None
    if m is TargetMode.ONE:
        return min(1, total)
    if m is TargetMode.ALL:
        return total
    if m is TargetMode.FIXED:
        if value is None or value < 1:
            raise ValueError(f"target mode 'fixed' needs a value >= 1 (the number of targets), got {value}")
        return min(value, total)
    if value is None or not 1 <= value <= 100:
        raise ValueError(f"target mode 'percent' needs a value between 1 and 100, got {value}")
    if total == 0:
        return 0
    return max(1, total * value // 100)


def _rank(seed: str, key: str) -> bytes:
    return hashlib.sha256(f"{seed}\x00{key}".encode()).digest()


def select_targets(
    candidates: Sequence[T],
    mode: str,
    value: int | None,
    seed: str,
    *,
    key: Callable[[T], str],
    what: str = "targets",
) -> list[T]:
    """Pick the targets for a run, deterministically for `seed`; the result is sorted by key.

    `key` must identify a candidate uniquely (namespace/name or uid). `what` names the candidates
    in the error message, e.g. "pods of Deployment shop/checkout". Raises ValueError for an
    invalid mode/value, an empty seed or duplicate keys, TargetSelectionError when nothing matches.
    """
    count = count_for_mode(mode, value, len(candidates))
    if not seed:
        raise ValueError("seed must be non-empty (use the run's name or uid)")
    if not candidates:
        raise TargetSelectionError(f"no {what} matched the target selector; there is nothing to inject into")
    keyed = [(key(c), c) for c in candidates]
    seen: set[str] = set()
    for k, _ in keyed:
        if k in seen:
            raise ValueError(f"duplicate target key {k!r}: keys must identify candidates uniquely")
        seen.add(k)
    chosen = sorted(keyed, key=lambda kc: (_rank(seed, kc[0]), kc[0]))[:count]
    return [c for _, c in sorted(chosen, key=lambda kc: kc[0])]
