"""Writes the three Grafana dashboards beside this file: ``python monitoring/grafana/generate.py``.

The JSON files are what you import; this script is how they are kept consistent (one
datasource variable, one instance variable, every query filtered by instance). Every query
uses metrics arbframe/metrics.py exposes; tests/test_monitoring.py evaluates each one against
a real Prometheus scraping a session.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
I = 'instance=~"$instance"'  # noqa: E741 (short: it is in every query)
DS = {"type": "prometheus", "uid": "${datasource}"}


def q(expr: str, legend: str = "", fmt: str = "time_series") -> dict[str, Any]:
    return {"expr": expr, "legendFormat": legend, "format": fmt, "refId": "A", "datasource": DS}


def panel(
    title: str,
    targets: list[dict[str, Any]],
    kind: str = "timeseries",
    unit: str = "short",
    w: int = 12,
    h: int = 8,
    description: str = "",
) -> dict[str, Any]:
    for i, target in enumerate(targets):
        target["refId"] = chr(ord("A") + i)
    body: dict[str, Any] = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": targets,
        "gridPos": {"w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
    }
    if kind == "heatmap":
        body["options"] = {"calculate": False, "yAxis": {"axisPlacement": "left"}}
    return body


def dashboard(uid: str, title: str, panels: list[dict[str, Any]]) -> dict[str, Any]:
    x = y = 0
    row_h = 0
    for n, p in enumerate(panels, 1):
        grid = p["gridPos"]
        if x + grid["w"] > 24:
            x, y = 0, y + row_h
            row_h = 0
        grid.update(x=x, y=y)
        p["id"] = n
        x += grid["w"]
        row_h = max(row_h, grid["h"])
    return {
        "uid": uid,
        "title": title,
        "tags": ["arbframe"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "10s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                },
                {
                    "name": "instance",
                    "label": "Session",
                    "type": "query",
                    "datasource": DS,
                    "query": {"query": "label_values(arbframe_up, instance)", "refId": "v"},
                    "definition": "label_values(arbframe_up, instance)",
                    "includeAll": True,
                    "multi": True,
                    "allValue": ".*",
                    "current": {},
                    "refresh": 2,
                    "hide": 0,
                },
            ]
        },
        "annotations": {"list": []},
        "panels": panels,
    }


def rate(metric: str, by: str = "instance", fn: str = "rate") -> str:
    return f"sum by ({by}) ({fn}({metric}{{{I}}}[$__rate_interval]))"


def quantile(metric: str, q_: float) -> str:
    inner = f"sum by (instance, le) (rate({metric}_bucket{{{I}}}[$__rate_interval]))"
    return f"histogram_quantile({q_}, {inner})"


SYSTEM = dashboard(
    "arbframe-system",
    "arbframe: system health",
    [
        panel("Exporter up", [q(f"arbframe_up{{{I}}}", "{{instance}}")], "stat", w=6, h=4),
        panel("Trading", [q(f"arbframe_running{{{I}}}", "{{instance}}")], "stat", w=6, h=4,
              description="1 while the run trades, 0 once it has ended"),
        panel("Sessions", [q(f"arbframe_run_info{{{I}}}", "", "table")], "table", w=12, h=4),
        panel("Book updates /s", [q(rate("arbframe_quotes_total"), "{{instance}}")], unit="ops"),
        panel("Book age", [q(f"arbframe_book_age_seconds{{{I}}}", "{{venue}} {{symbol}}")],
              unit="s", description="Scenario time since each book was last published"),
        panel("Quote to decision", [
            q(quantile("arbframe_quote_to_decision_seconds", 0.5), "p50 {{instance}}"),
            q(quantile("arbframe_quote_to_decision_seconds", 0.99), "p99 {{instance}}"),
        ], unit="s"),
        panel("Loop lag and decision to order (p99)", [
            q(quantile("arbframe_loop_lag_seconds", 0.99), "loop lag {{instance}}"),
            q(quantile("arbframe_decision_to_order_seconds", 0.99), "to order {{instance}}"),
        ], unit="s"),
        panel("CPU", [q(f'rate(process_cpu_seconds_total{{job="arbframe",{I}}}[$__rate_interval])',
                        "{{instance}}")], unit="percentunit"),
        panel("Memory", [q(f'process_resident_memory_bytes{{job="arbframe",{I}}}', "{{instance}}")],
              unit="bytes"),
        panel("Venue errors /s", [q(rate("arbframe_venue_errors_total", "instance, venue"),
                                    "{{venue}}")], unit="ops"),
        panel("Venue reconnects and disconnects", [
            q(rate("arbframe_venue_reconnects_total", "instance, venue", "increase"),
              "reconnects {{venue}}"),
            q(rate("arbframe_venue_disconnects_total", "instance, venue", "increase"),
              "disconnects {{venue}}"),
        ]),
        panel("Rate limited, unknown outcomes", [
            q(rate("arbframe_venue_rate_limited_total", "instance, venue", "increase"),
              "rate limited {{venue}}"),
            q(rate("arbframe_venue_unknown_outcomes_total", "instance, venue", "increase"),
              "unknown outcome {{venue}}"),
        ]),
        panel("State stores up", [q(f"arbframe_state_store_up{{{I}}}", "{{store}}")], "stat",
              w=6),
        panel("Snapshots", [q(rate("arbframe_snapshots_total", "instance, result", "increase"),
                              "{{result}}")], w=6),
        panel("Alerts raised", [q(rate("arbframe_alerts_total", "instance, severity", "increase"),
                                  "{{severity}}")]),
    ],
)  # fmt: skip

TRADING = dashboard(
    "arbframe-trading",
    "arbframe: trading KPIs",
    [
        panel("Realised PnL", [q(f"arbframe_realized_pnl{{{I}}}", "{{instance}}")], "stat", w=6,
              h=4, description="Net of fees, in the run's report currency"),
        panel("Win ratio", [q(f"arbframe_win_ratio{{{I}}}", "{{instance}}")], "stat",
              unit="percentunit", w=6, h=4),
        panel("Trades closed", [q(f"arbframe_trades_total{{{I}}}", "{{instance}}")], "stat", w=6,
              h=4),
        panel("Open positions", [q(f"arbframe_open_positions{{{I}}}", "{{instance}}")], "stat",
              w=6, h=4),
        panel("PnL timeline", [
            q(f"arbframe_realized_pnl{{{I}}}", "net {{instance}}"),
            q(f"arbframe_realized_fees{{{I}}}", "fees {{instance}}"),
        ], w=24),
        panel("Trades per hour", [q(
            f"sum by (instance) (increase(arbframe_trades_total{{{I}}}[1h]))", "{{instance}}"
        )]),
        panel("Win ratio over time", [q(f"arbframe_win_ratio{{{I}}}", "{{instance}}")],
              unit="percentunit"),
        panel("Trades by symbol (heatmap)", [q(
            rate("arbframe_symbol_trades_total", "symbol", "increase"), "{{symbol}}", "heatmap",
        )], "heatmap", w=12, description="Closed trades per interval, one row per symbol"),
        panel("PnL by symbol (heatmap)", [q(
            f"sum by (symbol) (delta(arbframe_symbol_realized_pnl{{{I}}}[$__rate_interval]))",
            "{{symbol}}", "heatmap",
        )], "heatmap", w=12, description="Realised PnL per interval, one row per symbol"),
        panel("PnL by symbol", [q(f"arbframe_symbol_realized_pnl{{{I}}}", "{{symbol}}")],
              "bargauge"),
        panel("PnL by route", [q(f"arbframe_route_realized_pnl{{{I}}}", "{{symbol}} {{route}}")],
              "bargauge"),
        panel("Orders /s by event", [q(rate("arbframe_order_events_total", "instance, event"),
                                       "{{event}}")], unit="ops"),
        panel("Order error ratio", [q(
            f'sum by (instance) (rate(arbframe_order_events_total{{event=~"rejected|expired",{I}}}'
            f'[$__rate_interval])) / sum by (instance) (rate(arbframe_order_events_total'
            f'{{event="submitted",{I}}}[$__rate_interval]))',
            "{{instance}}",
        )], unit="percentunit"),
    ],
)  # fmt: skip

RISK = dashboard(
    "arbframe-risk",
    "arbframe: risk and guards",
    [
        panel("Open positions", [q(f"arbframe_open_positions{{{I}}}", "{{instance}}")], w=8),
        panel("Oldest open position", [
            q(f"arbframe_oldest_open_position_age_seconds{{{I}}}", "{{instance}}")
        ], unit="s", w=8),
        panel("Halted trades", [q(f"arbframe_halted_trades_total{{{I}}}", "{{instance}}")],
              "stat", w=8),
        panel("Drawdown (realised)", [
            q(f"arbframe_drawdown{{{I}}}", "now {{instance}}"),
            q(f"arbframe_max_drawdown{{{I}}}", "max {{instance}}"),
        ], w=12),
        panel("Daily loss vs limit", [
            q(f'-arbframe_guard_state{{field="day_pnl",{I}}}', "day loss {{guard}}"),
            q(f'arbframe_guard_limit{{limit="daily_loss_limit",{I}}}', "limit {{guard}}"),
        ], w=12),
        panel("Guard decisions", [q(rate("arbframe_guard_decisions_total", "guard, decision",
                                         "increase"), "{{guard}} {{decision}}")]),
        panel("Guard triggers by rule", [q(rate("arbframe_guard_triggers_total", "guard, rule",
                                                "increase"), "{{guard}} {{rule}}")]),
        panel("Cooldowns in force", [q(f"arbframe_guard_cooldowns_active{{{I}}}", "{{instance}}")],
              w=8),
        panel("Entry refusals", [q(rate("arbframe_entry_refusals_total", "reason", "increase"),
                                   "{{reason}}")], w=16),
        panel("Guard state", [q(f'arbframe_guard_state{{field=~"day_pnl|cumulative|peak",{I}}}',
                                "{{guard}} {{field}}")]),
        panel("Reconciliation", [
            q(f"arbframe_reconciliation_mismatches_total{{{I}}}", "balance mismatches"),
            q(f"sum by (outcome) (arbframe_orphan_orders_total{{{I}}})", "orphans {{outcome}}"),
        ]),
        panel("Unresolved and duplicate orders", [
            q(f'arbframe_order_events_total{{event="unresolved",{I}}}', "unresolved"),
            q(f"arbframe_venue_duplicate_orders_total{{{I}}}", "duplicates {{venue}}"),
        ], "stat", w=24, h=4),
    ],
)  # fmt: skip

DASHBOARDS = {"system.json": SYSTEM, "trading.json": TRADING, "risk.json": RISK}

if __name__ == "__main__":
    for name, body in DASHBOARDS.items():
        (HERE / name).write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
