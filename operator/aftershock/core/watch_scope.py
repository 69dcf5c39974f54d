"""Which namespaces an operator is responsible for, and which it must let go of.

The operator is started with `--all-namespaces` or with `--namespace` patterns (kopf's syntax:
globs and `!` negations allowed). When every pattern is a plain name, the operator can do all of
its reading inside those namespaces — which is what lets the chart's namespaced mode grant no
cluster-wide `list` at all. With globs it has to list cluster-wide and filter.

Releasing (helm uninstall, or a namespace dropped from the watch list on upgrade) must cover
exactly the namespaces the running operator watches and the next one will not.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aftershock.core.naming import is_dns1123_label

Scope = tuple[str, ...] | None  # None: every namespace


def explicit_namespaces(patterns: Sequence[str]) -> Scope:
    """The namespaces to list in, or None when they must be found cluster-wide (no patterns, or
    any of them is a glob or a negation)."""
    if not patterns or not all(is_dns1123_label(p) for p in patterns):
        return None
    return tuple(dict.fromkeys(patterns))


def watched_by(args: Sequence[str]) -> Scope:
    """The namespaces an `aftershock run ...` command line watches (None: all of them)."""
    names: list[str] = []
    it = iter(args)
    for arg in it:
        if arg in ("--namespace", "-n"):
            names.append(next(it, ""))
        elif arg.startswith("--namespace="):
            names.append(arg.split("=", 1)[1])
    return tuple(dict.fromkeys(n for n in names if n)) or None


@dataclass(frozen=True)
class Release:
    """Namespaces to release: `only` those (None: every namespace), minus `keep`."""

    only: Scope
    keep: frozenset[str] = frozenset()

    @property
    def nothing(self) -> bool:
        return self.only is not None and not self.only

    def covers(self, namespace: str) -> bool:
        return (self.only is None or namespace in self.only) and namespace not in self.keep


def to_release(current: Scope, keep: Scope | Iterable[str]) -> Release:
    """What a running operator watching `current` holds that one watching `keep` will not.

    `keep=None` means the next operator watches everything: nothing to release. For an uninstall,
    pass `keep=()`.
    """
    if keep is None:
        return Release(only=())
    kept = frozenset(keep)
    if current is None:
        return Release(only=None, keep=kept)
    return Release(only=tuple(n for n in current if n not in kept))
