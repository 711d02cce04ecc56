"""monitoring/: the alert rules (promtool check and unit tests), the example Prometheus
config, and the Grafana dashboards, whose every query (and every rule's expression) is
evaluated by a real Prometheus scraping a running wall-clock session.

They need Debian's ``prometheus`` package (``prometheus`` and ``promtool``); without it they
skip on a workstation and fail under CI (``CI`` or ``ARBFRAME_REQUIRE_SERVICES=1``)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from ruamel.yaml import YAML

from arbframe import metrics

pytestmark = pytest.mark.monitoring

REPO = Path(__file__).resolve().parents[1]
PROMETHEUS_DIR = REPO / "monitoring" / "prometheus"
GRAFANA_DIR = REPO / "monitoring" / "grafana"
RULES = PROMETHEUS_DIR / "alerts.yml"
RULE_TESTS = PROMETHEUS_DIR / "alerts_test.yml"
DASHBOARDS = sorted(GRAFANA_DIR.glob("*.json"))
BASE = REPO / "scenarios" / "_campaign_base.yaml"
# Trades every few seconds, losses included (the symbol guard's cooldowns trigger), state kept.
SESSION = f"""\
extends: {BASE}
name: monitored
duration: 10m
clock: wall
venues:
  upbit: {{latency: 100ms}}
  binance: {{latency: 50ms}}
feeds:
  - type: synthetic
    symbols: {{BTC: 60000}}
    venues: [upbit, binance]
    pattern: mixed
    tick: {{upbit: 1000, binance: 0.01}}
    episode_every: 1s
    persist_for: 3s
strategy: {{max_hold: 2s}}
guards:
  - {{type: symbol, max_notional: 2000, max_consecutive_losses: 1, cooldown: 1s}}
  - {{type: global, daily_loss_limit: 300, max_drawdown: 500}}
state: [{{type: sqlite, path: state.db}}]
snapshots: {{every: 2s}}
metrics: {{port: 0}}
"""
# What a Grafana variable stands for when a query is sent to Prometheus directly.
SUBSTITUTE = {"$__rate_interval": "30s", "$__interval": "5s", "$instance": ".*"}


def tool(name: str) -> str:
    """The path of a Prometheus binary; skip without it, unless CI requires it."""
    found = shutil.which(name)
    if found is None:
        message = f"{name} not found (Debian: apt-get install prometheus)"
        if os.environ.get("CI") or os.environ.get("ARBFRAME_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{message}; CI must run the monitoring tests")
        pytest.skip(message)
    return found


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("promtool"), *map(str, args)], capture_output=True, text=True, timeout=120
    )


def rules() -> list[dict[str, Any]]:
    doc = YAML(typ="safe").load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, expression) of every panel target."""
    found = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            found += [(path.name, panel["title"], t["expr"]) for t in panel["targets"]]
    return found


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\b((?:arbframe|process)_[a-z0-9_]+)", expr))


# ---- static checks -----------------------------------------------------------------------------


