"""``--out DIR``: the run's record, written as it happens.

Fills, closed trades and settled orders go to JSON-lines files as their events are
delivered (buffered, flushed at least once a second of wall time and at the end), so
Ctrl-C, a crash or a kill leaves a usable record. ``summary.json`` is written at the end,
or when the run is interrupted or crashes, then with ``"complete": false``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from arbframe.hookspecs import hookimpl
from arbframe.model import Fill, OrderUpdate, Trade

if TYPE_CHECKING:
    from arbframe.components import RunInfo
    from arbframe.execution import ExecutionEngine

FLUSH_EVERY_S = 1.0


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=str)


class Outputs:
    name = "outputs"

    def __init__(self, out_dir: Path, execution: ExecutionEngine) -> None:
        self.dir = out_dir
        self.execution = execution
        out_dir.mkdir(parents=True, exist_ok=True)
        self.files: dict[str, IO[str]] = {
            kind: (out_dir / f"{kind}.jsonl").open("w", encoding="utf-8")
            for kind in ("fills", "trades", "orders")
        }
        self.counts = dict.fromkeys(self.files, 0)
        self._written: set[str] = set()  # client ids of orders written
        self._flushed = time.monotonic()
        self._summary_written = False

    def _write(self, kind: str, row: dict[str, Any]) -> None:
        self.files[kind].write(json.dumps(row, default=str) + "\n")
        self.counts[kind] += 1
        if time.monotonic() - self._flushed >= FLUSH_EVERY_S:
            self.flush()

    def flush(self) -> None:
        for handle in self.files.values():
            handle.flush()
        self._flushed = time.monotonic()

    @hookimpl
    def arbframe_on_fill(self, run: RunInfo, fill: Fill) -> None:
        self._write("fills", fill.as_dict())

    @hookimpl
    def arbframe_on_trade_closed(self, run: RunInfo, trade: Trade) -> None:
        if trade.fills:  # an entry that never filled is counted, not a trade
            self._write("trades", trade.as_dict())

    @hookimpl
    def arbframe_on_order_update(self, run: RunInfo, update: OrderUpdate) -> None:
        order = self.execution.orders[update.client_id]
        if order.settled and order.client_id not in self._written:
            self._written.add(order.client_id)
            self._write("orders", order.as_dict())

    @hookimpl
    def arbframe_on_run_end(self, run: RunInfo, summary: dict[str, Any]) -> None:
        self.finish(summary)

    def finish(self, summary: dict[str, Any]) -> None:
        """Orders not yet written (still working when the run ended), then the summary."""
        for order in self.execution.orders.values():
            if order.client_id not in self._written:
                self._written.add(order.client_id)
                self._write("orders", order.as_dict())
        (self.dir / "summary.json").write_text(dumps(summary) + "\n", encoding="utf-8")
        self._summary_written = True
        self.flush()

    def crashed(self, summary: dict[str, Any]) -> None:
        if not self._summary_written:
            self.finish(summary)

    def close(self) -> None:
        for handle in self.files.values():
            handle.close()
