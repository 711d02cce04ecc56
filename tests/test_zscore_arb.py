"""zscore_arb on scripted books: the z-score by hand, entries, exits and config errors.

Venue a stays at 99.95 / 100.05 (mid 100), so the spread of b over a is (mid_b - 100) * 100
bps. With `window: 4` the window before the spike at 4s holds the spreads 0, 40, -40, 0:
mean 0, population std sqrt(3200 / 4) = 28.28 (the sample std would be 32.66).
"""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest
from conftest import book, two_venue_scenario

from arbframe.errors import ScenarioError

T0 = 1_704_067_200_000_000_000  # the scripted feed's epoch
S = 1_000_000_000


def b_at(at: str, bps: float) -> dict:
    """Venue b's book with its mid `bps` above a's mid of 100 (0.10 wide)."""
    mid = 100 + bps / 100
    return book(at, "b", round(mid - 0.05, 2), round(mid + 0.05, 2))


BASELINE = [book("0s", "a", 99.95, 100.05), b_at("0s", 0), b_at("1s", 40), b_at("2s", -40)]
BASELINE += [b_at("3s", 0)]


def zscore(events: list[dict], **config) -> dict:
    scenario = two_venue_scenario(events)
    scenario["strategy"] = {
        "type": "zscore_arb",
        "venues": ["a", "b"],
        "symbol": "BTC",
        "window": 4,
        "entry_z": 3.3,  # the spike's z is 3.54 with the population std, 3.06 with the sample
        "exit_z": 0.5,
        "stop_z": 5,
        "quote": 50.025,  # 0.5 BTC at a's ask of 100.05
        **config,
    }
    return scenario


def test_spike_enters_rich_side_and_exits_on_reversion(run_scenario):
    # 4s: s = 100, z = (100 - 0) / 28.28 = 3.54 >= 3.3: b is rich, buy a and sell b.
    # 5s: window 40, -40, 0, 100 (mean 25, std 51.72); s = 0: z = -0.48 <= 0.5: reverted.
    result = run_scenario(zscore([*BASELINE, b_at("4s", 100), b_at("5s", 0)]))
    [trade] = result.trades
    assert (trade.buy_venue, trade.sell_venue) == ("a", "b")
    assert trade.opened_at == T0 + 4 * S
    assert trade.closed_at == T0 + 5 * S + 10_000_000  # decided at 5s, filled 10 ms later
    assert trade.exit_reason == "reverted"
    fills = [(f.venue, f.side, f.price, f.amount, f.role) for f in result.fills]
    assert fills == [
        ("a", "buy", D("100.05"), D("0.500"), "entering"),
        ("b", "sell", D("100.95"), D("0.500"), "entering"),
        ("a", "sell", D("99.95"), D("0.500"), "exiting"),
        ("b", "buy", D("100.05"), D("0.500"), "exiting"),
    ]
    # a: 0.5 * (99.95 - 100.05) = -0.05; b: 0.5 * (100.95 - 100.05) = +0.45
    assert trade.gross_pnl == D("0.40")
    # a: (50.025 + 49.975) * 10 bp = 0.1; b: (50.475 + 50.025) * 20 bp = 0.201
    assert trade.fees == D("0.301")
    assert trade.net_pnl == D("0.099")
    assert result.summary["portfolio"]["open_trades"] == 0


def test_cheap_side_mirrors_the_trade(run_scenario):
    # 4s: s = -100, z = -3.54: b is cheap, buy b and sell a; 5s: z = +0.48, reverted.
    result = run_scenario(zscore([*BASELINE, b_at("4s", -100), b_at("5s", 0)]))
    [trade] = result.trades
    assert (trade.buy_venue, trade.sell_venue) == ("b", "a")
    assert (trade.opened_at, trade.exit_reason) == (T0 + 4 * S, "reverted")
    # buy b at 99.05, sell it at 99.95; a sold at 99.95 and bought back at 100.05
    assert trade.gross_pnl > 0 and trade.net_pnl > 0


@pytest.mark.parametrize(
    ("bps", "reason", "won"),
    [
        (0, "reverted", True),  # z = (0 - 25) / 51.72 = -0.48
        (-100, "reverted", True),  # z = -2.42: an overshoot counts as reverted
        (60, "end_of_run", False),  # z = 0.68 > exit_z: still open when the data ends
        (290, "stop", False),  # z = 5.12 >= stop_z, urgent
    ],
)
def test_exit_at_five_seconds(run_scenario, bps, reason, won):
    result = run_scenario(zscore([*BASELINE, b_at("4s", 100), b_at("5s", bps)]))
    [trade] = result.trades
    assert trade.exit_reason == reason
    assert trade.won is won
    if reason == "stop":
        assert trade.closed_at == T0 + 5 * S + 10_000_000
        assert trade.net_pnl < -1  # b bought back at 102.95 after selling at 100.95


