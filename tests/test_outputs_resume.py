"""`--out` across a crash and a resume, and across an engine revival: each fill, trade and
order is in its file exactly once, in its final form, and nothing the state holds is lost."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from arbframe_plugins.state.memory import MemoryStore
from test_resume import SLOW, Crash, crash_at_quote, killed

from arbframe.errors import ArbframeError
from arbframe.hookspecs import hookimpl
from arbframe.plugins import build_registry, get_plugin_manager
from arbframe.runner import Run
from arbframe.scenario import load_scenario
from arbframe.sessions import ResumeError


@pytest.fixture(autouse=True)
def _empty_memory_store():
    MemoryStore.records.clear()
    yield
    MemoryStore.records.clear()


def execute(
    tmp_path: Path, scenario: dict[str, Any], out: Path, plugins: tuple[Any, ...] = (), **options
) -> Run:
    path = tmp_path / "scenario.yaml"
    path.write_text(json.dumps(scenario))
    pm = get_plugin_manager(extra_plugins=plugins)
    registry = build_registry(pm)
    run = Run(load_scenario(path, registry), registry, pm, **options)
    run.execute(out_dir=out)
    return run


def rows(out: Path, kind: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / f"{kind}.jsonl").read_text().splitlines()]


def records(out: Path, kind: str) -> list[str]:
    """A file's records, sorted (a resumed run appends what it catches up with)."""
    return sorted((out / f"{kind}.jsonl").read_text().splitlines())


def newest_snapshot_ts(session: str) -> int:
    held = MemoryStore.records[session].values()
    return max((r for r in held if r.reason != "orders"), key=lambda r: r.seq).ts


def test_a_resumed_run_appends_each_record_once_in_its_final_form(tmp_path, monkeypatch):
    once = tmp_path / "once"
    execute(tmp_path, SLOW, once)
    MemoryStore.records.clear()

    out = tmp_path / "out"
    crash_at_quote(monkeypatch, 1720)  # orders in flight: the crash writes them unsettled
    with pytest.raises(Crash):
        execute(tmp_path, SLOW, out)
    monkeypatch.undo()
    snapshot_ts = newest_snapshot_ts(SLOW["name"])
    fills = (out / "fills.jsonl").read_text().splitlines(keepends=True)
    # What makes the resume's job real: fills after the snapshot, booked again on resume;
    # orders written while still working, superseded by their final form.
    assert any(json.loads(f)["ts"] > snapshot_ts for f in fills)
    assert set(records(out, "orders")) - set(records(once, "orders"))
    # The crashed process had not flushed a fill from before the snapshot, and a kill cut
    # its last line short.
    lost = max(i for i, f in enumerate(fills) if json.loads(f)["ts"] <= snapshot_ts)
    kept = fills[:lost] + fills[lost + 1 :]
    (out / "fills.jsonl").write_text("".join(kept)[:-20])

    run = execute(tmp_path, SLOW, out, resume=True)
    for kind in ("fills", "trades", "orders", "events"):
        assert records(out, kind) == records(once, kind), kind
    assert json.loads((out / "summary.json").read_text())["complete"] is True
    assert len(rows(out, "fills")) == len(run.ledger.fills)


def test_a_resume_into_a_new_directory_writes_the_whole_session(tmp_path, monkeypatch):
    once = tmp_path / "once"
    execute(tmp_path, SLOW, once)
    MemoryStore.records.clear()
    crash_at_quote(monkeypatch, 2399)
    with pytest.raises(Crash):
        execute(tmp_path, SLOW, tmp_path / "first")
    monkeypatch.undo()
    fresh = tmp_path / "fresh"
    execute(tmp_path, SLOW, fresh, resume=True)
    for kind in ("fills", "trades", "orders"):  # events are not state: from the resume on
        assert records(fresh, kind) == records(once, kind), kind


def test_a_file_that_is_not_jsonl_is_refused_before_the_resume_runs(tmp_path, monkeypatch):
    crash_at_quote(monkeypatch, 777)
    out = tmp_path / "out"
    with pytest.raises(Crash):
        execute(tmp_path, SLOW, out)
    monkeypatch.undo()
    (out / "trades.jsonl").write_text("not json\n")
    with pytest.raises(ArbframeError, match=r"trades.jsonl:1: not a record this run can append"):
        execute(tmp_path, SLOW, out, resume=True)


def test_a_resume_refuses_a_directory_holding_another_session(tmp_path, monkeypatch):
    crash_at_quote(monkeypatch, 777)
    out = tmp_path / "out"
    with pytest.raises(Crash):
        execute(tmp_path, SLOW, out)
    monkeypatch.undo()
    summary = json.loads((out / "summary.json").read_text())
    (out / "summary.json").write_text(json.dumps({**summary, "session": "other"}))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(ArbframeError, match="holds the record of session other, not resume_c1"):
        execute(tmp_path, SLOW, out, resume=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


class FillCounter:
    name = "fill_counter"

    def __init__(self) -> None:
        self.delivered = 0

    @hookimpl
    def arbframe_on_fill(self, run: Any, fill: Any) -> None:
        self.delivered += 1


def test_an_engine_revival_writes_no_record_twice(tmp_path):
    # Snapshots a minute apart: the revived engine books again what the dead one had booked
    # since, and closes again the trades it had closed.
    scenario = copy.deepcopy(killed("100s", "at_once"))
    scenario["snapshots"] = {"every": "60s", "on_trade": False}
    counter = FillCounter()
    out = tmp_path / "out"
    run = execute(tmp_path, scenario, out, plugins=(counter,))
    assert run.revivals and counter.delivered > len(run.ledger.fills)  # fills booked twice

    def keys(kind: str, key: Any) -> list[Any]:
        found = [key(row) for row in rows(out, kind)]
        assert len(found) == len(set(found)), f"{kind}: a record written twice"
        return sorted(found)

    assert keys("fills", lambda r: (r["venue"], r["fill_id"])) == sorted(
        (f.venue, f.fill_id) for f in run.ledger.fills
    )
    assert keys("trades", lambda r: r["trade_id"]) == sorted(
        t.trade_id for t in run.execution.closed if t.fills
    )
    assert keys("orders", lambda r: r["client_id"]) == sorted(run.execution.orders)


def test_a_refused_resume_leaves_the_output_directory_alone(tmp_path):
    out = tmp_path / "out"
    execute(tmp_path, SLOW, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    MemoryStore.records.clear()  # the session's snapshots are gone
    with pytest.raises(ResumeError, match="no snapshot"):
        execute(tmp_path, SLOW, out, resume=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
