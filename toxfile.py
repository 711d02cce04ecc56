"""tox inline plugin: one ``scenario-<stem>`` tox env per ``scenarios/*.yaml``.

A new scenario file joins the matrix without touching tox.ini: ``tox`` runs it after the unit
tests, ``tox -m scenarios`` runs every scenario, ``tox -e scenario-<stem>`` runs one. Files whose
name starts with ``_`` are ``extends:`` bases, not scenarios.
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


@impl
def tox_add_env_config(env_conf: EnvConfigSet, state: State) -> None:
    path = _scenarios().get(env_conf.env_name or "")
    if path is None:
        return
    # Everything not set here (install, pass_env, ...) is inherited from [testenv] in tox.ini.
    out = Path(env_conf["env_tmp_dir"]) / "run"  # i.e. {envtmpdir}/run
    settings = MemoryLoader(
        description=f"run scenarios/{path.name}",
        labels=[LABEL],
        commands=[Command(["arbframe", "run", str(path), "--out", str(out)])],
    )
    env_conf.loaders.insert(0, settings)  # takes precedence over tox.ini
