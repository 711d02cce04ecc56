"""A third-party exchange plugin, installed the way a user installs one.

``tests/thirdparty/arbframe-dealer`` is a package of its own: the ``dealer`` venue type (a
simulated OTC dealer), registered through the ``arbframe`` entry-point group.

**The fresh environment.** ``fresh_env`` creates a new virtualenv in a temporary directory
(``python -m venv``, its own pip) and runs one ``pip install`` of copies of this repository
and of the dealer package: a real install, arbframe's dependencies resolved from the
configured index, nothing shared with the environment running the tests. Measured on the
shared 2-core machine: about 4 s for the virtualenv and 7 to 18 s for the install,
depending on the load (9 s with pip's cache off too: the index there is a local mirror),
the whole module 15 to 35 s. That is far below the ~90 s at which letting the fresh
environment see this one's packages (``--system-site-packages``, then ``--no-deps
--no-build-isolation``) would pay, so it makes none of those shortcuts. pip builds a local
directory in place (``build/``, ``*.egg-info``), hence the copies: the repository is left
alone. The commands then run in a scratch directory, so neither the repository nor this
environment is on their ``sys.path``; ``test_the_install_is_real`` checks where the modules
come from. The timings print with ``pytest -s``. It runs under CI's tox-uv as well, whose
environments have no pip: the new virtualenv gets its own (ensurepip).

The rest imports the dealer's module by path and checks what the scenario does not show:
rejections, queries, a reused client id, and that the reconciliation catches a dealer
charging more than it publishes. An installed plugin that breaks is reported naming its
distribution: ``tests/test_broken_plugins.py`` (an exchange at the wrong interface version
among them).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from arbframe.clock import SimClock
from arbframe.components import ExchangeContext, RunInfo
from arbframe.model import (
    BUY,
    LIMIT,
    SELL,
    Accepted,
    Book,
    CancelRejected,
    Closed,
    FillReport,
    OrderNotFound,
    OrderRequest,
    OrderStatus,
)
from arbframe.orders import OrderState
from arbframe.testing import run_scenario_file

REPO = Path(__file__).resolve().parents[1]
DEALER = REPO / "tests" / "thirdparty" / "arbframe-dealer"
SCENARIO = DEALER / "dealer.yaml"
D = Decimal

# What dealer.yaml says, read off the file by hand: markup, fee, tick, size, and the books.
MARKUP, FEE, TICK, SIZE = D(20), D("0.25"), D("0.01"), D(5)
LIT_FEE_BPS = D(10)
DESCRIPTION = "OTC dealer: fills in full at the feed's best price plus a markup, flat fee."


def dealer_price(level: str, side: str) -> Decimal:
    """A dealer's price, as the docs define it: the level moved by the markup against the
    customer, rounded to the tick against the customer."""
    if side == BUY:
        return (D(level) * (1 + MARKUP / 10_000)).quantize(TICK, ROUND_CEILING)
    return (D(level) * (1 - MARKUP / 10_000)).quantize(TICK, ROUND_FLOOR)


# (venue, side, price) of every fill, in order: buy from otc at its 0 s ask, sell on lit at
# its 1 s bid; then sell to otc at its 3 s bid, buy on lit at its 3 s ask.
FILLS = [
    ("otc", BUY, dealer_price("100.00", BUY)),
    ("lit", SELL, D("100.80")),
    ("otc", SELL, dealer_price("100.50", SELL)),
    ("lit", BUY, D("100.30")),
]


# ---- the fresh environment -----------------------------------------------------------------


def _copy(source: Path, names: list[str], target: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in names:
        path = source / name
        if path.is_dir():
            shutil.copytree(path, target / name, ignore=ignore)
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / name)
    return target


def _env() -> dict[str, str]:
    """This environment's variables (pip's index settings included), minus what would let the
    fresh one see this one's packages."""
    skip = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSAFEPATH"}
    return {k: v for k, v in os.environ.items() if k not in skip}