def test_the_rules_are_valid_and_each_has_a_severity_and_annotations() -> None:
    checked = promtool("check", "rules", RULES)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    found = rules()
    assert len(found) >= 20
    assert len({r["alert"] for r in found}) == len(found)  # names are unique
    for rule in found:
        assert rule["labels"]["severity"] in ("P0", "P1", "P2", "P3"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_every_rule_fires_in_its_unit_tests() -> None:
    result = promtool("test", "rules", RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    tests = YAML(typ="safe").load(RULE_TESTS.read_text())["tests"]
    firing = {
        case["alertname"]
        for test in tests
        for case in test["alert_rule_test"]
        if case.get("exp_alerts")
    }
    assert firing == {r["alert"] for r in rules()}


def test_the_example_prometheus_config_is_valid() -> None:
    result = promtool("check", "config", PROMETHEUS_DIR / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_and_dashboards_use_only_metrics_the_exporter_exposes(run_scenario) -> None:
    # A simulated run of the session below: every family is there (values aside).
    result = run_scenario(
        SESSION.replace("clock: wall\n", "").replace("duration: 10m", "duration: 1m")
    )
    registry, _ = metrics.registry(result.run)
    exposed = set()
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        exposed |= {sample.name for sample in family.samples}
    used = {name for r in rules() for name in metric_names(r["expr"])}
    used |= {name for _, _, expr in dashboard_queries() for name in metric_names(expr)}
    assert used and used <= exposed, sorted(used - exposed)
    assert len(DASHBOARDS) == 3


def test_each_dashboard_has_a_prometheus_datasource_variable() -> None:
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] == "${datasource}", (path.name, panel["title"])
            assert panel["targets"], (path.name, panel["title"])


# ---- a real Prometheus scraping a session ------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(ready: Any, procs: list[subprocess.Popen[Any]], what: str, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = ready()
        if got:
            return got
        for proc in procs:
            assert proc.poll() is None, (what, proc.args, proc.returncode)
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.2)


def query(base: str, expr: str) -> dict[str, Any]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as err:  # 400: the query does not parse
        return json.loads(err.read())


def substituted(expr: str) -> str:
    for variable, value in SUBSTITUTE.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, expr
    return expr


def test_a_real_prometheus_answers_every_dashboard_query_and_rule(tmp_path: Path) -> None:
    binary = tool("prometheus")
    (tmp_path / "s.yaml").write_text(SESSION)
    log = (tmp_path / "session.txt").open("w")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARBFRAME_")}
    session = subprocess.Popen(
        [sys.executable, "-P", "-m", "arbframe", "run", "s.yaml", "--reset"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=log,
    )  # fmt: skip
    procs: list[subprocess.Popen[Any]] = [session]
    try:

        def target() -> str | None:
            text = (tmp_path / "session.txt").read_text()
            found = re.search(r"^metrics: serving http://([\d.:]+)/metrics$", text, re.M)
            return found and found.group(1)

        scraped = wait_for(target, procs, "the session's metrics URL")
        port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"rule_files: [{RULES}]\n"
            "scrape_configs:\n"
            f"  - {{job_name: arbframe, static_configs: [{{targets: ['{scraped}']}}]}}\n"
        )
        prometheus = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.txt").open("w"),
        )  # fmt: skip
        procs.append(prometheus)
        base = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            try:
                with urllib.request.urlopen(f"{base}/-/ready", timeout=2) as answer:
                    return answer.status == 200
            except OSError:
                return False

        wait_for(ready, procs, "Prometheus ready")

        def scraped_enough() -> bool:
            # A few scrapes, and trades among them: every trading series exists.
            up = query(base, 'count_over_time(arbframe_up{job="arbframe"}[1m])')["data"]
            trades = query(base, "arbframe_trades_total > 0")["data"]["result"]
            return bool(up["result"]) and float(up["result"][0]["value"][1]) >= 5 and bool(trades)

        wait_for(scraped_enough, procs, "five scrapes and a trade")
        assert query(base, 'up{job="arbframe"}')["data"]["result"][0]["value"][1] == "1"

        empty, failed = [], []
        for board, title, expr in dashboard_queries():
            answer = query(base, substituted(expr))
            if answer["status"] != "success":
                failed.append((board, title, answer.get("error")))
            elif not answer["data"]["result"]:
                empty.append((board, title, expr))
        for rule in rules():
            answer = query(base, rule["expr"])
            if answer["status"] != "success":
                failed.append(("alerts.yml", rule["alert"], answer.get("error")))
        assert not failed, failed
        assert not empty, empty
        # The rules are loaded and evaluated by this Prometheus too.
        with urllib.request.urlopen(f"{base}/api/v1/rules", timeout=10) as answer:
            groups = json.loads(answer.read())["data"]["groups"]
        evaluated = [r for g in groups for r in g["rules"]]
        assert len(evaluated) == len(rules())
        assert all(r["health"] == "ok" for r in evaluated), [
            (r["name"], r.get("lastError")) for r in evaluated if r["health"] != "ok"
        ]
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        log.close()