@pytest.mark.parametrize(("bps", "reason"), [(290, "stop"), (0, "end_of_run")])
def test_only_the_stop_acts_on_a_stale_book(run_scenario, bps, reason):
    # With max_book_age 500ms, a's book (last published at 4s) is stale at 5s: the urgent
    # stop goes through, the reversion exit is refused by the kernel and the trade stays.
    events = [*BASELINE, book("4s", "a", 99.95, 100.05), b_at("4s", 100), b_at("5s", bps)]
    scenario = zscore(events)
    scenario["execution"] = {"max_book_age": "500ms"}
    result = run_scenario(scenario)
    [trade] = result.trades
    assert trade.opened_at == T0 + 4 * S
    assert trade.exit_reason == reason
    assert result.run.execution.refusals["stale_book_exit"] == (reason == "end_of_run")


def test_no_reentry_until_z_crosses_entry_again(run_scenario):
    # Stopped at 5s (z 5.12); at 6s s = 600 gives z = (600 - 87.5) / 127.55 = 4.02, inside
    # [entry_z, stop_z), but |z| has not been under entry_z since the stop: no entry.
    events = [*BASELINE, b_at("4s", 100), b_at("5s", 290), b_at("6s", 600)]
    result = run_scenario(zscore(events))
    assert [t.exit_reason for t in result.trades] == ["stop"]
    # After a reversion at 5s (z -0.48), a z of 4.16 at 6s (s = 230, window -40, 0, 100, 0:
    # mean 15, std 51.72) crosses entry_z: a second trade, the same way.
    events = [*BASELINE, b_at("4s", 100), b_at("5s", 0), b_at("6s", 230)]
    result = run_scenario(zscore(events))
    assert [t.exit_reason for t in result.trades] == ["reverted", "end_of_run"]
    assert result.trades[1].opened_at == T0 + 6 * S
    assert (result.trades[1].buy_venue, result.trades[1].sell_venue) == ("a", "b")


@pytest.mark.parametrize(("window", "entries"), [(3, 1), (4, 0)])
def test_no_entry_before_the_window_is_full(run_scenario, window, entries):
    # The spike comes at 3s, after three spreads: window 3 is full (mean 0, std 32.66,
    # z = 3.06 >= 2); window 4 is not, and at 4s (z = 1.45, the spike now in the window) it
    # is too late.
    events = [*BASELINE[:-1], b_at("3s", 100), b_at("4s", 100)]
    result = run_scenario(zscore(events, window=window, entry_z=2))
    assert result.summary["portfolio"]["entries"] == entries
    if entries:
        assert result.trades[0].opened_at == T0 + 3 * S


def _text(strategy: str) -> str:
    """The scripted scenario as YAML, the strategy block on line 2 as written."""
    scenario = zscore(BASELINE)
    del scenario["strategy"]
    lines = [f"{key}: {json.dumps(value)}" for key, value in scenario.items()]
    return "\n".join([lines[0], f"strategy: {strategy}", *lines[1:]]) + "\n"


BLOCK = "{type: zscore_arb, symbol: BTC, window: 4, entry_z: 2, quote: 50, "


@pytest.mark.parametrize(
    ("rest", "at", "key", "message"),
    [
        ("venues: [a, kraken]}", "kraken", "strategy.venues[1]", "no feed quotes BTC on 'kraken'"),
        ("venues: [a]}", "[a]", "strategy.venues", "['a'] is too short"),
        ("venues: [a, b, c]}", "[a, b", "strategy.venues", "['a', 'b', 'c'] is too long"),
        ("venues: [b, b]}", "[b, b", "strategy.venues", "['b', 'b'] has non-unique elements"),
        (
            "venues: [a, b], exit_z: 2}",
            "2, quote",  # a scalar is named by its value
            "strategy.entry_z",
            "needs exit_z < entry_z < stop_z",
        ),
    ],
)
def test_config_errors_name_the_place(run_scenario, tmp_path, rest, at, key, message):
    text = _text(BLOCK + rest)
    with pytest.raises(ScenarioError) as err:
        run_scenario(text)
    line = text.splitlines()[1]
    where = f"{tmp_path / 'scenario.yaml'}:2:{line.index(at) + 1}: {key}: "
    assert str(err.value).startswith(where + message)


def test_the_tutorial_strategy_stays_short():
    """The plugin tutorial is built on this module: under 80 lines, all of it."""
    from pathlib import Path

    source = Path(__file__).parents[1] / "plugins" / "strategies" / "zscore_arb.py"
    assert len(source.read_text(encoding="utf-8").splitlines()) < 80
