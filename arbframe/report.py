"""The readable end-of-run summary printed by `arbframe run`: plain words, no Python reprs."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from arbframe.summary import reference

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
COMPARATOR_WORDS = {
    "min": ">=",
    "ge": ">=",
    "max": "<=",
    "le": "<=",
    "gt": ">",
    "lt": "<",
    "eq": "==",
    "ne": "!=",
}


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "n/a"
    if key == "winrate":
        return f"{value * 100:.1f}"
    if isinstance(value, str):
        return f"{Decimal(value):,.4f}"
    if isinstance(value, float):
        return f"{value:.3f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _counts(counts: dict[str, int | bool]) -> str:
    def shown(n: int | bool) -> str:  # a flag (state_integrity) reads as one, not as 1
        return ("ok" if n else "FAILED") if isinstance(n, bool) else f"{n:,}"

    return ", ".join(f"{name} {shown(n)}" for name, n in counts.items()) or "none"


def _faults(faults: dict[str, Any]) -> list[str]:
    kernel = ("timeline", "unrecovered", "duplicate_orders")
    counts = {k: v for k, v in faults.items() if k not in kernel}
    out = [f"faults: {_counts(counts)}"] if counts else []
    for name, t in faults["timeline"].items():
        moments = [
            f"{what} {_seconds(t[f'{what}_at_s'])}"
            for what in ("injected", "detected", "recovered")
            if t[f"{what}_at_s"] is not None
        ]
        mttr = "" if t["mttr_s"] is None else f" (time to repair {_seconds(t['mttr_s'])})"
        unrecovered = " NOT RECOVERED" if t["detected_at_s"] is not None and not mttr else ""
        on = f" on {t['target']}" if t["target"] else ""
        out.append(
            f"fault {name} ({t['type']}{on}): {', '.join(moments) or 'never fired'}{mttr}"
            f"{unrecovered}"
        )
    return out


def _seconds(value: float) -> str:
    return f"{value:g}s"


def _value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "none"}[value]
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return (
            "{" + _counts(value) + "}" if all(isinstance(v, int) for v in value.values()) else "…"
        )
    return str(value)


def _clock(at: str | None) -> str:
    """The time of day of an ISO timestamp (the date when it is not the run's first)."""
    return at[11:19] if at else "?"


def _table(summary: dict[str, Any]) -> list[str]:
    rows = [["portfolio"] + [_cell(k, summary["portfolio"][k]) for _, k in COLUMNS]]
    for symbol, k in summary["symbols"].items():
        rows.append([symbol] + [_cell(key, k[key]) for _, key in COLUMNS])
    if len(summary.get("strategies", {})) > 1:
        for name, k in summary["strategies"].items():
            rows.append([f"[{name}]"] + [_cell(key, k[key]) for _, key in COLUMNS])
    header = [""] + [title for title, _ in COLUMNS]
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    line = "  ".join
    return [line(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]]


def _halts(summary: dict[str, Any]) -> list[str]:
    out = []
    for name, first in summary.get("guard_first", {}).items():
        if "block" in first:
            block = first["block"]
            count = summary["guards"]["by_guard"][name]["block"]
            out.append(
                f"guard {name} first blocked an entry at {_clock(block['at'])} "
                f"({block['reason']}); {count:,} entry checks blocked"
            )
    for halt in summary["execution"]["halts"]:
        out.append(f"trade {halt['trade_id']} halted: {halt['why']}")
    return out


def _loop(loop: dict[str, Any]) -> str:
    """The wall clock's loop health on one line."""

    def figures(f: dict[str, Any], unit: str) -> str:
        if not f["count"]:
            return "none"
        return f"p50 {f['p50']:g} / p99 {f['p99']:g} / max {f['max']:g} {unit}"

    return (
        f"loop: lag {figures(loop['lag_ms'], 'ms')}; quote to decision "
        f"{figures(loop['quote_to_decision_us'], 'µs')}; decision to order "
        f"{figures(loop['decision_to_order_us'], 'µs')}"
    )


def _expectation(e: dict[str, Any]) -> str:
    mark = "PASS" if e["passed"] else "FAIL"
    resolved = e.get("resolved", {})
    wanted = " and ".join(
        f"{COMPARATOR_WORDS[op]} "
        + (
            f"{_reference(v)} = {_value(resolved[op])}"
            if op in resolved
            else _reference(v)
            if reference(v)
            else _value(v)
        )
        for op, v in e["expected"].items()
    )
    actual = e.get("error") or f"actual {_value(e['actual'])}"
    return f"  {mark}  {e['name']} {wanted}  ({actual})"


def _reference(expected: dict[str, str]) -> str:
    """`{sum: symbols.*.pnl}` as `sum(symbols.*.pnl)`."""
    [(how, path)] = expected.items()
    return f"{how}({path})"


def format_summary(
    summary: dict[str, Any], wall_s: float | None = None, out_dir: Path | None = None
) -> str:
    p = summary["portfolio"]
    took = f" in {wall_s:.2f}s" if wall_s is not None else ""
    t = summary["time"]
    out = [
        f"{summary['scenario']} ({summary['mode']}, seed {summary['seed']}): "
        f"{summary['events']['quotes']:,} quotes over {t['elapsed_s']:g}s of scenario time"
        f"{took}",
        f"data from {t['first'] or '?'} to {t['last'] or '?'}"
        + ("" if summary["complete"] else "  (INTERRUPTED: partial results)"),
        *_table(summary),
        f"PnL in {summary['report_currency']}; exits by reason: {_counts(p['exit_reasons'])}",
        f"orders: {_counts(summary['orders'])}",
    ]
    for name, counts in summary["guards"]["by_guard"].items():
        refused = {a: n for a, n in counts.items() if a in ("degrade", "cooldown", "block")}
        if refused:
            out.append(f"guard {name} refused: {_counts(refused)}")
    out.extend(_halts(summary))
    if summary["execution"]["refused"]:
        out.append(  # per intent: one refused by two guards counts once, under `guard`
            f"entry intents refused: {_counts(summary['execution']['refused'])}"
        )
    if summary["alerts"]:
        out.append(f"alerts: {_counts(summary['alerts'])}")
    out.extend(_faults(summary["faults"]))
    duplicates = {n: v["duplicate_orders"] for n, v in summary["venues"].items()
                  if v.get("duplicate_orders")}  # fmt: skip
    if duplicates:
        out.append(f"orders refused by venues as duplicates: {_counts(duplicates)}")
    if "loop" in summary:
        out.append(_loop(summary["loop"]))
    rec = summary["reconciliation"]
    fills = rec["fills"]
    if rec["passed"]:
        priced = fills["checked"] - fills["unverifiable"]
        unpriced = f" ({fills['unverifiable']:,} not priceable)" if fills["unverifiable"] else ""
        out.append(
            f"reconciliation: {fills['checked']:,} fills checked against the fee schedules, "
            f"{priced:,} priced against the published books{unpriced}; balances equal to "
            "the venue accounts to the unit"
        )
    else:
        out.append("reconciliation: FAILED")
        out.extend(f"  {v}" for v in rec["violations"])
    if rec.get("checks"):
        out.append(_live(rec))
    out.extend(_expectation(e) for e in summary["expectations"])
    if not summary["complete"]:
        verdict = "INTERRUPTED: a partial run passes no expectation"
    else:
        verdict = "all expectations hold" if summary["passed"] else "EXPECTATIONS FAILED"
    out.append(verdict + (f"; outputs in {out_dir}" if out_dir else ""))
    return "\n".join(out)


def _live(rec: dict[str, Any]) -> str:
    """The reconciliation with the venues during the run, on one line."""
    checks = rec["checks"].values()
    opened = sum(c["open_orders"] for c in checks)
    compared, skipped = (
        sum(c["balances"] for c in checks),
        sum(c["balances_skipped"] for c in checks),
    )
    orphans = rec["orphans"]
    line = (
        f"venues checked during the run: {opened} open-orders answers, {compared} balance "
        f"reads compared ({skipped} skipped with orders in flight); orphans {orphans['found']} "
        f"found, {orphans['canceled']} canceled, {orphans['adopted']} adopted"
    )
    booked = ", ".join(f"{a['venue']} {a['asset']} {a['amount']}" for a in rec["adjustments"])
    return line + (f"; balance mismatches booked: {booked}" if booked else "")
