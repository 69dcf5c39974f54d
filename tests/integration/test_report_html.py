"""The HTML report in a real browser (issue #17): Debian's headless Chromium, driven by Playwright,
opens the file that render_html wrote. The page renders without console errors, requests nothing
from the network, shows every matrix cell, chart, point, finding and recommendation, escapes what
the report says, and leaves a full-page screenshot (copied to $AFTERSHOCK_TEST_ARTIFACTS if set).

It needs no cluster: it lives here because it needs Chromium (`make browser`, which `make test`
runs first); the integration suite's session operator is not started for it (`_operator_first`).
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aftershock.reports.html import render_html

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
INJECTED = "<script>alert(1)</script>"


@pytest.fixture
def _operator_first() -> None:
    """Overrides the integration suite's autouse session fixture of that name, which starts the
    session operator (and so the cluster) whenever any collected test is an integration test:
    this test needs neither. Run with the rest of the suite, the operator still starts for the
    tests that do need it."""


def _cell(
    runs: int,
    passed: int,
    failed: int,
    severity: str | None,
    p50: float | None,
    p95: float | None,
    objective: float | None,
    trend: str,
    experiment: str,
    finding: dict[str, Any] | None = None,
    errored: int = 0,
    aborted: int = 0,
) -> dict[str, Any]:
    judged = passed + failed
    return {
        "runs": runs,
        "passed": passed,
        "failed": failed,
        "errored": errored,
        "aborted": aborted,
        "passRate": round(passed / judged, 4) if judged else None,
        "worstSeverity": severity,
        "recovery": {"p50": p50, "p95": p95, "objective": objective},
        "trend": trend,
        "newestFinding": finding,
        "experiments": [experiment],
    }


def _points(name: str, day: int, values: list[tuple[float | None, str | None, str]]) -> list[dict[str, Any]]:
    """Runs every six hours from the given day: (recovery seconds, severity, phase)."""
    points = []
    for i, (seconds, severity, phase) in enumerate(values):
        hour = 6 * i
        verdict = None if phase != "Completed" else ("Failed" if severity not in ("none", None) else "Passed")
        points.append(
            {
                "run": f"{name}-17641{day:02d}{hour:02d}00",
                "time": f"2026-11-{day + hour // 24:02d}T{hour % 24:02d}:00:00Z",
                "recoverySeconds": seconds,
                "phase": phase,
                "verdict": verdict,
                "severity": severity,
            }
        )
    return points


def realistic_report() -> dict[str, Any]:
    """A week of chaos in two namespaces: every severity, an empty cell, an experiment with no run
    in the window, runs that never recovered or errored, and hostile strings."""
    checkout = "shop/Deployment/app=checkout"
    postgres = "shop/toxiproxy/postgres"
    ledger = "payments/Deployment/app=ledger"
    hostile = f"payments/Deployment/app={INJECTED}"
    high = {
        "severity": "high",
        "title": "Recovery exceeded the objective",
        "detail": "ready replicas stayed at 1/3 for 48.0s (objective 30s); the second pod waited for a node",
        "run": "shop/checkout-pod-delete-1764180000",
        "time": "2026-11-26T18:00:00Z",
    }
    critical = {
        "severity": "critical",
        "title": "Did not recover within the timeout",
        "detail": "checkout returned 503 for 300s after postgres latency of 2s; no timeout on the pool",
        "run": "shop/postgres-latency-1764000000",
        "time": "2026-11-24T12:00:00Z",
    }
    medium = {
        "severity": "medium",
        "title": "Error rate above the steady state",
        "detail": "5xx ratio 4.1% (steady state < 1%) during the partition",
        "run": "shop/checkout-partition-1764100000",
        "time": "2026-11-25T18:00:00Z",
    }
    low = {
        "severity": "low",
        "title": "Latency p99 doubled while degraded",
        "detail": "p99 420ms against 200ms before the fault",
        "run": "payments/ledger-partition-1764200000",
        "time": "2026-11-27T00:00:00Z",
    }
    hostile_finding = {
        "severity": "high",
        "title": f"Injected {INJECTED} title",
        "detail": f'detail with {INJECTED} & "quotes" <b>not bold</b>',
        "run": "payments/evil-1764200000",
        "time": "2026-11-27T06:00:00Z",
    }
    rows = [
        {
            "id": checkout,
            "label": "Deployment shop (app=checkout)",
            "namespace": "shop",
            "kind": "workload",
            "cells": {
                "podDelete": _cell(
                    6, 4, 2, "high", 12.5, 48.0, 30.0, "worse", "shop/checkout-pod-delete", high
                ),
                "networkPartition": _cell(
                    4, 2, 1, "medium", 8.0, 21.0, 30.0, "steady", "shop/checkout-partition", medium, errored=1
                ),
            },
        },
        {
            "id": postgres,
            "label": "dependency postgres (Toxiproxy postgres:5432)",
            "namespace": "shop",
            "kind": "dependency",
            "cells": {
                "latency": _cell(
                    3, 1, 2, "critical", 25.0, None, 60.0, "new", "shop/postgres-latency", critical
                ),
            },
        },
        {
            "id": ledger,
            "label": "Deployment payments (app=ledger)",
            "namespace": "payments",
            "kind": "workload",
            "cells": {
                "podDelete": _cell(8, 8, 0, "none", 3.1, 4.8, 20.0, "better", "payments/ledger-pod-delete"),
                "networkPartition": _cell(
                    2, 1, 0, "low", 6.0, 6.0, 20.0, "new", "payments/ledger-partition", low, aborted=1
                ),
                # runs, but none rated: both errored before a verdict
                "litmus:pod-network-loss": _cell(
                    2, 0, 0, None, None, None, 20.0, "new", "payments/ledger-loss", errored=2
                ),
                # listed but empty: the experiment exists, no run finished in the window
                "latency": _cell(0, 0, 0, None, None, None, 20.0, "new", "payments/ledger-latency"),
            },
        },
        {
            "id": hostile,
            "label": f"Deployment payments (app={INJECTED})",
            "namespace": "payments",
            "kind": "workload",
            "cells": {
                "podDelete": _cell(
                    1, 0, 1, "high", 40.0, 40.0, 30.0, "new", "payments/evil", hostile_finding
                ),
            },
        },
    ]
    experiments = [
        {
            "namespace": "shop",
            "name": "checkout-pod-delete",
            "row": checkout,
            "faultKind": "podDelete",
            "objectiveSeconds": 30.0,
            "timeoutSeconds": 300.0,
            "points": _points(
                "checkout-pod-delete",
                23,
                [
                    (4.2, "none", "Completed"),
                    (6.8, "none", "Completed"),
                    (12.5, "none", "Completed"),
                    (35.0, "medium", "Completed"),
                    (None, None, "Errored"),
                    (48.0, "high", "Completed"),
                ],
            ),
            "retired": {"runs": 3, "passed": 2, "failed": 1, "errored": 0},
        },
        {
            "namespace": "shop",
            "name": "checkout-partition",
            "row": checkout,
            "faultKind": "networkPartition",
            "objectiveSeconds": 30.0,
            "timeoutSeconds": 120.0,
            "points": _points(
                "checkout-partition",
                24,
                [
                    (8.0, "none", "Completed"),
                    (21.0, "medium", "Completed"),
                    (None, None, "Errored"),
                    (7.5, "none", "Completed"),
                ],
            ),
            "retired": {"runs": 0, "passed": 0, "failed": 0, "errored": 0},
        },
        {
            "namespace": "shop",
            "name": "postgres-latency",
            "row": postgres,
            "faultKind": "latency",
            "objectiveSeconds": 60.0,
            "timeoutSeconds": 300.0,
            "points": _points(
                "postgres-latency",
                24,
                [
                    (25.0, "medium", "Completed"),
                    (None, "critical", "Completed"),  # did not recover: top band
                    (58.0, "high", "Completed"),
                ],
            ),
            "retired": {"runs": 0, "passed": 0, "failed": 0, "errored": 0},
        },
        {
            "namespace": "payments",
            "name": "ledger-pod-delete",
            "row": ledger,
            "faultKind": "podDelete",
            "objectiveSeconds": 20.0,
            "timeoutSeconds": 180.0,
            "points": _points(
                "ledger-pod-delete", 23, [(3.0 + (i % 3) * 0.6, "none", "Completed") for i in range(8)]
            ),
            "retired": {"runs": 0, "passed": 0, "failed": 0, "errored": 0},
        },
        {
            "namespace": "payments",
            "name": "ledger-partition",
            "row": ledger,
            "faultKind": "networkPartition",
            "objectiveSeconds": 20.0,
            "timeoutSeconds": None,
            "points": _points("ledger-partition", 27, [(6.0, "low", "Completed")]),  # a single point
            "retired": {"runs": 0, "passed": 0, "failed": 0, "errored": 0},
        },
        {
            "namespace": "payments",
            "name": "ledger-latency",
            "row": ledger,
            "faultKind": "latency",
            "objectiveSeconds": 20.0,
            "timeoutSeconds": 300.0,
            "points": [],  # no run in the window
            "retired": {"runs": 0, "passed": 0, "failed": 0, "errored": 0},
        },
        {
            "namespace": "payments",
            "name": "ledger-loss",
            "row": ledger,
            "faultKind": "litmus:pod-network-loss",
            "objectiveSeconds": None,  # no objective: no objective line
            "timeoutSeconds": None,
            "points": _points("ledger-loss", 28, [(None, None, "Errored"), (None, None, "Aborted")]),
            "retired": {"runs": 0, "passed": 0, "failed": 0, "errored": 0},
        },
        {
            "namespace": "payments",
            "name": "evil",
            "row": hostile,
            "faultKind": "podDelete",
            "objectiveSeconds": 30.0,
            "timeoutSeconds": 300.0,
            "points": _points("evil", 27, [(40.0, "high", "Completed")]),
            "retired": {"runs": 0, "passed": 0, "failed": 0, "errored": 0},
        },
    ]

    def finding(row: dict[str, Any], fault: str, experiment: str, f: dict[str, Any]) -> dict[str, Any]:
        return {"row": row["id"], "label": row["label"], "faultKind": fault, "experiment": experiment, **f}

    findings = [
        finding(rows[2], "networkPartition", "payments/ledger-partition", low),
        finding(rows[3], "podDelete", "payments/evil", hostile_finding),
        finding(rows[0], "podDelete", "shop/checkout-pod-delete", high),
        finding(rows[0], "networkPartition", "shop/checkout-partition", medium),
        finding(
            rows[0],
            "podDelete",
            "shop/checkout-pod-delete",
            {**high, "severity": "none", "title": "Recovered, but slower than last week", "detail": ""},
        ),
        finding(rows[1], "latency", "shop/postgres-latency", critical),
    ]
    recommendations = [
        {
            "id": "AS-R001",
            "title": "Spread checkout's replicas across nodes",
            "severity": "high",
            "target": "Deployment shop/checkout",
            "evidence": "pod-delete runs 3 and 6 recovered in 35s and 48s (objective 30s): the replacement pod was scheduled to the node that was being drained",
            "change": (
                "spec:\n  template:\n    spec:\n      topologySpreadConstraints:\n"
                "        - maxSkew: 1\n          topologyKey: kubernetes.io/hostname\n"
                "          whenUnsatisfiable: ScheduleAnyway\n"
                "          labelSelector: {matchLabels: {app: checkout}}\n"
            ),
        },
        {
            "id": "AS-R004",
            "title": "Bound the database pool's wait",
            "severity": "critical",
            "target": "dependency postgres",
            "evidence": "postgres latency 2s: checkout did not recover within 300s",
            "change": f"env:\n  - name: DB_POOL_TIMEOUT\n    value: 2s  # {INJECTED}\n",
        },
        {
            "id": "AS-R002",
            "title": "Add a PodDisruptionBudget",
            "severity": "medium",
            "target": "Deployment payments/ledger",
            "evidence": "no PodDisruptionBudget selects app=ledger",
        },
    ]
    return {
        "apiVersion": "aftershock.dev/report/v1",
        "generatedAt": "2026-11-29T12:00:00Z",
        "scope": {
            "namespaces": ["shop", "payments"],
            "since": "7d",
            "from": "2026-11-22T12:00:00Z",
            "to": "2026-11-29T12:00:00Z",
            "retiredIncluded": False,
        },
        "faultKinds": ["podDelete", "networkPartition", "latency", "litmus:pod-network-loss"],
        "rows": rows,
        "experiments": experiments,
        "findings": findings,
        "recommendations": recommendations,
    }


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright for Python is missing: install the test extras (make venv)")
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (installs Debian's chromium, once)")
    version = subprocess.run([str(CHROMIUM), "--version"], capture_output=True, text=True, check=False)
    if version.returncode != 0:
        pytest.fail(f"{CHROMIUM} does not run ({version.stderr.strip()}): run `make browser`")
    print(f"browser: {version.stdout.strip()}")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _expected_severity(cell: dict[str, Any] | None) -> str:
    if not cell or not cell["runs"]:
        return "no-runs"
    return cell["worstSeverity"] or "unrated"


def test_report_renders_in_chromium(browser: Any, tmp_path: Path) -> None:
    report = realistic_report()
    original = copy.deepcopy(report)
    html = render_html(report)
    assert report == original, "render_html must not change the report"
    assert INJECTED not in html, "a string from the report reached the page unescaped"
    path = tmp_path / "report.html"
    path.write_text(html, encoding="utf-8")

    context = browser.new_context(viewport={"width": 1280, "height": 900}, java_script_enabled=True)
    page = context.new_page()
    console: list[str] = []
    errors: list[str] = []
    requests: list[str] = []
    off_file: list[str] = []
    dialogs: list[str] = []
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda request: requests.append(request.url))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    def route(route: Any) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            off_file.append(route.request.url)
            route.abort()

    context.route("**/*", route)
    page.goto(path.as_uri(), wait_until="load")
    page.wait_for_load_state("networkidle")

    screenshot = tmp_path / "report.png"
    page.screenshot(path=str(screenshot), full_page=True)
    print(f"screenshot: {screenshot}")
    artifacts = os.environ.get("AFTERSHOCK_TEST_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        copied = Path(artifacts) / "report.png"
        shutil.copyfile(screenshot, copied)
        shutil.copyfile(path, Path(artifacts) / "report.html")
        print(f"screenshot copied to {copied}")

    # renders, quietly, offline
    assert page.title().startswith("Failure-mode report")
    assert page.locator("h1").inner_text() == "Failure-mode report"
    assert [line for line in console if line.startswith(("error", "warning"))] == [], console
    assert errors == [], errors
    assert dialogs == [], "a script from the report ran"
    assert off_file == [], f"the page tried to reach the network: {off_file}"
    assert all(url.startswith("file://") for url in requests), requests
    assert [u for u in requests if u.startswith(("http://", "https://"))] == []
    # readable at 1280 px: nothing wider than the window
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280

    # escaped: the injected markup is text, never an element
    assert page.locator("script").count() == 0
    assert page.locator("b", has_text="not bold").count() == 0
    body = page.locator("body").inner_text()
    assert INJECTED in body
    assert f"Injected {INJECTED} title" in page.locator("li.finding", has_text="Injected").inner_text()
    assert INJECTED in page.locator("section.recommendation[data-rule='AS-R004'] pre").inner_text()

    # the matrix: one cell per row and fault kind, coloured by the worst severity
    faults = report["faultKinds"]
    cells = page.locator("td.cell")
    assert cells.count() == len(report["rows"]) * len(faults)
    for row in report["rows"]:
        for fault in faults:
            cell = page.locator(f"td.cell[data-fault={_css(fault)}][data-row={_css(row['id'])}]")
            assert cell.count() == 1, (row["id"], fault)
            assert cell.get_attribute("data-severity") == _expected_severity(row["cells"].get(fault))
            assert cell.is_visible()
    seen = {cells.nth(i).get_attribute("data-severity") for i in range(cells.count())}
    assert seen == {"none", "low", "medium", "high", "critical", "no-runs", "unrated"}
    colours = {
        severity: page.locator(f"td.cell[data-severity='{severity}']").first.evaluate(
            "e => getComputedStyle(e).backgroundColor"
        )
        for severity in seen
    }
    assert len(set(colours.values())) >= 6, colours  # each severity its own colour (unrated shares grey)
    assert "worse" in page.locator(f"td.cell[data-row={_css(report['rows'][0]['id'])}]").first.inner_text()
    assert "Recovery exceeded the objective" in page.locator("table.matrix").inner_text()

    # the charts: one per experiment, one point per run, the objective where there is one
    charts = page.locator("svg.recovery-chart")
    assert charts.count() == len(report["experiments"])
    for experiment in report["experiments"]:
        key = f"{experiment['namespace']}/{experiment['name']}"
        chart = page.locator(f"svg.recovery-chart[data-experiment={_css(key)}]")
        assert chart.count() == 1, key
        assert chart.is_visible()
        box = chart.bounding_box()
        assert box is not None and box["width"] > 400 and box["height"] > 150, (key, box)
        assert chart.locator("circle.point").count() == len(experiment["points"]), key
        objective = 1 if experiment["objectiveSeconds"] is not None else 0
        assert chart.locator("line.objective").count() == objective, key
    assert page.locator("circle.point").count() == sum(len(e["points"]) for e in report["experiments"])
    latency = page.locator("svg.recovery-chart[data-experiment='shop/postgres-latency']")
    assert latency.locator("circle.point.not-recovered").count() == 1
    assert latency.locator("circle.point[data-recovered='true']").count() == 2
    # a run that did not recover sits above every recovered one (the band at the top)
    top = latency.locator("circle.point.not-recovered").evaluate("e => e.cy.baseVal.value")
    recovered = latency.locator("circle.point[data-recovered='true']")
    assert all(top < recovered.nth(i).evaluate("e => e.cy.baseVal.value") for i in range(2))
    empty = page.locator("svg.recovery-chart[data-experiment='payments/ledger-latency']")
    assert "no runs in this window" in (empty.text_content() or "")

    # findings, grouped by target, with their severity and evidence
    findings = page.locator("li.finding")
    assert findings.count() == len(report["findings"])
    for severity in ("none", "low", "medium", "high", "critical"):
        expected = sum(1 for f in report["findings"] if f["severity"] == severity)
        assert page.locator(f"li.finding[data-severity='{severity}']").count() == expected, severity
    assert page.locator(".finding-group").count() == len({f["label"] for f in report["findings"]})
    assert "no timeout on the pool" in page.locator("li.finding[data-severity='critical']").inner_text()

    # recommendations, each with its evidence and (where it has one) the manifest change
    recommendations = page.locator("section.recommendation")
    assert recommendations.count() == len(report["recommendations"])
    for rule in report["recommendations"]:
        section = page.locator(f"section.recommendation[data-rule='{rule['id']}']")
        assert section.count() == 1
        assert rule["evidence"] in section.inner_text()
        assert section.locator("pre").count() == (1 if rule.get("change") else 0)
    assert "topologySpreadConstraints" in page.locator("section[data-rule='AS-R001'] pre").inner_text()

    context.close()
    assert screenshot.stat().st_size > 10_000


def test_report_renders_when_nearly_empty(browser: Any, tmp_path: Path) -> None:
    """Only the version and the time: every part says it has nothing, quietly."""
    path = tmp_path / "empty.html"
    path.write_text(
        render_html({"apiVersion": "aftershock.dev/report/v1", "generatedAt": "2026-11-29T12:00:00Z"})
    )
    page = browser.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.goto(path.as_uri())
    assert problems == []
    assert page.locator("td.cell").count() == 0
    assert page.locator("svg.recovery-chart").count() == 0
    text = page.locator("body").inner_text()
    assert "No experiment ran in this scope." in text
    assert "all namespaces" in text
    page.close()


def _css(value: str) -> str:
    """A CSS attribute value, quoted (the ids hold '/', '=' and ':')."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
