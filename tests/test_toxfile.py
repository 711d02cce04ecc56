"""The tox matrix follows the files in scenarios/ (toxfile.py), with no edit to tox.ini.

Runs the real tox.ini + toxfile.py in a throwaway project: needs tox (test extra), but neither the
network nor arbframe itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name in ("tox.ini", "toxfile.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "_base.yaml").write_text("name: base\n")  # an extends: base, not a scenario
    for stem in ("b", "a"):
        (scenarios / f"{stem}.yaml").write_text(f"extends: _base.yaml\nname: {stem}\n")
    return tmp_path


def tox(project: Path, *args: str) -> list[str]:
    """Run tox in `project`, return its stdout lines."""
    # Drop the TOX_* variables of the tox running this test (TOX_WORK_DIR, ...): the inner tox
    # would read them as its own options. --no-provision: fail rather than download a tox.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOX_") and k != "FORCE_COLOR"}
    env.update(NO_COLOR="1", PY_COLORS="0")
    result = subprocess.run(
        [sys.executable, "-m", "tox", "--no-provision", *args],
        cwd=project,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"tox {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


def test_one_env_per_scenario_file(project: Path) -> None:
    assert tox(project, "-m", "scenarios", "-l") == ["scenario-a", "scenario-b"]
    # the default run (`tox`): unit tests, then every scenario
    assert tox(project, "-l") == ["py", "lint", "services", "scenario-a", "scenario-b"]

    # a new file joins the matrix, with no edit to tox.ini
    (project / "scenarios" / "c1_mixed.yaml").write_text("name: c1\n")
    assert tox(project, "-m", "scenarios", "-l") == [
        "scenario-a",
        "scenario-b",
        "scenario-c1_mixed",
    ]
    assert tox(project, "-l") == [
        "py",
        "lint",
        "services",
        "scenario-a",
        "scenario-b",
        "scenario-c1_mixed",
    ]


def test_scenario_env_runs_arbframe_on_its_file(project: Path) -> None:
    lines = tox(project, "config", "-e", "scenario-a", "-k", "commands", "labels", "env_tmp_dir")
    conf = dict(line.split(" = ", 1) for line in lines if " = " in line)
    assert conf["labels"] == "scenarios"
    tmp_dir = conf["env_tmp_dir"]
    scenario = project.resolve() / "scenarios" / "a.yaml"
    assert conf["commands"] == f"arbframe run {scenario} --out {tmp_dir}/run"


def test_no_env_beyond_the_declared_ones(project: Path) -> None:
    # `tox -a` lists every env tox knows of, including one that a factor condition defines by
    # accident: a value line starting with `word:` (e.g. `description = ruff: lint`) makes
    # tox read `ruff` as a factor, i.e. an env that runs nothing and reports OK.
    assert tox(project, "-a") == ["py", "lint", "services", "scenario-a", "scenario-b"]
    lines = tox(project, "config", "-e", "lint", "-k", "description")
    assert lines[-1] == "description = lint and formatting check with ruff"


def config(project: Path, env: str, *keys: str, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """`tox config` of one env: key -> value, or the list of its lines when tox prints several."""
    conf: dict[str, Any] = {}
    key = ""
    for line in tox(project, "config", "-e", env, "-k", *keys, *extra):
        if " = " in line or line.endswith(" ="):
            key, _, value = line.partition(" =")
            conf[key] = value.strip() or []
        elif isinstance(conf.get(key), list):
            conf[key].append(line)
    return conf


def test_services_runs_the_service_tests_then_each_state_scenario(project: Path) -> None:
    for name in ("d71_outage.yaml", "d70_resume.yaml", "d7_other.yaml", "_d70_base.yaml"):
        (project / "scenarios" / name).write_text("name: x\n")
    conf = config(project, "services", "commands", "env_tmp_dir", extra=("--", "-k", "outage"))
    scenarios, tmp_dir = project.resolve() / "scenarios", conf["env_tmp_dir"]
    assert conf["commands"] == [
        "pytest -m services -k outage",  # posargs go to pytest
        f"arbframe run {scenarios}/d70_resume.yaml --reset --out {tmp_dir}/d70_resume",
        f"arbframe run {scenarios}/d71_outage.yaml --reset --out {tmp_dir}/d71_outage",
    ]


def test_services_without_state_scenarios_runs_the_tests_alone(project: Path) -> None:
    assert config(project, "services", "commands")["commands"] == "pytest -m services"


def test_services_names_the_local_servers_unless_the_caller_did(project: Path, monkeypatch) -> None:
    for name in ("ARBFRAME_REDIS_URL", "ARBFRAME_DATABASE_URL", "ARBFRAME_REQUIRE_SERVICES"):
        monkeypatch.delenv(name, raising=False)
    assert {
        "ARBFRAME_REDIS_URL=redis://127.0.0.1:6379/0",
        "ARBFRAME_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test",
        "ARBFRAME_REQUIRE_SERVICES=1",  # a server that is down fails the tests
    } <= set(config(project, "services", "set_env")["set_env"])

    monkeypatch.setenv("ARBFRAME_REDIS_URL", "redis://cache:6380/2")
    monkeypatch.setenv("ARBFRAME_REQUIRE_SERVICES", "0")
    set_env = set(config(project, "services", "set_env")["set_env"])
    assert {"ARBFRAME_REDIS_URL=redis://cache:6380/2", "ARBFRAME_REQUIRE_SERVICES=0"} <= set_env


def test_a_tuning_scenario_env_also_runs_arbframe_tune(project: Path) -> None:
    # its own expectations with `arbframe run`, then the tuning's in a study of its own
    (project / "scenarios" / "t.yaml").write_text("extends: _base.yaml\nname: t\ntuning: {}\n")
    lines = tox(project, "config", "-e", "scenario-t", "-k", "commands", "env_tmp_dir")
    tmp_dir = dict(line.split(" = ", 1) for line in lines if " = " in line)["env_tmp_dir"]
    scenario = project.resolve() / "scenarios" / "t.yaml"
    commands = lines[lines.index("commands =") + 1 : lines.index(f"env_tmp_dir = {tmp_dir}")]
    assert commands == [
        f"arbframe run {scenario} --out {tmp_dir}/run",
        f"arbframe tune {scenario} --storage sqlite:///{tmp_dir}/run/studies.db",
    ]