@pytest.fixture(scope="module")
def fresh_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("fresh")
    repo = _copy(
        REPO, ["pyproject.toml", "README.md", "arbframe", "plugins", "schemas"], root / "src"
    )
    dealer = _copy(DEALER, ["pyproject.toml", "README.md", "arbframe_dealer.py"], root / "dealer")
    venv, timings = root / "venv", {}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    timings["venv_s"] = time.perf_counter() - started
    python = venv / "bin" / "python"
    started = time.perf_counter()
    install = [str(python), "-m", "pip", "install", "--quiet", str(repo), str(dealer)]
    result = subprocess.run(install, env=_env(), capture_output=True, text=True, timeout=900)
    timings["install_s"] = time.perf_counter() - started
    assert result.returncode == 0, result.stdout + result.stderr
    work = root / "work"
    work.mkdir()
    return {"venv": venv, "work": work, "timings": timings}


def in_env(env: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(env["venv"] / "bin" / args[0]), *args[1:]]
    return subprocess.run(
        command, cwd=env["work"], env=_env(), capture_output=True, text=True, timeout=300
    )


def test_the_install_is_real(fresh_env: dict[str, Any]) -> None:
    code = "import arbframe, arbframe_dealer as d; print(arbframe.__file__); print(d.__file__)"
    result = in_env(fresh_env, "python", "-c", code)
    assert result.returncode == 0, result.stderr
    site = fresh_env["venv"] / "lib"
    for line in result.stdout.splitlines():
        assert Path(line).is_relative_to(site) and "site-packages" in line, line
    print(f"fresh environment: {fresh_env['timings']}")  # shown with -s


def test_arbframe_plugins_lists_the_dealer_with_its_distribution(fresh_env: dict[str, Any]) -> None:
    result = in_env(fresh_env, "arbframe", "plugins")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    lines = result.stdout.splitlines()
    [dealer] = [line for line in lines if line.split()[:2] == ["exchange", "dealer"]]
    assert dealer.split()[2:4] == ["arbframe-dealer", "0.1.0"]
    assert dealer.endswith(f"  {DESCRIPTION}")
    [paper] = [line for line in lines if line.split()[:2] == ["exchange", "paper"]]
    assert paper.split()[2:4] == ["arbframe", "0.1.0"]
    assert not any(line.startswith("broken:") for line in lines)

    result = in_env(fresh_env, "arbframe", "plugins", "--json")
    [row] = [r for r in json.loads(result.stdout) if r["type"] == "dealer"]
    assert row == {
        "kind": "exchange",
        "type": "dealer",
        "plugin": "dealer",
        "distribution": "arbframe-dealer 0.1.0",
        "module": "arbframe_dealer",
        "class": "arbframe_dealer.Dealer",
        "description": DESCRIPTION,
        "broken": None,
    }


def test_arbframe_run_trades_on_the_dealer_at_its_markup(fresh_env: dict[str, Any]) -> None:
    out = fresh_env["work"] / "run"
    result = in_env(fresh_env, "arbframe", "run", str(SCENARIO), "--json", "--out", str(out))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    summary = json.loads(result.stdout)
    assert summary["passed"] is True
    assert summary["reconciliation"]["fills"] == {
        "checked": 4,
        "price_violations": 0,
        "fee_violations": 0,
        "unverifiable": 0,
    }
    assert summary["venues"]["otc"] == {"orders_received": 2, "duplicate_orders": 0}

    # The markup is in the dealer's prices: 100.20 = 100.00 + 20 bp, 100.29 = 100.50 - 20 bp
    # rounded down; the fees are the flat 0.25 on otc, 10 bp of the notional on lit.
    assert [p for _, _, p in FILLS[::2]] == [D("100.20"), D("100.29")]
    fills = [json.loads(line) for line in (out / "fills.jsonl").read_text().splitlines()]
    assert [(f["venue"], f["side"], D(f["price"])) for f in fills] == FILLS
    assert all(D(f["amount"]) == SIZE for f in fills)
    lit_fees = [(p * SIZE * LIT_FEE_BPS / 10_000) for v, _, p in FILLS if v == "lit"]
    assert [D(f["fee"]) for f in fills] == [FEE, lit_fees[0], FEE, lit_fees[1]]
    assert all(f["fee_asset"] == "USDT" and D(f["slippage"]) == 0 for f in fills)

    # The dealer's own account, as the summary reports it, agrees to the cent.
    (_, _, otc_buy), (_, _, lit_sell), (_, _, otc_sell), (_, _, lit_buy) = FILLS
    usdt = summary["reconciliation"]["balances"]["venues"]["otc"]["USDT"]
    assert D(usdt["venue"]) == 1000 - SIZE * otc_buy - FEE + SIZE * otc_sell - FEE == D("999.95")
    assert D(usdt["fees"]) == 2 * FEE
    gross = SIZE * (otc_sell - otc_buy + lit_sell - lit_buy)
    assert D(summary["portfolio"]["pnl"]) == gross - 2 * FEE - sum(lit_fees) == D("1.4445")
    [trade] = [json.loads(line) for line in (out / "trades.jsonl").read_text().splitlines()]
    assert trade["route"] == "otc_to_lit" and trade["exit_reason"] == "reversion"


