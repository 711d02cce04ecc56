"""``--out DIR``: the run's record, written as it happens.

Fills, closed trades, settled orders and events (guard verdict changes and the moments of
each fault, in scenario time: what ``arbframe report`` draws over time) go to JSON-lines
files as they are delivered (buffered, flushed at least once a second of wall time and at
the end), so Ctrl-C, a crash or a kill leaves a usable record. ``summary.json`` is written
at the end, or when the run is interrupted or crashes, then with ``"complete": false``.

No record is written twice: a fill is keyed by (venue, fill id), a trade by its id, an
order by its client id, an event by its whole row. That matters when the engine is revived
from a snapshot (the ``engine_kill`` drill) or a session resumed (``--resume``): what
happened after the snapshot is booked again. A resumed run appends to the files of the run
it continues; see :meth:`Outputs.take_over`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from arbframe.errors import ArbframeError
from arbframe.hookspecs import hookimpl
from arbframe.model import Alert, Fill, GuardDecision, OrderUpdate, Trade

if TYPE_CHECKING:
    from arbframe.components import RunInfo
    from arbframe.execution import ExecutionEngine

FLUSH_EVERY_S = 1.0
KEYS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "fills": lambda row: (row["venue"], row["fill_id"]),
    "trades": lambda row: row["trade_id"],
    "orders": lambda row: row["client_id"],
    "events": lambda row: json.dumps(row, sort_keys=True),
}
"""Each file's record key, read from a row (an event has no id: the whole row is its key)."""


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=str)


