from __future__ import annotations

import pytest

from aftershock.core.watch_scope import Release, explicit_namespaces, to_release, watched_by


@pytest.mark.parametrize(
    ("patterns", "expected"),
    [
        ([], None),
        (["shop"], ("shop",)),
        (["shop", "web", "shop"], ("shop", "web")),
        (["!t-solo-*"], None),
        (["team-*"], None),
        (["shop", "team-?"], None),
        (["Shop"], None),  # not a namespace name: cannot be listed in
    ],
)
def test_only_plain_names_can_be_listed_namespace_by_namespace(
    patterns: list[str], expected: tuple[str, ...] | None
) -> None:
    assert explicit_namespaces(patterns) == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "--all-namespaces", "--metrics-port", "8080"], None),
        (["run", "--namespace", "shop", "--namespace", "web"], ("shop", "web")),
        (["run", "-n", "shop", "--namespace=web"], ("shop", "web")),
        (["run", "--namespace"], None),
    ],
)
def test_the_watched_namespaces_are_read_from_the_operators_command_line(
    args: list[str], expected: tuple[str, ...] | None
) -> None:
    assert watched_by(args) == expected


def test_uninstall_releases_everything_the_operator_watched() -> None:
    scoped = to_release(("shop", "web"), ())
    assert scoped == Release(only=("shop", "web"))
    assert scoped.covers("shop") and not scoped.covers("payments")
    everywhere = to_release(None, ())
    assert everywhere.covers("anything") and not everywhere.nothing


def test_an_upgrade_releases_only_the_namespaces_the_next_operator_will_not_watch() -> None:
    assert to_release(("shop", "web"), ("web", "payments")) == Release(only=("shop",))
    narrowing = to_release(None, ("web",))
    assert narrowing.covers("shop") and not narrowing.covers("web")
    assert to_release(("shop",), ("shop",)).nothing
    widening = to_release(("shop",), None)  # the next operator watches everything
    assert widening.nothing and not widening.covers("shop")
