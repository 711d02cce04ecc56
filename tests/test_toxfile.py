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
    assert tox(project, "-l") == ["py", "lint", "scenario-a", "scenario-b"]

    # a new file joins the matrix, with no edit to tox.ini
    (project / "scenarios" / "c1_mixed.yaml").write_text("name: c1\n")
    assert tox(project, "-m", "scenarios", "-l") == [
        "scenario-a",
        "scenario-b",
        "scenario-c1_mixed",
    ]
    assert tox(project, "-l") == ["py", "lint", "scenario-a", "scenario-b", "scenario-c1_mixed"]


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
    assert tox(project, "-a") == ["py", "lint", "scenario-a", "scenario-b"]
    lines = tox(project, "config", "-e", "lint", "-k", "description")
    assert lines[-1] == "description = lint and formatting check with ruff"