class Outputs:
    name = "outputs"

    def __init__(
        self, out_dir: Path, execution: ExecutionEngine, resuming: str | None = None
    ) -> None:
        """``resuming``: the session a resumed run continues (its files are appended to)."""
        self.dir = out_dir
        self.execution = execution
        out_dir.mkdir(parents=True, exist_ok=True)
        self.written: dict[str, set[Any]] = {kind: set() for kind in KEYS}
        """The key of every record in each file."""
        if resuming is not None:
            self.take_over(resuming)
        mode = "w" if resuming is None else "a"
        self.files: dict[str, IO[str]] = {
            kind: (out_dir / f"{kind}.jsonl").open(mode, encoding="utf-8") for kind in KEYS
        }
        self._flushed = time.monotonic()
        self._summary_written = False
        self.alerts: IO[str] | None = None  # alerts.jsonl, opened with the first alert
        self._alerts_mode = mode
        if resuming is not None:
            self.catch_up()

    def take_over(self, session: str) -> None:
        """A resumed run appends to the files of the run it continues; first it reads the
        keys there and drops what the restored state does not confirm: a line a kill cut
        short, an order written before it settled (written again once it has)."""
        try:
            held = json.loads((self.dir / "summary.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):  # none yet, or cut short: nothing to tell
            held = {}
        if held.get("session", session) != session:  # ids are only unique within a session
            raise ArbframeError(
                f"--out {self.dir}: holds the record of session {held['session']}, not "
                f"{session}: resume into another directory"
            )
        orders = self.execution.orders

        def confirmed(kind: str, row: dict[str, Any]) -> bool:
            if kind != "orders":  # fills and closed trades never change once written
                return True
            order = orders.get(row["client_id"])
            return order is not None and order.settled

        for kind, key in KEYS.items():
            path = self.dir / f"{kind}.jsonl"
            if not path.exists():
                continue
            text = path.read_text(encoding="utf-8")
            lines = text.split("\n")[:-1]  # the last piece is "" or a line cut short
            rows = [_row(path, n, line) for n, line in enumerate(lines, 1)]
            kept = [(line, row) for line, row in zip(lines, rows, strict=True)
                    if confirmed(kind, row)]  # fmt: skip
            if len(kept) < len(lines) or not text.endswith("\n"):
                path.write_text("".join(line + "\n" for line, _ in kept), encoding="utf-8")
            self.written[kind] = {key(row) for _, row in kept}

    def catch_up(self) -> None:
        """What the restored state holds and the files lack: what the process that was
        killed had not flushed yet."""
        for fill in self.execution.ledger.fills:
            self._write("fills", (fill.venue, fill.fill_id), fill)
        for trade in self.execution.closed:
            if trade.fills:
                self._write("trades", trade.trade_id, trade)
        for order in self.execution.orders.values():
            if order.settled:
                self._write("orders", order.client_id, order)

    def _write(self, kind: str, key: Any, record: Any) -> None:
        written = self.written[kind]
        if key in written:  # booked again after a revival or a resume
            return
        written.add(key)
        row = record if isinstance(record, dict) else record.as_dict()
        self.files[kind].write(json.dumps(row, default=str) + "\n")
        if time.monotonic() - self._flushed >= FLUSH_EVERY_S:
            self.flush()

    def flush(self) -> None:
        for handle in (*self.files.values(), *([self.alerts] if self.alerts else [])):
            handle.flush()
        self._flushed = time.monotonic()

    @hookimpl
    def arbframe_on_fill(self, run: RunInfo, fill: Fill) -> None:
        self._write("fills", (fill.venue, fill.fill_id), fill)

    @hookimpl
    def arbframe_on_trade_closed(self, run: RunInfo, trade: Trade) -> None:
        if trade.fills:  # an entry that never filled is counted, not a trade
            self._write("trades", trade.trade_id, trade)

    @hookimpl
    def arbframe_on_order_update(self, run: RunInfo, update: OrderUpdate) -> None:
        order = self.execution.orders[update.client_id]
        if order.settled:
            self._write("orders", order.client_id, order)

    @hookimpl
    def arbframe_on_guard_decision(self, run: RunInfo, decision: GuardDecision) -> None:
        row = {"ts": decision.ts, "event": "guard", "guard": decision.guard,
               "symbol": decision.symbol, "action": decision.action.value,
               "rule": decision.rule, "reason": decision.reason,
               "until": decision.until}  # fmt: skip
        self._write("events", _event_key(row), row)

    @hookimpl
    def arbframe_on_fault(
        self, run: RunInfo, name: str, detail: dict[str, Any], fault: str, phase: str, ts: int
    ) -> None:
        row = {"ts": ts, "event": "fault", "fault": fault, "name": name, "phase": phase,
               "detail": json.loads(json.dumps(detail, default=str))}  # fmt: skip
        self._write("events", _event_key(row), row)

    @hookimpl
    def arbframe_on_alert(self, run: RunInfo, alert: Alert) -> None:
        """alerts.jsonl: the alerts the alert engine fired (``arbframe.alerting``; they carry
        their rule), so a run without alerting writes no such file."""
        if not alert.rule:
            return
        if self.alerts is None:
            self.alerts = (self.dir / "alerts.jsonl").open(self._alerts_mode, encoding="utf-8")
        row = {"ts": alert.ts, "severity": alert.severity, "rule": alert.rule,
               "title": alert.title, "detail": alert.detail}  # fmt: skip
        self.alerts.write(json.dumps(row) + "\n")

    @hookimpl
    def arbframe_on_run_end(self, run: RunInfo, summary: dict[str, Any]) -> None:
        self.finish(summary)

    def finish(self, summary: dict[str, Any]) -> None:
        """Orders not yet written (still working when the run ended), then the summary."""
        for order in self.execution.orders.values():
            self._write("orders", order.client_id, order)
        (self.dir / "summary.json").write_text(dumps(summary) + "\n", encoding="utf-8")
        self._summary_written = True
        self.flush()

    def crashed(self, summary: dict[str, Any]) -> None:
        if not self._summary_written:
            self.finish(summary)

    def close(self) -> None:
        for handle in (*self.files.values(), *([self.alerts] if self.alerts else [])):
            handle.close()


def _event_key(row: dict[str, Any]) -> str:
    return KEYS["events"](row)


def _row(path: Path, number: int, line: str) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except ValueError:
        row = None
    if not isinstance(row, dict):
        raise ArbframeError(f"{path}:{number}: not a record this run can append to")
    return row
