"""The readable end-of-run summary printed by `arbframe run`."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

COLUMNS = [
    ("entries", "entries"),
    ("exits", "exits"),
    ("closed", "trades_closed"),
    ("win%", "winrate"),
    ("avg R", "avg_r"),
    ("net PnL", "pnl"),
    ("fees", "fees"),
    ("slippage", "slippage"),
    ("max DD", "max_drawdown"),
    ("sharpe", "sharpe"),
    ("hold s", "avg_hold_s"),
]


def _cell(key: str, value: Any) -> str:
    if key == "winrate":
        return f"{value * 100:.1f}"
    if isinstance(value, str):
        return f"{Decimal(value):,.4f}"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def format_summary(
    summary: dict[str, Any], wall_s: float | None = None, out_dir: Path | None = None
) -> str:
    rows = [["portfolio"] + [_cell(k, summary["portfolio"][k]) for _, k in COLUMNS]]
    for symbol, k in summary["symbols"].items():
        rows.append([symbol] + [_cell(key, k[key]) for _, key in COLUMNS])
    header = [""] + [title for title, _ in COLUMNS]
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    line = "  ".join
    out = []
    p = summary["portfolio"]
    took = f" in {wall_s:.2f}s" if wall_s is not None else ""
    out.append(
        f"{summary['scenario']} ({summary['mode']}, seed {summary['seed']}): "
        f"{summary['events']['quotes']:,} quotes over {summary['time']['elapsed_s']:g}s "
        f"of scenario time{took}"
    )
    out.append(line(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    out.extend(line(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows)
    out.append(
        f"PnL in {summary['report_currency']}; exits by reason: "
        f"{p['exit_reasons'] or 'none'}; orders: {summary['orders'] or 'none'}"
    )
    if summary["guards"]:
        out.append(f"guards: {summary['guards']}")
    if summary["alerts"]:
        out.append(f"alerts: {summary['alerts']}")
    if summary["faults"]:
        out.append(f"faults: {summary['faults']}")
    out.append(
        "ledger: reconciled to the unit"
        if summary["ledger"]["reconciled"]
        else "ledger: NOT RECONCILED (see summary.json ledger)"
    )
    for e in summary["expectations"]:
        mark = "PASS" if e["passed"] else "FAIL"
        out.append(f"  {mark}  {e['name']} {e['expected']}  (actual: {e['actual']})")
    verdict = "all expectations hold" if summary["passed"] else "EXPECTATIONS FAILED"
    out.append(verdict + (f"; outputs in {out_dir}" if out_dir else ""))
    return "\n".join(out)
