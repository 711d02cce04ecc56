"""The paper venue's account in a SQLite file, so it outlives the process that trades on it.

A real exchange keeps its client's balances and orders whatever happens to the client; a
paper venue with ``account: {path: ...}`` does the same. Every change is committed when it
happens, one transaction per venue event (an order's arrival with its fills, a resting
order's fills on a book, a cancel, a transfer), so a process killed between two events
loses nothing the venue had answered. WAL mode with ``synchronous=NORMAL``: a commit
survives the process crashing (not the machine losing power, which is not the failure
modelled).

Several venues may share a file: every row carries the venue's name.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from arbframe.model import FillReport, OrderRequest
from arbframe.orders import OrderState

SCHEMA = """
CREATE TABLE IF NOT EXISTS venues (venue TEXT PRIMARY KEY, next_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS balances (venue TEXT, asset TEXT, amount TEXT NOT NULL,
    PRIMARY KEY (venue, asset));
CREATE TABLE IF NOT EXISTS orders (venue TEXT, client_id TEXT, exchange_id TEXT, symbol TEXT,
    side TEXT, type TEXT, amount TEXT, price TEXT, state TEXT, filled TEXT, reason TEXT,
    PRIMARY KEY (venue, client_id));
CREATE TABLE IF NOT EXISTS fills (venue TEXT, fill_id TEXT, client_id TEXT, data TEXT,
    PRIMARY KEY (venue, fill_id));
CREATE TABLE IF NOT EXISTS inbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, venue TEXT,
    client_id TEXT, symbol TEXT, side TEXT, type TEXT, amount TEXT, price TEXT,
    received_at INTEGER);
CREATE TABLE IF NOT EXISTS duplicates (venue TEXT, client_id TEXT, ts INTEGER);
"""
_DECIMALS = ("price", "amount", "fee", "fee_price")


@dataclass
class Saved:
    """What a venue finds in its account file."""

    next_id: int
    balances: dict[str, Decimal]
    orders: list[tuple[OrderRequest, str, OrderState, Decimal, str, list[FillReport]]]
    inbox: list[tuple[int, OrderRequest]] = field(default_factory=list)
    duplicates: int = 0


def _request(venue: str, row: Any) -> OrderRequest:
    client_id, symbol, side, type_, amount, price = row
    price = None if price is None else Decimal(price)
    return OrderRequest(client_id, venue, symbol, side, Decimal(amount), type_, price)


def load(path: Path, venue: str) -> Saved | None:
    """The venue's saved account, or None when the file holds none for it."""
    if not path.exists():
        return None
    db = sqlite3.connect(path)  # read only: validating a scenario loads it too
    try:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
        if not {"venues", "inbox", "duplicates"} <= tables:
            return None
        head = db.execute("SELECT next_id FROM venues WHERE venue = ?", (venue,)).fetchone()
        if head is None:
            return None
        fills: dict[str, list[FillReport]] = {}
        rows = db.execute(
            "SELECT client_id, data FROM fills WHERE venue = ? ORDER BY rowid", (venue,)
        )
        for client_id, data in rows:
            raw = json.loads(data)
            raw.update({k: Decimal(raw[k]) for k in _DECIMALS})
            fills.setdefault(client_id, []).append(FillReport(**raw))
        orders = [
            (_request(venue, row[:6]), row[6], OrderState(row[7]), Decimal(row[8]), row[9],
             fills.get(row[0], []))
            for row in db.execute(
                "SELECT client_id, symbol, side, type, amount, price, exchange_id, state, filled,"
                " reason FROM orders WHERE venue = ? ORDER BY rowid",
                (venue,),
            )
        ]  # fmt: skip
        inbox = [
            (row[0], _request(venue, row[1:]))
            for row in db.execute(
                "SELECT seq, client_id, symbol, side, type, amount, price FROM inbox"
                " WHERE venue = ? ORDER BY seq",
                (venue,),
            )
        ]
        balances = {
            asset: Decimal(amount)
            for asset, amount in db.execute(
                "SELECT asset, amount FROM balances WHERE venue = ?", (venue,)
            )
        }
        (duplicates,) = db.execute(
            "SELECT COUNT(*) FROM duplicates WHERE venue = ?", (venue,)
        ).fetchone()
        return Saved(head[0], balances, orders, inbox, duplicates)
    finally:
        db.close()


class AccountFile:
    """The open account of one venue: each method is one committed transaction."""

    def __init__(self, path: Path, venue: str) -> None:
        self.venue = venue
        # Autocommit mode: each `with self.db` below is one explicit transaction.
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def _begin(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def receive(self, request: OrderRequest, now: int) -> int:
        """An order reached the venue's inbox (it executes after the venue's latency)."""
        r = request
        with self.db:
            cursor = self._begin().execute(
                "INSERT INTO inbox (venue, client_id, symbol, side, type, amount, price,"
                " received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (self.venue, r.client_id, r.symbol, r.side, r.type, str(r.amount),
                 None if r.price is None else str(r.price), now),
            )  # fmt: skip
        return cursor.lastrowid or 0

    def save(
        self,
        orders: Iterable[Any],
        balances: dict[str, Decimal],
        next_id: int,
        inbox: int | None = None,
        duplicate: tuple[str, int] | None = None,
    ) -> None:
        """One venue event: the orders it changed (with their new fills), every balance,
        the id counter; the inbox entry it consumed; a duplicate it refused."""
        venue = self.venue
        with self.db:
            db = self._begin()
            for order in orders:
                r = order.request
                db.execute(  # an upsert keeps the row (and its order of arrival)
                    "INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (venue, client_id) DO UPDATE SET exchange_id ="
                    " excluded.exchange_id, state = excluded.state, filled = excluded.filled,"
                    " reason = excluded.reason",
                    (venue, r.client_id, order.exchange_id, r.symbol, r.side, r.type,
                     str(r.amount), None if r.price is None else str(r.price),
                     order.state.value, str(order.filled), order.reason),
                )  # fmt: skip
                for fill in order.fills[order.saved :]:
                    data = json.dumps(asdict(fill), default=str)
                    db.execute(
                        "INSERT INTO fills VALUES (?, ?, ?, ?)",
                        (venue, fill.fill_id, r.client_id, data),
                    )
                order.saved = len(order.fills)
            db.executemany(
                "INSERT OR REPLACE INTO balances VALUES (?, ?, ?)",
                [(venue, asset, str(amount)) for asset, amount in balances.items()],
            )
            db.execute("INSERT OR REPLACE INTO venues VALUES (?, ?)", (venue, next_id))
            if inbox is not None:
                db.execute("DELETE FROM inbox WHERE seq = ?", (inbox,))
            if duplicate is not None:
                db.execute("INSERT INTO duplicates VALUES (?, ?, ?)", (venue, *duplicate))
