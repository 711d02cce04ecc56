"""The alert engine: the throttle of a channel (dedupe, grouping, rate limit and its one
suppression report), the rules' naming of kernel alerts, and the `alerting:` config."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from arbframe.alerting import RULES, Lane, Message, MessageChannel, Settings
from arbframe.model import Alert
from arbframe.schema import composed_schema

S = 1_000_000_000
REPO = Path(__file__).resolve().parents[1]


class Recorder(MessageChannel):
    """A channel that keeps what it is handed (no thread, no network)."""

    type_name = "recorder"

    def __init__(self, min_severity: str = "P3") -> None:
        super().__init__({"min_severity": min_severity}, name="rec", ctx=None)
        self.messages: list[Message] = []

    def send(self, message: Message) -> None:
        self.messages.append(message)


def lane(**config: Any) -> tuple[Lane, Recorder]:
    channel = Recorder(config.pop("min_severity", "P3"))
    return Lane(channel, Settings.from_config(config), "sess"), channel


def alert(t: float, title: str = "x", severity: str = "P1", rule: str = "latency") -> Alert:
    return Alert(int(t * S), severity, title, "detail", rule)


def offer(target: Lane, a: Alert) -> None:
    target.offer(a, f"{a.rule}:{a.title}")


def test_a_storm_of_100_sends_at_most_10_in_the_minute_then_one_summary() -> None:
    target, channel = lane(rate_limit="10/min", group="0s", dedupe="0s")
    for i in range(100):  # 100 distinct alerts within 50 s
        offer(target, alert(i * 0.5, f"a{i}"))
    target.tick(120 * S, final=True)
    alerts = [m for m in channel.messages if m.kind == "alert"]
    [summary] = [m for m in channel.messages if m.kind == "suppressed"]
    assert len(alerts) == 10 and all(m.ts < 60 * S for m in alerts)
    assert summary.suppressed == {"P1": 90} and "90 alerts suppressed" in summary.title
    assert summary.ts == alerts[0].ts + 60 * S  # as soon as the limit has room again
    assert target.counts["suppressed"] == 90 and target.counts["summaries"] == 1


def test_the_limit_holds_in_every_window_of_a_long_storm() -> None:
    target, channel = lane(rate_limit="5/min", group="0s", dedupe="0s")
    for i in range(300):  # one alert every 2 s for 10 minutes: 30 a minute
        offer(target, alert(i * 2, f"a{i}"))
    target.tick(700 * S, final=True)
    times = [m.ts for m in channel.messages]
    for t in times:  # no 60 s window holds more than 5 messages, the reports included
        assert sum(t <= u < t + 60 * S for u in times) <= 5
    held = sum(sum(m.suppressed.values()) for m in channel.messages if m.kind == "suppressed")
    sent = sum(len(m.alerts) for m in channel.messages if m.kind == "alert")
    assert held + sent == 300 and held == target.counts["suppressed"] > 0


def test_the_same_key_within_the_dedupe_window_is_sent_once() -> None:
    target, channel = lane(dedupe="5m", group="0s")
    for t in (0, 10, 100, 299):
        offer(target, alert(t, "upbit answers slowly"))
    offer(target, alert(50, "binance answers slowly"))  # another subject: its own key
    offer(target, alert(301, "upbit answers slowly"))  # the window has passed
    target.tick(400 * S, final=True)
    assert [m.title for m in channel.messages] == [
        "upbit answers slowly", "binance answers slowly", "upbit answers slowly"
    ]  # fmt: skip
    assert target.counts["deduped"] == 3


def test_alerts_within_the_group_window_go_out_as_one_message() -> None:
    target, channel = lane(group="2s", dedupe="0s")
    offer(target, alert(0.0, "a", "P2"))
    offer(target, alert(0.5, "b", "P0"))
    offer(target, alert(1.9, "c", "P3"))
    offer(target, alert(10, "d", "P1"))  # after the window: a message of its own
    target.tick(20 * S, final=True)
    first, second = channel.messages
    assert first.kind == "group" and [a.title for a in first.alerts] == ["a", "b", "c"]
    assert first.severity == "P0" and first.ts == 2 * S  # the worst; sent when the window ends
    assert second.kind == "alert" and second.title == "d"
    assert target.counts["grouped"] == 2


# ---- the documented defaults (`alerting: {}`): 10/min, dedupe 5m, group 2s ----------------------


def test_the_default_rate_limit_is_10_messages_a_minute_then_one_summary() -> None:
    target, channel = lane()  # alerting: {}
    for i in range(20):  # distinct alerts 3 s apart (past the 2 s group): 20 in the minute
        offer(target, alert(i * 3, f"a{i}"))
    target.tick(120 * S, final=True)
    alerts = [m for m in channel.messages if m.kind == "alert"]
    [summary] = [m for m in channel.messages if m.kind == "suppressed"]
    assert len(alerts) == 10 and all(m.ts < 60 * S for m in alerts)
    assert [m.title for m in alerts] == [f"a{i}" for i in range(10)]
    assert summary.suppressed == {"P1": 10} and "(10 messages per 60s)" in summary.title
    assert summary.ts == alerts[0].ts + 60 * S
    assert len(channel.messages) == 11


def test_the_default_dedupe_window_is_5_minutes() -> None:
    target, channel = lane()  # alerting: {}
    offer(target, alert(0, "upbit answers slowly"))
    offer(target, alert(270, "upbit answers slowly"))  # 4m30s after the first: dropped
    offer(target, alert(299, "upbit answers slowly"))  # still within 5m of it: dropped
    offer(target, alert(300, "upbit answers slowly"))  # 5m after the first: sent
    target.tick(400 * S, final=True)
    assert [m.ts for m in channel.messages] == [2 * S, 302 * S]  # each after its 2 s group
    assert target.counts["deduped"] == 2 and target.counts["sent"] == 2


def test_the_default_group_window_is_2_seconds() -> None:
    target, channel = lane()  # alerting: {}
    offer(target, alert(0.0, "a"))
    offer(target, alert(1.5, "b"))  # 1.5 s after the first: the same message
    offer(target, alert(2.5, "c"))  # past 2 s: a message of its own
    target.tick(20 * S, final=True)
    first, second = channel.messages
    assert first.kind == "group" and [a.title for a in first.alerts] == ["a", "b"]
    assert first.ts == 2 * S
    assert second.kind == "alert" and second.title == "c"
    assert target.counts["grouped"] == 1


def test_a_channel_gets_only_its_severities() -> None:
    target, channel = lane(min_severity="P1", group="0s")
    for i, severity in enumerate(("P0", "P1", "P2", "P3")):
        offer(target, alert(i, f"t{i}", severity))
    assert [m.severity for m in channel.messages] == ["P0", "P1"]


def test_kernel_alerts_are_named_by_rule_and_rules_can_change_or_drop_them(run_scenario):
    from conftest import book, two_venue_scenario

    events = [book("0s", "a", 99.90, 100.00), book("1s", "b", 100.60, 100.70),
              book("3s", "b", 99.80, 99.85)]  # fmt: skip
    scenario = two_venue_scenario(events)
    scenario["faults"] = [{"type": "order_reject", "venue": "b", "role": "entering", "count": 1}]
    scenario["alerting"] = {}
    summary = run_scenario(scenario).summary
    assert summary["alerting"]["by_rule"] == {"leg_mismatch": {"P2": 1}}
    assert summary["alerts"] == {"P2": 1}
    scenario["alerting"] = {"rules": {"leg_mismatch": "P0"}}
    assert run_scenario(scenario).summary["alerting"]["by_rule"] == {"leg_mismatch": {"P0": 1}}
    scenario["alerting"] = {"rules": {"leg_mismatch": "off"}}
    summary = run_scenario(scenario).summary
    assert summary["alerting"]["fired"] == 0 and summary["alerts"] == {}


def test_without_alerting_nothing_changes(run_scenario):
    from conftest import book, two_venue_scenario

    scenario = two_venue_scenario([book("0s", "a", 99.9, 100.0), book("1s", "b", 100.6, 100.7)])
    assert "alerting" not in run_scenario(scenario).summary


def test_the_schema_knows_every_rule() -> None:
    schema = json.loads((REPO / "schemas" / "scenario.schema.json").read_text())
    assert set(schema["properties"]["alerting"]["properties"]["rules"]["properties"]) == set(RULES)
    assert composed_schema  # the composed schema carries it too (arbframe schema)


@pytest.mark.parametrize(
    ("block", "where"),
    [
        ("{rate_limit: 0/min}", "alerting.rate_limit"),
        ("{rate_limit: lots}", "alerting.rate_limit"),
        ("{rules: {no_such_rule: P1}}", "alerting.rules"),
        ("{rules: {latency: P7}}", "alerting.rules.latency"),
        ("{dedupe: soon}", "alerting.dedupe"),
    ],
)
def test_bad_alerting_config_is_refused_naming_the_key(tmp_path: Path, block: str, where: str):
    path = tmp_path / "s.yaml"
    base = REPO / "scenarios" / "_campaign_base.yaml"
    path.write_text(f"extends: {base}\nname: t\nalerting: {block}\n")
    result = subprocess.run([sys.executable, "-m", "arbframe", "validate", str(path)],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2
    assert where in result.stderr and "Traceback" not in result.stderr
