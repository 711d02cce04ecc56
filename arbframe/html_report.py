"""`arbframe report RUN_DIR`: one self-contained HTML page from a run's ``--out`` directory.

It reads only the files a run writes (summary.json, trades.jsonl, events.jsonl,
alerts.jsonl), never the engine. Money is summed as ``Decimal`` from the trades, so every
figure on the page is the trades' own; charts get floats only to draw. plotly.js is inlined
once in the page (no CDN): the file opens offline, and can be mailed or archived as it is.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from arbframe.errors import ArbframeError
from arbframe.html_page import chart, note, page, section, stamp, table, when, write_html
from arbframe.model import money

ZERO = Decimal(0)
TRADE_KEYS = ("trade_id", "symbol", "route", "opened_at", "closed_at", "exit_reason", "net_pnl")
ACTION_COLOURS = {"degrade": "#f0ad4e", "cooldown": "#1f77b4", "block": "#d62728"}
MAX_TRADE_ROWS = 10_000
PHASE_COLOURS = {"injected": "#d62728", "detected": "#ff7f0e", "recovered": "#2ca02c"}


# ---- reading a run directory ---------------------------------------------------------------


@dataclass
class RunRecord:
    """What a run directory holds."""

    dir: Path
    summary: dict[str, Any]
    trades: list[dict[str, Any]]
    events: list[dict[str, Any]] | None  # None: written before runs recorded events.jsonl
    alerts: list[dict[str, Any]] = field(default_factory=list)


def load_run(directory: Path) -> RunRecord:
    """Read a run directory; a clear error (exit 2) when it is not one."""
    if not directory.exists():
        raise ArbframeError(f"{directory}: no such run directory")
    if not directory.is_dir():
        raise ArbframeError(f"{directory}: not a directory (a run's --out DIR is one)")
    summary_path = directory / "summary.json"
    if not summary_path.exists():
        raise ArbframeError(
            f"{directory}: no summary.json, so not a run directory "
            f"(`arbframe run SCENARIO --out {directory}` writes one)"
        )
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ArbframeError(f"{summary_path}: not valid JSON ({err})") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("portfolio"), dict):
        raise ArbframeError(f"{summary_path}: not a run summary (no portfolio)")
    trades = _jsonl(directory / "trades.jsonl", required=True)
    for number, trade in enumerate(trades, 1):
        missing = [key for key in TRADE_KEYS if key not in trade]
        if missing:
            raise ArbframeError(
                f"{directory / 'trades.jsonl'}:{number}: a trade without {', '.join(missing)}"
            )
    events_path = directory / "events.jsonl"
    events = _jsonl(events_path) if events_path.exists() else None
    return RunRecord(directory, summary, trades, events, _jsonl(directory / "alerts.jsonl"))


def _jsonl(path: Path, required: bool = False) -> list[dict[str, Any]]:
    """The rows of a JSON-lines file; a last line a kill cut short is left out."""
    if not path.exists():
        if required:
            raise ArbframeError(f"{path}: missing (a run's --out DIR has it)")
        return []
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            if number == len(lines):  # no newline after it: the write was cut short
                continue
            raise ArbframeError(f"{path}:{number}: not valid JSON") from None
        if not isinstance(row, dict):
            raise ArbframeError(f"{path}:{number}: not a record")
        rows.append(row)
    return rows


# ---- figures from the trades, exact ----------------------------------------------------------


def equity_curve(trades: list[dict[str, Any]]) -> list[tuple[int, Decimal, Decimal]]:
    """(close time ns, realised PnL so far, drawdown from its peak) at each close, in close
    order: the KPIs' own definition (arbframe/kpi.py), without equity_start. Sorted by close
    time, stably: a resumed run appends what it caught up with after newer lines."""
    equity = peak = ZERO
    points = []
    for trade in sorted(trades, key=lambda t: int(t["closed_at"])):
        equity += Decimal(trade["net_pnl"])
        peak = max(peak, equity)
        points.append((int(trade["closed_at"]), equity, peak - equity))
    return points


def pnl_by(trades: list[dict[str, Any]], *keys: str) -> dict[tuple[str, ...], Decimal]:
    """Net PnL summed per value of ``keys`` (e.g. symbol and route)."""
    sums: dict[tuple[str, ...], Decimal] = defaultdict(lambda: ZERO)
    for trade in trades:
        sums[tuple(str(trade[k]) for k in keys)] += Decimal(trade["net_pnl"])
    return dict(sums)


# ---- the run report ----------------------------------------------------------------------------


def run_report(record: RunRecord) -> str:
    s = record.summary
    passed = "passed" if s.get("passed") else "FAILED"
    subtitle = (
        f"run directory {record.dir} - seed {s.get('seed')}, {s.get('mode')}, "
        f"{s.get('clock')} clock, {s.get('time', {}).get('first')} to "
        f"{s.get('time', {}).get('last')}; expectations {passed}"
        + ("" if s.get("complete", True) else "; INCOMPLETE run (interrupted or crashed)")
    )
    currency = s.get("report_currency", "")
    sections = [
        _overview(s, currency),
        _equity(record, currency),
        _heatmap(record, currency),
        _exits(record, currency),
        _guards(record),
        _faults(record),
        _trades(record),
    ]
    return page(f"arbframe report: {s.get('scenario', record.dir.name)}", subtitle, sections)


def _overview(s: dict[str, Any], currency: str) -> str:
    p = s["portfolio"]
    keys = (
        "trades_closed",
        "entries",
        "exits",
        "wins",
        "losses",
        "winrate",
        "pnl",
        "gross_pnl",
        "fees",
        "slippage",
        "max_drawdown",
        "max_drawdown_pct",
        "sharpe",
        "expectancy",
        "avg_r",
        "avg_hold_s",
        "open_trades",
    )
    rows = [[key, p.get(key)] for key in keys if key in p]
    expectations = [
        [
            e.get("name"),
            "yes" if e.get("passed") else "NO",
            json.dumps(e.get("actual")),
            json.dumps(e.get("expected")),
        ]
        for e in s.get("expectations", [])
        if isinstance(e, dict)
    ]
    parts = [note(f"money in {currency}, exact, as summary.json has it")]
    parts.append(table(["kpi", "value"], rows))
    if expectations:
        parts.append(table(["expectation", "passed", "actual", "expected"], expectations))
    return section("Portfolio", *parts)


def _equity(record: RunRecord, currency: str) -> str:
    from plotly.subplots import make_subplots

    points = equity_curve(record.trades)
    if not points:
        return section("Realised equity and drawdown", note("no closed trades"))
    x = [when(ts) for ts, _, _ in points]
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.65, 0.35], vertical_spacing=0.06
    )
    fig.add_scatter(
        x=x,
        y=[float(e) for _, e, _ in points],
        name="realised PnL",
        line={"shape": "hv", "color": "#1f77b4"},
        row=1,
        col=1,
    )
    fig.add_scatter(
        x=x,
        y=[-float(d) for _, _, d in points],
        name="drawdown",
        fill="tozeroy",
        line={"shape": "hv", "color": "#d62728"},
        row=2,
        col=1,
    )
    fig.update_yaxes(title_text=currency, row=1, col=1)
    fig.update_yaxes(title_text="drawdown", row=2, col=1)
    last, worst = points[-1][1], max(d for _, _, d in points)
    held = record.summary["portfolio"]
    return section(
        "Realised equity and drawdown",
        note(
            "Realised: the closed trades' net PnL (after fees), stepped at each close; open "
            "positions and inventory revaluation are not in it."
        ),
        chart("equity", fig, 460),
        table(
            ["", "from the trades", "summary.json"],
            [
                [f"realised PnL ({currency})", last, held.get("pnl")],
                [f"max drawdown ({currency})", worst, held.get("max_drawdown")],
            ],
        ),
    )


def _heatmap(record: RunRecord, currency: str) -> str:
    import plotly.graph_objects as go

    sums = pnl_by(record.trades, "symbol", "route")
    if not sums:
        return section("PnL by symbol and route", note("no closed trades"))
    symbols = sorted({symbol for symbol, _ in sums})
    routes = sorted({route for _, route in sums})
    z = [[float(sums[(s, r)]) if (s, r) in sums else None for r in routes] for s in symbols]
    text = [[money(sums[(s, r)]) if (s, r) in sums else "" for r in routes] for s in symbols]
    bound = max(abs(v) for row in z for v in row if v is not None) or 1.0
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=routes,
            y=symbols,
            text=text,
            texttemplate="%{z:.2f}",
            colorscale="RdYlGn",
            zmid=0,
            zmin=-bound,
            zmax=bound,
            hovertemplate="%{y} %{x}: %{text}<extra></extra>",
        )
    )
    height = max(260, 60 + 40 * len(symbols))
    counts = Counter((str(t["symbol"]), str(t["route"])) for t in record.trades)
    rows = [[s, r, counts[(s, r)], v] for (s, r), v in sorted(sums.items())]
    return section(
        "PnL by symbol and route",
        note(f"net PnL of the closed trades, {currency}"),
        chart("heatmap", fig, height),
        table(["symbol", "route", "trades", f"net PnL ({currency})"], rows, scroll=True),
    )


def _exits(record: RunRecord, currency: str) -> str:
    from plotly.subplots import make_subplots

    trades = record.trades
    if not trades:
        return section("Exit reasons and spreads", note("no closed trades"))
    sums = pnl_by(trades, "exit_reason")
    reasons = sorted(reason for (reason,) in sums)
    counts = Counter(str(t["exit_reason"]) for t in trades)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("trades", f"net PnL ({currency})"))
    fig.add_bar(
        x=reasons,
        y=[counts[r] for r in reasons],
        name="trades",
        row=1,
        col=1,
        marker_color="#1f77b4",
    )
    fig.add_bar(
        x=reasons,
        y=[float(sums[(r,)]) for r in reasons],
        name="net PnL",
        row=1,
        col=2,
        marker_color="#9467bd",
    )
    fig.update_layout(showlegend=False)
    spreads = make_subplots(rows=1, cols=1)
    for reason in reasons:
        mine = [t for t in trades if t["exit_reason"] == reason]
        spreads.add_scatter(
            x=[t.get("entry_spread_bps") for t in mine],
            y=[t.get("exit_spread_bps") for t in mine],
            text=[t["trade_id"] for t in mine],
            mode="markers",
            name=reason,
        )
    spreads.update_xaxes(title_text="entry spread (bp)")
    spreads.update_yaxes(title_text="exit spread (bp)")
    return section(
        "Exit reasons and spreads",
        chart("exits", fig, 320),
        chart("spreads", spreads, 380),
    )


def _guards(record: RunRecord) -> str:
    import plotly.graph_objects as go

    guards = record.summary.get("guards", {})
    triggers = [[rule, n] for rule, n in sorted(guards.get("triggers", {}).items())]
    decisions = [
        [guard, *(counts.get(a, 0) for a in ("allow", "degrade", "cooldown", "block"))]
        for guard, counts in sorted(guards.get("decisions", {}).items())
    ]
    parts = []
    if record.events is None:
        parts.append(
            note(
                "no events.jsonl in this run directory (recorded before arbframe "
                "wrote one): the counts only"
            )
        )
    else:
        changes = [e for e in record.events if e.get("event") == "guard"]
        if changes:
            fig = go.Figure()
            for action in sorted({e["action"] for e in changes}):
                mine = [e for e in changes if e["action"] == action]
                fig.add_scatter(
                    x=[when(e["ts"]) for e in mine],
                    y=[f"{e['guard']}: {e.get('rule') or action}" for e in mine],
                    text=[f"{e.get('symbol', '')} {e.get('reason', '')}" for e in mine],
                    mode="markers",
                    name=action,
                    marker={"size": 11, "color": ACTION_COLOURS.get(action)},
                )
            parts.append(note("each time a guard's verdict on its scope turned from allow"))
            lanes = {f"{e['guard']}: {e.get('rule') or e['action']}" for e in changes}
            parts.append(chart("guards", fig, 180 + 30 * len(lanes)))
        else:
            parts.append(note("no guard refused an entry"))
    parts.append(table(["rule", "triggers"], triggers) if triggers else "")
    parts.append(table(["guard", "allow", "degrade", "cooldown", "block"], decisions))
    return section("Guard triggers", *parts)


def _faults(record: RunRecord) -> str:
    import plotly.graph_objects as go

    s = record.summary
    start = s.get("time", {}).get("start_ns") or 0
    end = s.get("time", {}).get("end_ns")
    timeline = s.get("faults", {}).get("timeline", {})
    alerts = [
        [stamp(a.get("ts")), a.get("severity"), a.get("rule"), a.get("title"), a.get("detail")]
        for a in record.alerts
    ]
    if not timeline and not alerts:
        return section("Faults and alerts", note("no fault injected, no alert fired"))

    def at(seconds: float | None) -> datetime | None:
        return None if seconds is None else when(start + round(seconds * 1e9))

    parts = []
    if timeline:
        fig = go.Figure()
        for name, f in timeline.items():  # a bar from injection to recovery (or the end)
            begin = at(f.get("injected_at_s"))
            finish = at(f.get("recovered_at_s")) or when(end)
            if begin is not None and finish is not None:
                fig.add_scatter(
                    x=[begin, finish],
                    y=[name, name],
                    mode="lines",
                    line={"width": 14, "color": "#cccccc"},
                    showlegend=False,
                    hoverinfo="skip",
                )
        firings = [
            (e["fault"], when(e["ts"]))
            for e in record.events or ()
            if e.get("event") == "fault" and e.get("phase") == "injected"
        ]
        for phase, colour in PHASE_COLOURS.items():
            moments = [(name, at(f.get(f"{phase}_at_s"))) for name, f in timeline.items()]
            if phase == "injected":
                moments += firings  # every firing, not only the first
            moments = [(n, m) for n, m in moments if m is not None]
            fig.add_scatter(
                x=[m for _, m in moments],
                y=[n for n, _ in moments],
                mode="markers",
                name=phase,
                marker={"size": 17 if phase == "injected" else 11, "color": colour},
            )
        parts.append(
            note(
                "each fault from its first firing to its recovery (grey; to the "
                "end of the run if it never recovered); every firing marked"
            )
        )
        parts.append(chart("faults", fig, max(260, 120 + 40 * len(timeline))))
        rows = [
            [
                name,
                f.get("type"),
                f.get("target"),
                f.get("firings"),
                f.get("injected_at_s"),
                f.get("detected_at_s"),
                f.get("recovered_at_s"),
                f.get("mttr_s"),
            ]
            for name, f in timeline.items()
        ]
        parts.append(
            table(
                [
                    "fault",
                    "type",
                    "target",
                    "firings",
                    "injected (s)",
                    "detected (s)",
                    "recovered (s)",
                    "time to repair (s)",
                ],
                rows,
            )
        )
    if alerts:
        parts.append(
            table(["time (UTC)", "severity", "rule", "title", "detail"], alerts, scroll=True)
        )
    return section("Faults and alerts", *parts)


def _trades(record: RunRecord) -> str:
    headers = [
        "trade",
        "symbol",
        "route",
        "opened (UTC)",
        "closed (UTC)",
        "hold (s)",
        "entry spread (bp)",
        "exit spread (bp)",
        "exit reason",
        "notional",
        "gross PnL",
        "fees",
        "slippage",
        "net PnL",
    ]
    rows = [
        [
            t["trade_id"],
            t["symbol"],
            t["route"],
            stamp(t["opened_at"]),
            stamp(t["closed_at"]),
            round((t["closed_at"] - t["opened_at"]) / 1e9, 3),
            t.get("entry_spread_bps"),
            t.get("exit_spread_bps"),
            t["exit_reason"],
            Decimal(t.get("notional", "0")),
            Decimal(t.get("gross_pnl", "0")),
            Decimal(t.get("fees", "0")),
            Decimal(t.get("slippage", "0")),
            Decimal(t["net_pnl"]),
        ]
        for t in record.trades[:MAX_TRADE_ROWS]
    ]
    shown = len(record.trades)
    if shown > MAX_TRADE_ROWS:  # a long run's page stays small enough to open
        shown = f"the first {MAX_TRADE_ROWS:,} of {len(record.trades):,}; trades.jsonl has all"
    return section(
        f"Trades ({shown})",
        table(headers, rows, scroll=True) if rows else note("no closed trades"),
    )


def write_run_report(directory: Path, out: Path | None = None) -> Path:
    """Write the report of the run in ``directory`` (default ``DIRECTORY/report.html``)."""
    html = run_report(load_run(directory))
    return write_html(out or directory / "report.html", html)
