"""The report as one self-contained HTML file: the failure-mode matrix as a severity heat map,
recovery time per experiment over time against its objective, the findings with their evidence
and the recovery design (docs/reports.md).

Pure: the report document (`aftershock.dev/report/v1`, built by reports/matrix.py) goes in, the
page comes out. Nothing is fetched when it is opened: the style is inline, the charts are inline
SVG, there is no script, and a Content-Security-Policy forbids any request. Every string from the
report is escaped; optional keys may be missing.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any

SEVERITIES = ("none", "low", "medium", "high", "critical")
NO_RUNS = "no-runs"
UNRATED = "unrated"  # runs, but none of them rated (errored or aborted before a verdict)
TREND_MARK = {"better": "↑ better", "worse": "↓ worse", "steady": "→ steady", "new": "new"}
POINT_COLOUR = {
    "none": "#2f9e58",
    "low": "#9bbd2c",
    "medium": "#e39a00",
    "high": "#e4572e",
    "critical": "#8e1b1b",
}
UNKNOWN_COLOUR = "#8a919c"

# the chart's geometry (SVG user units; the SVG scales to its box)
WIDTH, HEIGHT = 600, 250
LEFT, RIGHT = 56, 20
BAND_Y = 18  # the "not recovered" band above the plot
TOP, BOTTOM = 40, HEIGHT - 34

STYLE = """
:root {
  --ink: #1d2330; --muted: #5f6877; --rule: #d9dde3; --paper: #ffffff; --wash: #f5f6f8;
  --sev-none: #8fd19e; --sev-none-ink: #0f3d1c;
  --sev-low: #d5e67e; --sev-low-ink: #33400a;
  --sev-medium: #f7bb45; --sev-medium-ink: #4a2f00;
  --sev-high: #e4572e; --sev-high-ink: #ffffff;
  --sev-critical: #8e1b1b; --sev-critical-ink: #ffffff;
  --no-runs: #eceef1; --no-runs-ink: #7b8391;
}
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body {
  margin: 0; background: var(--wash); color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
main { max-width: 1240px; margin: 0 auto; padding: 24px 20px 48px; }
header.report { background: var(--paper); border: 1px solid var(--rule); border-radius: 8px; padding: 18px 22px; }
header.report h1 { margin: 0 0 6px; font-size: 22px; letter-spacing: -0.01em; }
header.report .scope { margin: 0; color: var(--muted); }
header.report .scope b { color: var(--ink); font-weight: 600; }
.totals { display: flex; flex-wrap: wrap; gap: 8px; margin-top: 12px; }
.totals .stat { background: var(--wash); border: 1px solid var(--rule); border-radius: 6px; padding: 4px 10px; }
.totals .stat b { font-size: 16px; }
section.part { margin-top: 28px; }
section.part > h2 { font-size: 18px; margin: 0 0 4px; }
section.part > p.intro { margin: 0 0 12px; color: var(--muted); }
.legend { display: flex; flex-wrap: wrap; gap: 6px 14px; align-items: center; margin: 0 0 10px; color: var(--muted); font-size: 12.5px; }
.legend .swatch { display: inline-block; width: 14px; height: 14px; border-radius: 3px; vertical-align: -3px; margin-right: 4px; border: 1px solid rgba(0,0,0,.12); }
.legend svg { vertical-align: -3px; margin-right: 4px; }
.matrix-wrap { overflow-x: auto; background: var(--paper); border: 1px solid var(--rule); border-radius: 8px; }
table.matrix { border-collapse: separate; border-spacing: 4px; width: 100%; table-layout: fixed; }
table.matrix col.target { width: 220px; }
table.matrix th { text-align: left; font-weight: 600; font-size: 12.5px; color: var(--muted); padding: 6px 8px; overflow-wrap: anywhere; }
table.matrix thead th { border-bottom: 2px solid var(--rule); }
table.matrix th.target { white-space: normal; overflow-wrap: anywhere; color: var(--ink); font-size: 13.5px; vertical-align: top; }
table.matrix th.target .kind { display: inline-block; margin-top: 3px; font-size: 11px; font-weight: 500; color: var(--muted); border: 1px solid var(--rule); border-radius: 10px; padding: 0 7px; }
td.cell { vertical-align: top; padding: 8px 10px; border-radius: 6px; font-size: 12.5px; line-height: 1.4; }
td.cell .top { display: flex; justify-content: space-between; gap: 8px; font-weight: 700; text-transform: uppercase; letter-spacing: .03em; font-size: 11.5px; }
td.cell .trend { text-transform: none; letter-spacing: 0; font-weight: 600; white-space: nowrap; }
td.cell .runs { margin-top: 3px; font-weight: 600; }
td.cell .counts, td.cell .recovery { opacity: .9; }
td.cell .recovery .over { font-weight: 700; text-decoration: underline; }
td.cell .newest { margin-top: 4px; padding-top: 4px; border-top: 1px solid currentColor; border-top-color: rgba(0,0,0,.18); font-style: italic; overflow-wrap: anywhere; }
td.cell .empty { font-style: italic; }
.sev-none { background: var(--sev-none); color: var(--sev-none-ink); }
.sev-low { background: var(--sev-low); color: var(--sev-low-ink); }
.sev-medium { background: var(--sev-medium); color: var(--sev-medium-ink); }
.sev-high { background: var(--sev-high); color: var(--sev-high-ink); }
.sev-critical { background: var(--sev-critical); color: var(--sev-critical-ink); }
.sev-high .newest, .sev-critical .newest { border-top-color: rgba(255,255,255,.35); }
.sev-no-runs { background: var(--no-runs); color: var(--no-runs-ink); }
.sev-unrated { background: var(--no-runs); color: var(--ink); outline: 1px dashed #9aa1ab; outline-offset: -1px; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 14px; }
figure.chart { margin: 0; background: var(--paper); border: 1px solid var(--rule); border-radius: 8px; padding: 12px 14px 8px; break-inside: avoid; }
figure.chart figcaption { margin-bottom: 4px; }
figure.chart figcaption .name { font-weight: 700; overflow-wrap: anywhere; }
figure.chart figcaption .meta { color: var(--muted); font-size: 12.5px; }
svg.recovery-chart { display: block; width: 100%; height: auto; }
svg.recovery-chart text { font: 11px system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; fill: #5f6877; }
svg.recovery-chart .grid { stroke: #e6e9ee; stroke-width: 1; }
svg.recovery-chart .axis { stroke: #9aa1ab; stroke-width: 1; }
svg.recovery-chart .band { fill: #fbeaea; }
svg.recovery-chart text.band-label { fill: #8e1b1b; font-weight: 600; }
svg.recovery-chart .objective { stroke: #1d2330; stroke-width: 1.5; stroke-dasharray: 6 4; }
svg.recovery-chart text.objective-label { fill: #1d2330; font-weight: 600; }
svg.recovery-chart .series { fill: none; stroke: #8a919c; stroke-width: 1.5; stroke-linejoin: round; }
svg.recovery-chart .point { stroke: #ffffff; stroke-width: 1.5; }
svg.recovery-chart .point.not-recovered { fill: #ffffff; stroke-width: 2.5; }
svg.recovery-chart .point.unmeasured { fill: #ffffff; stroke: #8a919c; stroke-width: 2; stroke-dasharray: 2 2; }
svg.recovery-chart .cross { stroke-width: 2; stroke-linecap: round; }
svg.recovery-chart text.empty { font-size: 13px; font-style: italic; }
.badge { display: inline-block; min-width: 62px; text-align: center; font-size: 11px; font-weight: 700; text-transform: uppercase; letter-spacing: .04em; border-radius: 10px; padding: 1px 8px; }
.badge.sev-unrated { outline: none; }
.finding-group { background: var(--paper); border: 1px solid var(--rule); border-radius: 8px; padding: 12px 16px; margin-bottom: 12px; break-inside: avoid; }
.finding-group h3 { margin: 0 0 6px; font-size: 15px; overflow-wrap: anywhere; }
.finding-group ul { list-style: none; margin: 0; padding: 0; }
li.finding { padding: 8px 0; border-top: 1px solid var(--rule); }
li.finding:first-child { border-top: none; }
li.finding .title { font-weight: 600; margin-left: 6px; overflow-wrap: anywhere; }
li.finding .meta { color: var(--muted); font-size: 12.5px; margin-top: 2px; overflow-wrap: anywhere; }
.evidence { margin: 4px 0 0; white-space: pre-wrap; overflow-wrap: anywhere; }
section.recommendation { background: var(--paper); border: 1px solid var(--rule); border-left-width: 5px; border-radius: 8px; padding: 12px 16px; margin-bottom: 12px; break-inside: avoid; }
section.recommendation h3 { margin: 0; font-size: 15px; overflow-wrap: anywhere; }
section.recommendation .rule-id { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; color: var(--muted); margin-right: 6px; }
section.recommendation .target { color: var(--muted); font-size: 12.5px; margin-top: 2px; overflow-wrap: anywhere; }
section.recommendation pre { margin: 8px 0 0; padding: 10px 12px; background: #f3f4f7; border: 1px solid var(--rule); border-radius: 6px; overflow-x: auto; font: 12.5px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; white-space: pre-wrap; overflow-wrap: anywhere; }
section.recommendation.rec-critical { border-left-color: var(--sev-critical); }
section.recommendation.rec-high { border-left-color: var(--sev-high); }
section.recommendation.rec-medium { border-left-color: var(--sev-medium); }
section.recommendation.rec-low { border-left-color: var(--sev-low); }
section.recommendation.rec-none { border-left-color: var(--sev-none); }
p.nothing { background: var(--paper); border: 1px dashed var(--rule); border-radius: 8px; padding: 12px 16px; color: var(--muted); margin: 0; }
footer { margin-top: 32px; color: var(--muted); font-size: 12px; }
@media print {
  body { background: #ffffff; font-size: 12px; }
  main { max-width: none; padding: 0; }
  .matrix-wrap { overflow: visible; }
  table.matrix { min-width: 0 !important; }
  .charts { grid-template-columns: 1fr 1fr; }
  figure.chart, .finding-group, section.recommendation, tr { break-inside: avoid; }
  section.part > h2 { break-after: avoid; }
}
"""


def _e(value: Any) -> str:
    """Any value from the report as escaped text (None as empty)."""
    return "" if value is None else escape(str(value), quote=True)


def _severity(value: Any) -> str | None:
    text = str(value) if value is not None else None
    return text if text in SEVERITIES else None


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _seconds(value: Any) -> str:
    number = _number(value)
    if number is None:
        return "&ndash;"
    if number >= 600:
        minutes, seconds = divmod(round(number), 60)
        return f"{minutes}m {seconds:02d}s"
    return f"{number:.1f}s" if number < 100 else f"{number:.0f}s"


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _when(value: Any) -> str:
    """A timestamp as people read it (UTC), or the text as given when it is not one."""
    moment = _parse_time(value)
    if moment is None:
        return _e(value) if value else "&ndash;"
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _int(value: Any) -> int:
    number = _number(value)
    return int(number) if number is not None else 0


def _seq(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list | tuple) else ()


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


# ---------------------------------------------------------------------------------------------------
# header


def _header(report: Mapping[str, Any]) -> str:
    scope = _map(report.get("scope"))
    namespaces = [str(n) for n in _seq(scope.get("namespaces"))]
    where = (
        ("namespace " if len(namespaces) == 1 else "namespaces ") + ", ".join(namespaces)
        if namespaces
        else "all namespaces"
    )
    if scope.get("from") or scope.get("since"):
        since = f" (last {_e(scope['since'])})" if scope.get("since") else ""
        window = f"from <b>{_when(scope.get('from'))}</b> to <b>{_when(scope.get('to'))}</b>{since}"
    else:
        window = f"all time, up to <b>{_when(scope.get('to') or report.get('generatedAt'))}</b>"
    retired = ""
    if scope.get("retiredIncluded") is True:
        retired = "; includes the totals of runs pruned by the history limits"
    elif scope.get("retiredIncluded") is False:
        retired = "; runs pruned by the history limits are not counted in a window"
    rows = _seq(report.get("rows"))
    runs = sum(_int(_map(c).get("runs")) for r in rows for c in _map(_map(r).get("cells")).values())
    findings = _seq(report.get("findings"))
    by_severity = {s: 0 for s in SEVERITIES}
    for finding in findings:
        severity = _severity(_map(finding).get("severity"))
        if severity is not None:
            by_severity[severity] += 1
    stats = [
        f'<span class="stat"><b>{len(rows)}</b> targets</span>',
        f'<span class="stat"><b>{len(_seq(report.get("faultKinds")))}</b> fault kinds</span>',
        f'<span class="stat"><b>{runs}</b> runs</span>',
        f'<span class="stat"><b>{len(findings)}</b> findings</span>',
    ]
    stats += [
        f'<span class="stat"><b>{count}</b> <span class="badge sev-{s}">{s}</span></span>'
        for s, count in reversed(by_severity.items())
        if count and s != "none"
    ]
    stats.append(
        f'<span class="stat"><b>{len(_seq(report.get("recommendations")))}</b> recommendations</span>'
    )
    return (
        '<header class="report">'
        "<h1>Failure-mode report</h1>"
        f'<p class="scope">Scope: <b>{_e(where)}</b>, {window}{retired}.</p>'
        f'<p class="scope">Generated <b>{_when(report.get("generatedAt"))}</b> by aftershock.</p>'
        f'<div class="totals">{"".join(stats)}</div>'
        "</header>"
    )


# ---------------------------------------------------------------------------------------------------
# the matrix


def _legend() -> str:
    swatches = [f'<span><span class="swatch sev-{s}"></span>{s}</span>' for s in SEVERITIES]
    swatches.append('<span><span class="swatch sev-no-runs"></span>no runs</span>')
    swatches.append('<span><span class="swatch sev-unrated"></span>runs, none rated</span>')
    return f'<div class="legend"><span>Worst severity:</span>{"".join(swatches)}</div>'


def _cell(row_id: str, fault: str, cell: Mapping[str, Any] | None) -> str:
    attrs = f'data-row="{_e(row_id)}" data-fault="{_e(fault)}"'
    runs = _int((cell or {}).get("runs"))
    if cell is None or runs == 0:
        return (
            f'<td class="cell sev-{NO_RUNS}" {attrs} data-severity="{NO_RUNS}">'
            '<div class="empty">no runs</div></td>'
        )
    severity = _severity(cell.get("worstSeverity")) or UNRATED
    trend = str(cell.get("trend") or "")
    trend_text = TREND_MARK.get(trend, trend)
    rate = _number(cell.get("passRate"))
    passed = f"{round(rate * 100)}% passed" if rate is not None else "none judged"
    counts = [
        f"{_int(cell.get(key))} {key}"
        for key in ("passed", "failed", "errored", "aborted")
        if _int(cell.get(key))
    ]
    recovery = _map(cell.get("recovery"))
    objective = _number(recovery.get("objective"))
    p95 = _number(recovery.get("p95"))
    p95_text = _seconds(p95)
    if objective is not None and p95 is not None and p95 > objective:
        p95_text = f'<span class="over" title="over the objective">{p95_text}</span>'
    objective_text = f" / objective {_seconds(objective)}" if objective is not None else " / no objective"
    parts = [
        f'<div class="top"><span class="sev">{_e(severity)}</span>'
        f'<span class="trend trend-{_e(trend)}">{_e(trend_text)}</span></div>',
        f'<div class="runs">{_plural(runs, "run")} · {passed}</div>',
    ]
    if counts:
        parts.append(f'<div class="counts">{_e(", ".join(counts))}</div>')
    parts.append(
        f'<div class="recovery">p50 {_seconds(recovery.get("p50"))} · p95 {p95_text}{objective_text}</div>'
    )
    newest = cell.get("newestFinding")
    if isinstance(newest, Mapping) and newest.get("title"):
        tip = f"{newest.get('run') or ''} {newest.get('time') or ''}: {newest.get('detail') or ''}".strip()
        parts.append(
            f'<div class="newest" title="{_e(tip)}">[{_e(newest.get("severity"))}] {_e(newest["title"])}</div>'
        )
    return f'<td class="cell sev-{_e(severity)}" {attrs} data-severity="{_e(severity)}">{"".join(parts)}</td>'


def _matrix(report: Mapping[str, Any]) -> str:
    faults = [str(f) for f in _seq(report.get("faultKinds"))]
    rows = [_map(r) for r in _seq(report.get("rows"))]
    intro = (
        '<p class="intro">Rows are what was broken (a workload, or a dependency behind Toxiproxy), '
        "columns the fault kinds. A cell counts the finished runs: the pass rate over judged runs, "
        "the worst severity seen, recovery p50/p95 against the objective, the trend (newer half of "
        "the window against the older) and the newest finding.</p>"
    )
    if not rows or not faults:
        return (
            '<section class="part" id="matrix"><h2>Failure-mode matrix</h2>'
            f'{intro}<p class="nothing">No experiment ran in this scope.</p></section>'
        )
    head = "".join(f'<th scope="col">{_e(f)}</th>' for f in faults)
    body = []
    for row in rows:
        row_id = str(row.get("id") or row.get("label") or "")
        cells = _map(row.get("cells"))
        kind = str(row.get("kind") or "")
        tds = "".join(
            _cell(row_id, f, cells.get(f) if isinstance(cells.get(f), Mapping) else None) for f in faults
        )
        body.append(
            f'<tr data-row="{_e(row_id)}"><th scope="row" class="target" title="{_e(row_id)}">'
            f'{_e(row.get("label") or row_id)}<br><span class="kind">{_e(kind)}</span></th>{tds}</tr>'
        )
    return (
        '<section class="part" id="matrix"><h2>Failure-mode matrix</h2>'
        f"{intro}{_legend()}"
        '<div class="matrix-wrap">'
        # equal columns; past about seven fault kinds the table scrolls sideways in its box
        f'<table class="matrix" style="min-width: {228 + 154 * len(faults)}px">'
        f'<colgroup><col class="target">{"<col>" * len(faults)}</colgroup>'
        f'<thead><tr><th scope="col">target</th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div></section>"
    )


# ---------------------------------------------------------------------------------------------------
# the recovery charts


def _nice_ceiling(value: float) -> tuple[float, float]:
    """(top, step) of a y axis that shows `value` with about four gridlines."""
    if value <= 0:
        return 10.0, 2.5
    raw = value / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return step * math.ceil(value / step), step


def _fmt(number: float) -> str:
    return f"{number:.1f}".rstrip("0").rstrip(".")


def _chart_legend() -> str:
    dots = "".join(
        f'<span><svg width="12" height="12" aria-hidden="true"><circle cx="6" cy="6" r="5" fill="{c}"/></svg>{s}</span>'
        for s, c in POINT_COLOUR.items()
    )
    return (
        '<div class="legend"><span>Runs by severity:</span>'
        f"{dots}"
        '<span><svg width="14" height="14" aria-hidden="true"><circle cx="7" cy="7" r="5" fill="#fff" '
        'stroke="#e4572e" stroke-width="2"/><path d="M4.5 4.5l5 5M9.5 4.5l-5 5" stroke="#e4572e" '
        'stroke-width="1.6"/></svg>not recovered (top band)</span>'
        '<span><svg width="14" height="14" aria-hidden="true"><circle cx="7" cy="7" r="5" fill="#fff" '
        'stroke="#8a919c" stroke-width="2" stroke-dasharray="2 2"/></svg>errored / aborted, not measured'
        "</span>"
        '<span><svg width="26" height="10" aria-hidden="true"><line x1="0" y1="5" x2="26" y2="5" '
        'stroke="#1d2330" stroke-width="1.5" stroke-dasharray="6 4"/></svg>objective</span></div>'
    )


def _chart(experiment: Mapping[str, Any], index: int, labels: Mapping[str, str]) -> str:
    key = f"{experiment.get('namespace') or ''}/{experiment.get('name') or ''}"
    points = [_map(p) for p in _seq(experiment.get("points"))]
    objective = _number(experiment.get("objectiveSeconds"))
    timeout = _number(experiment.get("timeoutSeconds"))
    values = [v for v in (_number(p.get("recoverySeconds")) for p in points) if v is not None]
    top, step = _nice_ceiling(
        max([*values, *([objective] if objective is not None else [])], default=0) * 1.1
    )

    def y_of(seconds: float) -> float:
        return BOTTOM - (BOTTOM - TOP) * (seconds / top)

    # x: by time when every point has one and they differ; else by order
    times = [_parse_time(p.get("time")) for p in points]
    stamps = [t.timestamp() for t in times if t is not None]
    by_time = len(stamps) == len(points) and len(points) > 1 and max(stamps) > min(stamps)
    x0, x1 = LEFT + 14, WIDTH - RIGHT - 14

    def x_of(i: int) -> float:
        if len(points) <= 1:
            return (x0 + x1) / 2
        if by_time:
            return x0 + (x1 - x0) * (stamps[i] - min(stamps)) / (max(stamps) - min(stamps))
        return x0 + (x1 - x0) * i / (len(points) - 1)

    svg: list[str] = [
        f'<svg class="recovery-chart" data-experiment="{_e(key)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-labelledby="chart-title-{index}" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="chart-title-{index}">Recovery seconds of {_e(key)} per run</title>',
        f'<rect class="band" x="{LEFT}" y="{BAND_Y - 10}" width="{WIDTH - LEFT - RIGHT}" height="20" rx="3"/>',
        f'<text class="band-label" x="{LEFT - 6}" y="{BAND_Y + 4}" text-anchor="end">not rec.</text>',
    ]
    tick = 0.0
    while tick <= top + 1e-9:
        y = y_of(tick)
        svg.append(f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"/>')
        svg.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(tick)}s</text>')
        tick += step
    svg.append(f'<line class="axis" x1="{LEFT}" y1="{BOTTOM}" x2="{WIDTH - RIGHT}" y2="{BOTTOM}"/>')
    svg.append(f'<line class="axis" x1="{LEFT}" y1="{TOP - 6}" x2="{LEFT}" y2="{BOTTOM}"/>')
    # x labels: five evenly spaced times when by time; else the first and the last run
    if points:
        if by_time:
            first, span = min(stamps), max(stamps) - min(stamps)
            fmt = "%m-%d %H:%M" if span < 10 * 86400 else "%Y-%m-%d"
            for k in range(5):
                x = x0 + (x1 - x0) * k / 4
                label = dt.datetime.fromtimestamp(first + span * k / 4, dt.UTC).strftime(fmt)
                anchor = "start" if k == 0 else "end" if k == 4 else "middle"
                svg.append(f'<line class="axis" x1="{x:.1f}" y1="{BOTTOM}" x2="{x:.1f}" y2="{BOTTOM + 4}"/>')
                svg.append(f'<text x="{x:.1f}" y="{BOTTOM + 18}" text-anchor="{anchor}">{_e(label)}</text>')
        else:
            for i in sorted({0, len(points) - 1}):
                when = times[i]
                text = when.astimezone(dt.UTC).strftime("%m-%d %H:%M") if when else f"run {i + 1}"
                anchor = "middle" if len(points) == 1 else ("start" if i == 0 else "end")
                svg.append(
                    f'<text x="{x_of(i):.1f}" y="{BOTTOM + 18}" text-anchor="{anchor}">{_e(text)}</text>'
                )
    else:
        svg.append(
            f'<text class="empty" x="{(LEFT + WIDTH - RIGHT) / 2}" y="{(TOP + BOTTOM) / 2}" '
            'text-anchor="middle">no runs in this window</text>'
        )
    if objective is not None:
        y = y_of(objective)
        svg.append(
            f'<line class="objective" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}">'
            f"<title>objective {_seconds(objective)}</title></line>"
        )
        svg.append(
            f'<text class="objective-label" x="{WIDTH - RIGHT - 4}" y="{y - 5:.1f}" text-anchor="end">'
            f"objective {_seconds(objective)}</text>"
        )
    # the line through the recovered runs, broken where a run did not recover
    segments: list[list[str]] = [[]]
    for i, point in enumerate(points):
        seconds = _number(point.get("recoverySeconds"))
        if seconds is None:
            if str(point.get("phase") or "Completed") == "Completed":
                segments.append([])
            continue
        segments[-1].append(f"{x_of(i):.1f},{y_of(seconds):.1f}")
    for segment in segments:
        if len(segment) > 1:
            svg.append(f'<polyline class="series" points="{" ".join(segment)}"/>')
    for i, point in enumerate(points):
        svg.append(_point(point, x_of(i), y_of))
    svg.append("</svg>")

    retired = _map(experiment.get("retired"))
    meta = [
        _e(experiment.get("faultKind") or "?"),
        f"objective {_seconds(objective)}" if objective is not None else "no objective",
    ]
    if timeout is not None:
        meta.append(f"timeout {_seconds(timeout)}")
    meta.append(_plural(len(points), "run"))
    if _int(retired.get("runs")):
        meta.append(
            f"{_int(retired.get('runs'))} older pruned ({_int(retired.get('passed'))} passed, "
            f"{_int(retired.get('failed'))} failed, {_int(retired.get('errored'))} errored)"
        )
    return (
        f'<figure class="chart" id="experiment-{index}">'
        f'<figcaption><div class="name">{_e(key)}</div>'
        f'<div class="meta">{_e(labels.get(str(experiment.get("row")), experiment.get("row") or ""))}</div>'
        f'<div class="meta">{" · ".join(meta)}</div></figcaption>'
        f"{''.join(svg)}</figure>"
    )


def _point(point: Mapping[str, Any], x: float, y_of: Callable[[float], float]) -> str:
    seconds = _number(point.get("recoverySeconds"))
    severity = _severity(point.get("severity"))
    colour = POINT_COLOUR.get(severity or "", UNKNOWN_COLOUR)
    phase = str(point.get("phase") or "Completed")
    verdict = point.get("verdict")
    tip = (
        f"{point.get('run') or ''} · {point.get('time') or '?'} · {phase}"
        + (f" · {verdict}" if verdict else "")
        + (f" · severity {severity}" if severity else "")
        + (f" · recovered in {_seconds(seconds)}" if seconds is not None else "")
    )
    common = (
        f'data-run="{_e(point.get("run"))}" data-severity="{_e(severity or "")}" '
        f'data-phase="{_e(phase)}" data-recovered="{"true" if seconds is not None else "false"}"'
    )
    if seconds is not None:
        y = y_of(seconds)
        return (
            f'<circle class="point sev-point-{_e(severity or "unknown")}" cx="{x:.1f}" cy="{y:.1f}" r="5" '
            f'fill="{colour}" {common}><title>{_e(tip)}</title></circle>'
        )
    if phase == "Completed":
        d = 3.6
        return (
            f'<g class="not-recovered-mark"><circle class="point not-recovered" cx="{x:.1f}" cy="{BAND_Y}" '
            f'r="7" style="stroke: {colour}" {common}><title>{_e(tip + " · not recovered")}</title></circle>'
            f'<path class="cross" stroke="{colour}" d="M{x - d:.1f} {BAND_Y - d:.1f}l{2 * d:.1f} {2 * d:.1f}'
            f'M{x + d:.1f} {BAND_Y - d:.1f}l{-2 * d:.1f} {2 * d:.1f}"/></g>'
        )
    return (
        f'<circle class="point unmeasured" cx="{x:.1f}" cy="{BAND_Y}" r="5" {common}>'
        f"<title>{_e(tip + ' · not measured')}</title></circle>"
    )


def _charts(report: Mapping[str, Any]) -> str:
    experiments = [_map(e) for e in _seq(report.get("experiments"))]
    intro = (
        '<p class="intro">Recovery time of each run over time, against the experiment\'s objective '
        "(dashed). Runs that did not recover sit in the band at the top. Hover a point for its run.</p>"
    )
    if not experiments:
        return (
            '<section class="part" id="recovery"><h2>Recovery over time</h2>'
            f'{intro}<p class="nothing">No experiments in this scope.</p></section>'
        )
    labels = {
        str(_map(r).get("id")): str(_map(r).get("label") or _map(r).get("id"))
        for r in _seq(report.get("rows"))
    }
    charts = "".join(_chart(e, i, labels) for i, e in enumerate(experiments))
    return (
        '<section class="part" id="recovery"><h2>Recovery over time</h2>'
        f'{intro}{_chart_legend()}<div class="charts">{charts}</div></section>'
    )


# ---------------------------------------------------------------------------------------------------
# findings and recommendations


def _badge(severity: Any) -> str:
    known = _severity(severity)
    css = known or UNRATED
    return f'<span class="badge sev-{css}">{_e(known or severity or "?")}</span>'


def _findings(report: Mapping[str, Any]) -> str:
    findings = [_map(f) for f in _seq(report.get("findings"))]
    head = '<section class="part" id="findings"><h2>Findings</h2>'
    if not findings:
        return (
            f'{head}<p class="nothing">No findings: every run recovered within its objective.</p></section>'
        )
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for finding in findings:
        groups.setdefault(str(finding.get("label") or finding.get("row") or "?"), []).append(finding)
    parts = [head, f'<p class="intro">{_plural(len(findings), "finding")}, grouped by target.</p>']
    for label, items in groups.items():
        entries = []
        for f in items:
            severity = _severity(f.get("severity")) or UNRATED
            where = " · ".join(_e(v) for v in (f.get("faultKind"), f.get("experiment"), f.get("run")) if v)
            detail = f'<p class="evidence">{_e(f.get("detail"))}</p>' if f.get("detail") else ""
            entries.append(
                f'<li class="finding" data-severity="{_e(severity)}" data-row="{_e(f.get("row"))}">'
                f'{_badge(f.get("severity"))}<span class="title">{_e(f.get("title"))}</span>'
                f'<div class="meta">{where} · {_when(f.get("time"))}</div>{detail}</li>'
            )
        parts.append(f'<div class="finding-group"><h3>{_e(label)}</h3><ul>{"".join(entries)}</ul></div>')
    parts.append("</section>")
    return "".join(parts)


def _recommendations(report: Mapping[str, Any]) -> str:
    rules = [_map(r) for r in _seq(report.get("recommendations"))]
    head = '<section class="part" id="recommendations"><h2>Recommendations</h2>'
    if not rules:
        return f'{head}<p class="nothing">No recommendations.</p></section>'
    parts = [
        head,
        '<p class="intro">The recovery design: each rule with the evidence that triggered it and the '
        "manifest change that addresses it.</p>",
    ]
    for rule in rules:
        severity = _severity(rule.get("severity")) or UNRATED
        change = str(rule.get("change") or "").rstrip()
        parts.append(
            f'<section class="recommendation rec-{_e(severity)}" data-rule="{_e(rule.get("id"))}" '
            f'data-severity="{_e(severity)}">'
            f'<h3><span class="rule-id">{_e(rule.get("id"))}</span>{_e(rule.get("title"))} '
            f"{_badge(rule.get('severity'))}</h3>"
            + (f'<div class="target">{_e(rule.get("target"))}</div>' if rule.get("target") else "")
            + (f'<p class="evidence">{_e(rule.get("evidence"))}</p>' if rule.get("evidence") else "")
            + (f'<pre class="change">{_e(change)}</pre>' if change else "")
            + "</section>"
        )
    parts.append("</section>")
    return "".join(parts)


def render_html(report: Mapping[str, Any]) -> str:
    """The report as one self-contained HTML page (no script, no request)."""
    title = "Failure-mode report"
    namespaces = [str(n) for n in _seq(_map(report.get("scope")).get("namespaces"))]
    if namespaces:
        title += " — " + ", ".join(namespaces)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light">'
        f'<meta name="generator" content="aftershock {_e(report.get("apiVersion"))}">'
        f"<title>{_e(title)}</title><style>{STYLE}</style></head>"
        f"<body><main>{_header(report)}{_matrix(report)}{_charts(report)}{_findings(report)}"
        f"{_recommendations(report)}"
        f"<footer>aftershock · report schema {_e(report.get('apiVersion') or 'unknown')} · "
        f"generated {_when(report.get('generatedAt'))}</footer></main></body></html>\n"
    )
