"""tox inline plugin: one ``scenario-<stem>`` tox env per ``scenarios/*.yaml``, and the
commands of the ``services`` env.

A new scenario file joins the matrix without touching tox.ini: ``tox`` runs it after the unit
tests, ``tox -m scenarios`` runs every scenario, ``tox -e scenario-<stem>`` runs one. Files whose
name starts with ``_`` are ``extends:`` bases, not scenarios. ``services`` runs the tests marked
``services``, then each state scenario (``d70_*``, ``d71_*``) with ``--reset``, against the real
servers its environment names (tox.ini): a new one joins it the same way. Each ``live_*``
scenario runs against local fakes of its venues (tests/fakevenues), in shadow mode, then live.
Needs tox >= 4.29 (``tox_extend_envs``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tox.config.loader.memory import MemoryLoader
from tox.config.types import Command, EnvList
from tox.plugin import impl

if TYPE_CHECKING:
    from tox.config.sets import ConfigSet, EnvConfigSet
    from tox.session.state import State

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
PREFIX = "scenario-"
LABEL = "scenarios"
SERVICES_ENV = "services"
STATE_SCENARIOS = ("d70_", "d71_")
"""File name prefixes of the state scenarios, which ``services`` runs against the real servers."""
LIVE_SCENARIOS = ("live_",)
"""File name prefixes of the scenarios on real venues, which run against local fakes."""
FAKE_VENUES = Path(__file__).resolve().parent / "tests" / "fakevenues"


def _scenarios() -> dict[str, Path]:
    """Env name -> scenario file, sorted by file name."""
    files = sorted(SCENARIO_DIR.glob("*.yaml"))
    return {PREFIX + f.stem: f for f in files if not f.name.startswith("_")}


@impl
def tox_extend_envs() -> tuple[str, ...]:
    # Declare the generated envs, so tox knows them (`-e scenario-x`, `-m scenarios`, `tox -a`).
    return tuple(_scenarios())


@impl
def tox_add_core_config(core_conf: ConfigSet, state: State) -> None:
    # The default run (`tox` with no -e/-m) is tox.ini's env_list followed by every scenario env.
    env_list = [*core_conf["env_list"], *_scenarios()]
    for definition in core_conf.get_configs():
        if "env_list" in definition.keys:
            definition.overwrite(EnvList(env_list))


def _state_scenarios() -> list[Path]:
    return [f for f in _scenarios().values() if f.name.startswith(STATE_SCENARIOS)]


def _services_commands(out: Path, posargs: tuple[str, ...]) -> list[Command]:
    """The service-backed tests, then each state scenario (a non-zero exit fails the env)."""
    commands = [Command(["pytest", "-m", "services", *posargs])]
    for path in _state_scenarios():
        run = ["arbframe", "run", str(path), "--reset", "--out", str(out / path.stem)]
        commands.append(Command(run))
    return commands


def _has_tuning(path: Path) -> bool:
    """The scenario has a top-level `tuning:` block (`arbframe tune` checks its expect)."""
    return any(line.startswith("tuning:") for line in path.read_text().splitlines())


def _scenario_commands(path: Path, out: Path) -> list[Command]:
    """``arbframe run``; a live scenario (``live_*``) runs against the local fakes of its
    venues (tests/fakevenues), in shadow mode and then live."""
    run = ["arbframe", "run", str(path), "--out"]
    if _has_tuning(path):  # its own expectations, then the tuning's, in a fresh study store
        tune = ["arbframe", "tune", str(path), "--storage", f"sqlite:///{out / 'studies.db'}"]
        return [Command([*run, str(out)]), Command(tune)]
    if not path.name.startswith(LIVE_SCENARIOS):
        return [Command([*run, str(out)])]
    fake = ["python", str(FAKE_VENUES), "run", "--"]
    live = ["env", "ARBFRAME_MODE=live", *run, str(out / "live"), "--live"]
    return [Command([*fake, *run, str(out / "shadow")]), Command([*fake, *live])]


@impl
def tox_add_env_config(env_conf: EnvConfigSet, state: State) -> None:
    if env_conf.env_name == SERVICES_ENV:
        out = Path(env_conf["env_tmp_dir"])
        commands = _services_commands(out, state.conf.pos_args(None) or ())
        env_conf.loaders.insert(0, MemoryLoader(commands=commands))
        return
    path = _scenarios().get(env_conf.env_name or "")
    if path is None:
        return
    # Everything not set here (install, pass_env, ...) is inherited from [testenv] in tox.ini.
    out = Path(env_conf["env_tmp_dir"]) / "run"  # i.e. {envtmpdir}/run
    settings = MemoryLoader(
        description=f"run scenarios/{path.name}",
        labels=[LABEL],
        commands=_scenario_commands(path, out),
    )
    env_conf.loaders.insert(0, settings)  # takes precedence over tox.ini
