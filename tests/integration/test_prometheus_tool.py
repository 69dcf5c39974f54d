"""The pinned Prometheus build runs on loopback: it reports its version, scrapes a local target every
second so a query follows a value the test sets, evaluates recording rules, and its promtool tells
a broken rule file from a good one. No Kubernetes cluster is involved."""

from __future__ import annotations

import subprocess

from tests.support.prometheus import MetricsService, PrometheusServer, check_rules
from tests.support.tools import build_tools, built, versions
from tests.support.waiting import wait_for

GOOD_RULES = """\
groups:
  - name: shop
    rules:
      - record: shop:errors:max
        expr: max(shop_errors)
"""


def test_the_pinned_build_reports_the_pinned_version() -> None:
    release = build_tools()._prometheus_release(versions()["PROMETHEUS_VERSION"])  # v0.316.0 -> 3.16.0
    for binary in ("prometheus", "promtool"):
        out = subprocess.run(
            [str(built("prometheus") / binary), "--version"],
            text=True,
            capture_output=True,
            timeout=30,
            check=True,
        )
        first_line = (out.stdout or out.stderr).splitlines()[0]
        assert first_line.startswith(f"{binary}, version {release} "), first_line


def test_a_query_follows_the_value_the_target_exposes() -> None:
    with MetricsService() as shop:
        shop.errors_per_second.set(0.5)
        shop.set("shop_errors", 1, route="/cart")
        with PrometheusServer([shop.target], job="shop", rules=GOOD_RULES) as prom:
            # the first scrape is in: the values set before Prometheus started are there at once
            assert prom.query('errors_per_second{job="shop"}') == 0.5
            assert prom.query('shop_errors{route="/cart"} > 5') is None  # within the bound

            shop.errors_per_second.set(7)
            shop.set("shop_errors", 12, route="/cart")
            wait_for(
                lambda: prom.query('errors_per_second{job="shop"}') == 7.0,
                timeout=15,
                message="the new errors_per_second in Prometheus",
            )
            breach = wait_for(
                lambda: prom.query('shop_errors{route="/cart"} > 5'), timeout=15, message="the bound breached"
            )
            assert breach == 12.0
            wait_for(lambda: prom.query("shop:errors:max") == 12.0, timeout=15, message="the recording rule")
            assert prom.query("vector(1) + 1") == 2.0  # a computed result has no labels, still a value


def test_promtool_tells_a_broken_rule_file_from_a_good_one() -> None:
    good = check_rules(GOOD_RULES)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "SUCCESS: 1 rules found" in good.stdout + good.stderr

    broken = check_rules(GOOD_RULES.replace("max(shop_errors)", "max(shop_errors"))
    assert broken.returncode != 0
    assert "FAILED" in broken.stdout + broken.stderr