# ---- the dealer up close (its module imported by path) --------------------------------------


@pytest.fixture(scope="module")
def dealer_module() -> Iterator[ModuleType]:
    name = "arbframe_dealer_under_test"
    spec = importlib.util.spec_from_file_location(name, DEALER / "arbframe_dealer.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    yield module
    del sys.modules[name]


@pytest.fixture
def dealer(dealer_module: ModuleType) -> Any:
    """A dealer quoting BTC at 99.90 / 100.00 (10 deep), 20 bp markup, fee 0.25; its reports
    go to ``dealer.reports``."""
    reports: list[Any] = []
    ctx = ExchangeContext(
        info=RunInfo("t", 0, "backtest", "simulated", "USDT", "t"),
        resolve_path=Path,
        error=lambda path, message: ValueError(message),
        clock=SimClock(),
        report=reports.append,
    )
    config = {"quote": "USDT", "markup_bps": 20, "fee": "0.25", "amount_step": "0.001"}
    venue = dealer_module.Dealer(config, name="otc", ctx=ctx)
    venue.add_instrument("BTC", Book())
    venue.fund({"USDT": D("600"), "BTC": D("1")})
    venue.on_book(7, "BTC", ((99.90, 10.0),), ((100.00, 10.0),))
    venue.reports = reports
    return venue


def order(client_id: str, side: str, amount: str, **extra: Any) -> OrderRequest:
    return OrderRequest(client_id, "otc", "BTC", side, D(amount), **extra)


def test_the_book_shows_the_dealers_quote(dealer: Any) -> None:
    book = dealer.books["BTC"]
    assert (book.bids, book.asks, book.ts) == (((99.70, 10.0),), ((100.20, 10.0),), 7)
    assert dealer.instruments()["BTC"].fees.markup_bps == 20


def test_a_buy_fills_in_full_at_the_marked_up_ask(dealer: Any) -> None:
    dealer.submit(order("c1", BUY, "2"))
    accepted, fill, closed = dealer.reports
    assert accepted == Accepted("otc", "c1", "otc-1", 0)
    assert isinstance(fill, FillReport)
    assert (fill.price, fill.amount, fill.fee, fill.fee_asset) == (
        D("100.20"),
        2,
        D("0.25"),
        "USDT",
    )
    assert closed == Closed("otc", "c1", OrderState.FILLED, D(2), 0, "", "otc-1")
    assert dealer.balances() == {"USDT": 600 - D("200.40") - D("0.25"), "BTC": 3}
    assert dealer.books["BTC"].asks == ((100.20, 8.0),)  # what it took is gone until the next book


def test_a_sell_gets_the_marked_down_bid(dealer: Any) -> None:
    dealer.submit(order("c1", SELL, "1"))
    fill = dealer.reports[1]
    assert fill.price == D("99.70")  # 99.90 - 20 bp = 99.7002, rounded down
    assert dealer.balances() == {"USDT": 600 + D("99.70") - D("0.25"), "BTC": 0}


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (order("c1", BUY, "6"), "insufficient USDT: need 601.45, have 600"),
        (order("c1", SELL, "2"), "insufficient BTC: need 2, have 1"),
        (order("c1", BUY, "11"), "amount 11 above the quoted size 10"),
        (order("c1", BUY, "1", type=LIMIT, price=D(100)), "market orders only"),
        (order("c1", BUY, "0.0005"), "amount 0.0005 off the step 0.001"),
    ],
)
def test_what_it_cannot_fill_in_full_is_rejected(dealer: Any, request_: Any, reason: str) -> None:
    before = dealer.balances()
    dealer.submit(request_)
    assert dealer.reports == [Closed("otc", "c1", OrderState.REJECTED, D(0), 0, reason, "otc-1")]
    assert dealer.balances() == before


