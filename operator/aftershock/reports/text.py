"""The report as a terminal table and as Markdown (a service owner's ticket or wiki page)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

TREND_MARK = {"better": "↑ better", "worse": "↓ worse", "steady": "→ steady", "new": "new"}
STYLE = {"none": "green", "low": "yellow", "medium": "dark_orange", "high": "red", "critical": "bold red"}


def _seconds(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1f}s"


def cell_text(cell: Mapping[str, Any] | None) -> str:
    """One cell in words: runs and pass rate, worst severity, recovery p50/p95 against the
    objective, trend."""
    if not cell or not cell.get("runs"):
        return "no runs"
    rate = cell.get("passRate")
    passed = f"{round(rate * 100)}% passed" if rate is not None else "none judged"
    recovery = cell.get("recovery") or {}
    parts = [
        f"{cell['runs']} run{'' if cell['runs'] == 1 else 's'}, {passed}",
        f"worst {cell.get('worstSeverity') or '-'}",
        f"p50 {_seconds(recovery.get('p50'))} p95 {_seconds(recovery.get('p95'))}"
        f" (objective {_seconds(recovery.get('objective'))})",
        TREND_MARK.get(str(cell.get("trend")), str(cell.get("trend"))),
    ]
    newest = cell.get("newestFinding")
    if newest:
        parts.append(f"newest: [{newest['severity']}] {newest['title']}")
    return "\n".join(parts)


def table(report: Mapping[str, Any]) -> Group:
    """The matrix, the findings and the recommendations, for rich to print."""
    matrix = Table(title="failure-mode matrix", show_lines=True)
    matrix.add_column("target")
    for column in report["faultKinds"]:
        matrix.add_column(column)
    for row in report["rows"]:
        texts = []
        for column in report["faultKinds"]:
            cell = row["cells"].get(column)
            style = STYLE.get(str((cell or {}).get("worstSeverity")), "dim")
            texts.append(Text(cell_text(cell), style=style))
        matrix.add_row(Text(row["label"]), *texts)
    parts: list[Any] = [matrix]
    if report["findings"]:
        findings = Table("target", "fault", "severity", "finding", "evidence", "run", title="findings")
        for f in report["findings"]:
            findings.add_row(
                f["label"],
                f["faultKind"],
                Text(f["severity"], style=STYLE.get(f["severity"], "")),
                f["title"],
                f["detail"],
                f["run"],
            )
        parts.append(findings)
    if report.get("recommendations"):
        design = Table("rule", "target", "severity", "recommendation", "evidence", title="recovery design")
        for r in report["recommendations"]:
            design.add_row(r["id"], r["target"], r["severity"], r["title"], r["evidence"])
        parts.append(design)
    return Group(*parts)


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", "<br>")


def markdown(report: Mapping[str, Any]) -> str:
    scope = report["scope"]
    where = ", ".join(scope["namespaces"]) if scope.get("namespaces") else "all namespaces"
    since = f"since {scope['from']}" if scope.get("from") else "all time"
    lines = [
        "# Failure-mode report",
        "",
        f"{where}, {since}; generated {report['generatedAt']} by aftershock.",
        "",
        "## Failure-mode matrix",
        "",
        "| target | " + " | ".join(report["faultKinds"]) + " |",
        "|---|" + "---|" * len(report["faultKinds"]),
    ]
    for row in report["rows"]:
        cells = [_md(cell_text(row["cells"].get(c))) for c in report["faultKinds"]]
        lines.append(f"| {_md(row['label'])} | " + " | ".join(cells) + " |")
    lines += ["", "## Findings", ""]
    if not report["findings"]:
        lines.append("No findings.")
    label = None
    for f in report["findings"]:
        if f["label"] != label:
            label = f["label"]
            lines += ["", f"### {label}", ""]
        lines.append(
            f"- **{f['severity']}** ({f['faultKind']}, {f['run']}, {f['time']}): {f['title']} — {f['detail']}"
        )
    if report.get("recommendations"):
        lines += ["", "## Recovery design", ""]
        for r in report["recommendations"]:
            lines += [
                f"### {r['id']} {r['title']} ({r['severity']})",
                "",
                f"{r['target']}: {r['evidence']}",
                "",
                "```yaml",
                str(r.get("change") or "").rstrip(),
                "```",
                "",
            ]
    return "\n".join(lines).rstrip() + "\n"