def test_it_answers_queries_about_every_order(dealer: Any) -> None:
    dealer.submit(order("c1", BUY, "1"))
    dealer.submit(order("c2", BUY, "100"))
    fill = dealer.reports[1]
    dealer.reports.clear()
    for client_id in ("c1", "c2", "c3"):
        dealer.fetch_order(order(client_id, BUY, "1"))
    filled, rejected, unknown = dealer.reports
    assert filled == OrderStatus("otc", "c1", "otc-1", OrderState.FILLED, D(1), (fill,), 0)
    assert (rejected.state, rejected.filled, rejected.fills) == (OrderState.REJECTED, 0, ())
    assert rejected.reason == "amount 100 above the quoted size 9"
    assert unknown == OrderNotFound("otc", "c3", 0)


def test_a_reused_client_id_is_refused_and_counted(dealer: Any) -> None:
    dealer.submit(order("c1", BUY, "1"))
    balances = dealer.balances()
    dealer.submit(order("c1", BUY, "1"))
    assert dealer.reports[-1] == Closed(
        "otc", "c1", OrderState.REJECTED, D(0), 0, "duplicate client order id"
    )
    assert dealer.balances() == balances
    assert dealer.stats() == {"orders_received": 2, "duplicate_orders": 1}
    dealer.fetch_order(order("c1", BUY, "1"))
    assert dealer.reports[-1].state is OrderState.FILLED  # the first order is untouched


def test_nothing_rests_so_a_cancel_is_refused(dealer: Any) -> None:
    dealer.submit(order("c1", BUY, "1"))
    dealer.cancel(order("c1", BUY, "1"))
    dealer.cancel(order("c9", BUY, "1"))
    assert dealer.reports[-2:] == [
        CancelRejected("otc", "c1", 0, "order is filled"),
        CancelRejected("otc", "c9", 0, "unknown order"),
    ]


def test_without_a_book_there_is_no_quote(dealer: Any) -> None:
    dealer.on_book(9, "BTC", (), ((100.00, 10.0),))
    dealer.submit(order("c1", SELL, "1"))
    assert dealer.reports[-1].reason == "no quote for sell BTC"
    assert dealer.books["BTC"].bids == ()


# ---- the reconciliation holds the dealer to what it publishes --------------------------------


def run_dealer(module: ModuleType) -> dict[str, Any]:
    return run_scenario_file(SCENARIO, plugins=(module,)).summary


def test_the_scenario_reconciles_in_process(dealer_module: ModuleType) -> None:
    summary = run_dealer(dealer_module)
    assert summary["passed"] is True and summary["reconciliation"]["passed"] is True


def publishing(module: ModuleType, monkeypatch: pytest.MonkeyPatch, **terms: Decimal) -> None:
    """Make the dealer publish other terms than it charges."""
    add = module.Dealer.add_instrument

    def published(self: Any, symbol: str, book: Book) -> Any:
        instrument = add(self, symbol, book)
        return replace(instrument, fees=replace(instrument.fees, **terms))

    monkeypatch.setattr(module.Dealer, "add_instrument", published)


def test_a_markup_it_does_not_publish_fails_the_run(
    dealer_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    publishing(dealer_module, monkeypatch, markup_bps=D(0))  # an exchange's terms
    rec = run_dealer(dealer_module)["reconciliation"]
    assert rec["passed"] is False
    assert rec["fills"]["price_violations"] == 2 and rec["fills"]["fee_violations"] == 0
    assert "price 100.20 is not a level of the book of" in rec["violations"][0]


def test_a_markup_rounded_the_wrong_way_fails_the_run(
    dealer_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    publishing(dealer_module, monkeypatch, markup_bps=D("20.1"))  # 100.201 rounds up: 100.21
    rec = run_dealer(dealer_module)["reconciliation"]
    assert rec["passed"] is False and rec["fills"]["price_violations"] == 1
    assert "price 100.20 is not a level of the book of" in rec["violations"][0]


def test_a_fee_it_does_not_publish_fails_the_run(
    dealer_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    publishing(dealer_module, monkeypatch, flat_fee=D("0.2"))
    rec = run_dealer(dealer_module)["reconciliation"]
    assert rec["passed"] is False
    assert rec["fills"]["fee_violations"] == 2 and rec["fills"]["price_violations"] == 0
    assert "fee 0.25 USDT at 1, the schedule says 0.2 USDT at 1" in rec["violations"][0]
