"""Broken plugins do not take arbframe down, and internal errors are one line plus a file.

Each test installs throwaway plugin distributions the real way, as far as
``importlib.metadata`` can tell: a ``<name>-<version>.dist-info`` directory (``METADATA``,
``entry_points.txt``) next to the plugin's module in a fresh directory put on ``sys.path``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from importlib.metadata import distributions
from pathlib import Path

import pytest

from arbframe import hookspecs
from arbframe.cli import main
from arbframe.plugins import PluginManager, build_registry, get_plugin_manager

REPO = Path(__file__).resolve().parents[1]
BASE = REPO / "scenarios" / "_campaign_base.yaml"
PREFIX = "abf_test_"  # every throwaway module's name starts with this

Install = Callable[..., Path]

HEADER = """\
from arbframe.components import Feed
from arbframe.hookspecs import hookimpl
"""

# A healthy third-party feed type.
GOOD = (
    HEADER
    + """
class Flat(Feed):
    type_name = "flat"
    interface_version = 2
    description = "Never quotes."

    def venues(self):
        return []

    def symbols(self):
        return []

    def events(self):
        return iter(())


@hookimpl
def arbframe_register_feeds(register):
    register(Flat)
"""
)


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Install]:
    """install(dist, {module: source}, {entry point: module}) -> the new sys.path entry."""
    count = 0

    def install(
        dist: str, modules: dict[str, str], eps: dict[str, str], version: str = "1.0"
    ) -> Path:
        nonlocal count
        count += 1
        site = tmp_path / f"site{count}"  # a fresh directory: no stale importlib cache
        info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        for name, source in modules.items():
            (site / f"{name}.py").write_text(textwrap.dedent(source))
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        lines = [f"{name} = {value}" for name, value in eps.items()]
        (info / "entry_points.txt").write_text("[arbframe]\n" + "\n".join(lines) + "\n")
        monkeypatch.syspath_prepend(str(site))  # also invalidates the import caches
        return site

    yield install
    for name in [m for m in sys.modules if m.startswith(PREFIX)]:
        del sys.modules[name]


def broken_reasons() -> dict[str, str]:
    return {b.plugin: b.reason for b in build_registry(get_plugin_manager()).broken}


def scenario(tmp_path: Path, body: str = "") -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(f"extends: {BASE}\nname: tiny\nduration: 1m\n{body}")
    return path


# --- loading: any failure marks that plugin broken, the others load -------------------------


def test_import_time_exception(install: Install) -> None:
    install("boom-plugin", {f"{PREFIX}boom": "x = 1 / 0\n"}, {"boom": f"{PREFIX}boom"})
    install("good-plugin", {f"{PREFIX}good": GOOD}, {"good": f"{PREFIX}good"})
    registry = build_registry(get_plugin_manager())
    [broken] = registry.broken
    assert (broken.plugin, broken.module, broken.distribution) == (
        "boom",
        f"{PREFIX}boom",
        "boom-plugin 1.0",
    )
    assert broken.reason == "ZeroDivisionError: division by zero"
    assert broken.describe() == (
        f"plugin 'boom' (module {PREFIX}boom, distribution boom-plugin 1.0) failed to load: "
        "ZeroDivisionError: division by zero"
    )
    # The other plugins, built-ins included, are all there, with their distributions.
    assert registry.get("feed", "flat").distribution == "good-plugin 1.0"
    assert registry.get("feed", "flat").plugin == "good"
    assert registry.get("exchange", "paper").distribution == "arbframe 0.1.0"


def test_syntax_error(install: Install) -> None:
    install("syntax-plugin", {f"{PREFIX}syntax": "def f(:\n"}, {"syntax": f"{PREFIX}syntax"})
    reason = broken_reasons()["syntax"]
    assert reason.startswith("SyntaxError: ") and f"{PREFIX}syntax.py, line 1" in reason


def test_missing_module(install: Install) -> None:
    install("ghost-plugin", {}, {"ghost": f"{PREFIX}ghost"})
    assert broken_reasons() == {"ghost": f"ModuleNotFoundError: No module named '{PREFIX}ghost'"}


def test_hookimpl_with_a_wrong_signature(install: Install) -> None:
    source = HEADER + "\n@hookimpl\ndef arbframe_register_feeds(registr):\n    pass\n"
    install("sig-plugin", {f"{PREFIX}sig": source}, {"sig": f"{PREFIX}sig"})
    pm = get_plugin_manager()
    [broken] = pm.broken
    assert broken.reason.startswith("PluginValidationError: ")
    assert "registr" in broken.reason and "\n" not in broken.reason
    assert not pm.has_plugin("sig")


def test_hookimpl_of_an_unknown_hook(install: Install) -> None:
    source = HEADER + "\n@hookimpl\ndef arbframe_on_fil(run, fill):\n    pass\n"
    install("typo-plugin", {f"{PREFIX}typo": source}, {"typo": f"{PREFIX}typo"})
    pm = get_plugin_manager()
    [broken] = pm.broken
    assert broken.reason.startswith("PluginValidationError: unknown hook 'arbframe_on_fil'")
    assert not pm.has_plugin("typo")
    pm.check_pending()  # the manager is left clean


def test_exception_inside_a_registrar(install: Install) -> None:
    source = HEADER + "\n@hookimpl\ndef arbframe_register_feeds(register):\n    {}['nope']\n"
    install("raising-plugin", {f"{PREFIX}raising": source}, {"raising": f"{PREFIX}raising"})
    registry = build_registry(get_plugin_manager())
    [broken] = registry.broken
    assert broken.reason == "arbframe_register_feeds raised KeyError: 'nope'"
    assert broken.distribution == "raising-plugin 1.0"
    assert "synthetic" in registry.types("feed")


def test_duplicate_type_across_two_plugins(install: Install) -> None:
    install("good-plugin", {f"{PREFIX}good": GOOD}, {"good": f"{PREFIX}good"})
    again = GOOD.replace("class Flat(", "class FlatAgain(").replace("(Flat)", "(FlatAgain)")
    install("again-plugin", {f"{PREFIX}again": again}, {"again": f"{PREFIX}again"})
    registry = build_registry(get_plugin_manager())
    [broken] = registry.broken
    # The plugin found second is the broken one (sys.path order: the last installed first).
    assert broken.plugin == "good"
    assert broken.reason == (
        f"feed type 'flat' is registered twice: by {PREFIX}again.FlatAgain (again) and by "
        f"{PREFIX}good.Flat (good)"
    )
    assert registry.get("feed", "flat").plugin == "again"


def test_a_builtin_type_name_taken_by_a_third_party(install: Install) -> None:
    clash = GOOD.replace('"flat"', '"synthetic"')
    install("clash-plugin", {f"{PREFIX}clash": clash}, {"clash": f"{PREFIX}clash"})
    registry = build_registry(get_plugin_manager())
    [broken] = registry.broken
    assert broken.plugin == "clash"  # built-ins load first, whatever sys.path says
    assert "feed type 'synthetic' is registered twice" in broken.reason
    assert registry.get("feed", "synthetic").distribution == "arbframe 0.1.0"


def test_invalid_config_schema_names_type_plugin_and_path(install: Install) -> None:
    bad = GOOD.replace(
        'description = "Never quotes."',
        'description = "Never quotes."\n'
        '    config_schema = {"type": "object", "properties": {"period": {"minimum": "x"}}}',
    )
    install("schema-plugin", {f"{PREFIX}schema": bad}, {"schema": f"{PREFIX}schema"})
    registry = build_registry(get_plugin_manager())
    assert "flat" not in registry.types("feed")
    assert [b.reason for b in registry.broken] == [
        "feed type 'flat' (plugin schema): invalid config_schema at properties.period.minimum: "
        "'x' is not of type 'number'"
    ]


def test_the_same_distribution_twice_on_sys_path_loads_once(install: Install) -> None:
    install("good-plugin", {f"{PREFIX}good": GOOD}, {"good": f"{PREFIX}good"})
    install("good-plugin", {f"{PREFIX}good": GOOD}, {"good": f"{PREFIX}good"})
    registry = build_registry(get_plugin_manager())
    assert registry.broken == []
    assert registry.get("feed", "flat").distribution == "good-plugin 1.0"
    # importlib's entry_points() already drops the second copy; distributions() does not
    # (pluggy's loader walks it): the manager skips the repeat itself.
    eps = [ep for d in distributions() for ep in d.entry_points if ep.name == "good"]
    assert len(eps) == 2
    pm = PluginManager()
    pm.add_hookspecs(hookspecs)
    pm.load_entry_points(eps)
    assert pm.broken == [] and [n for n, _ in pm.list_name_plugin()] == ["good"]


def test_one_plugin_name_in_two_distributions(install: Install) -> None:
    install("first-plugin", {f"{PREFIX}first": GOOD}, {"good": f"{PREFIX}first"})
    install("second-plugin", {f"{PREFIX}second": "\n"}, {"good": f"{PREFIX}second"})
    [broken] = build_registry(get_plugin_manager()).broken
    # sys.path order: the last installed is found first.
    assert (broken.module, broken.distribution) == (f"{PREFIX}first", "first-plugin 1.0")
    assert broken.reason == "the plugin name 'good' is already taken by second-plugin 1.0"


def test_two_entry_points_for_one_module(install: Install) -> None:
    modules = {f"{PREFIX}good": GOOD}
    install("twice-plugin", modules, {"one": f"{PREFIX}good", "two": f"{PREFIX}good"})
    [broken] = build_registry(get_plugin_manager()).broken
    assert broken.plugin == "two"
    assert broken.reason == f"{PREFIX}good is already loaded as plugin 'one'"


OLD_VENUE = """
from arbframe.components import SimulatedExchange
from arbframe.hookspecs import hookimpl


class OldVenue(SimulatedExchange):  # written for interface 1, which needed no declaration
    type_name = "old_venue"


@hookimpl
def arbframe_register_exchanges(register):
    register(OldVenue)
"""


def test_an_exchange_at_the_wrong_interface_version_names_its_distribution(
    install: Install, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    install("old-venue", {f"{PREFIX}old": OLD_VENUE}, {"old": f"{PREFIX}old"}, version="0.3")
    assert main(["plugins"]) == 0
    why = "OldVenue declares no interface_version (set interface_version = 2; a plugin"
    broken = f"broken: plugin 'old' (module {PREFIX}old, distribution old-venue 0.3) failed to load"
    assert capsys.readouterr().out.splitlines()[-1].startswith(f"{broken}: {why}")
    path = scenario(tmp_path, "venues:\n  binance: {type: old_venue}\n")
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "unknown exchange type 'old_venue'" in err
    assert f"(plugin 'old' provides it but failed to load: {why}" in err


# --- the command line: an unused broken plugin is a warning ---------------------------------

WARNING = (
    f"warning: plugin 'boom' (module {PREFIX}boom, distribution boom-plugin 1.0) failed to "
    "load: ZeroDivisionError: division by zero; its component types are unavailable\n"
)


def test_run_warns_once_and_still_works(
    install: Install, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    install("boom-plugin", {f"{PREFIX}boom": "x = 1 / 0\n"}, {"boom": f"{PREFIX}boom"})
    assert main(["run", str(scenario(tmp_path)), "--json", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert captured.err == WARNING
    assert json.loads(captured.out)["passed"] is True


def test_validate_warns_and_still_validates(
    install: Install, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    install("boom-plugin", {f"{PREFIX}boom": "x = 1 / 0\n"}, {"boom": f"{PREFIX}boom"})
    path = scenario(tmp_path)
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr() == (f"{path}: ok\n", WARNING)


def test_a_needed_broken_plugin_is_bad_input(
    install: Install, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    install("boom-plugin", {f"{PREFIX}boom": "x = 1 / 0\n"}, {"boom": f"{PREFIX}boom"})
    path = scenario(tmp_path, "feeds:\n  - {type: boom_feed}\n")
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(WARNING)
    assert "unknown feed type 'boom_feed'" in err and "Traceback" not in err
    # the error says which plugin may have provided it, and why it is not there
    assert "(plugin 'boom' failed to load: ZeroDivisionError: division by zero; it may" in err


def test_plugins_lists_broken_plugins(install: Install, capsys: pytest.CaptureFixture[str]) -> None:
    install("boom-plugin", {f"{PREFIX}boom": "x = 1 / 0\n"}, {"boom": f"{PREFIX}boom"})
    install("good-plugin", {f"{PREFIX}good": GOOD}, {"good": f"{PREFIX}good"})
    assert main(["plugins"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    lines = captured.out.splitlines()
    assert lines[-1] == "broken: " + WARNING.removeprefix("warning: ").split(";")[0]
    assert any(line.split()[:4] == ["feed", "flat", "good-plugin", "1.0"] for line in lines)

    assert main(["plugins", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert all(r["broken"] is None for r in rows[:-1])
    assert rows[-1] == {
        "kind": None,
        "type": None,
        "plugin": "boom",
        "distribution": "boom-plugin 1.0",
        "module": f"{PREFIX}boom",
        "class": None,
        "description": None,
        "broken": "ZeroDivisionError: division by zero",
    }


def test_broken_plugin_in_a_real_subprocess(install: Install) -> None:
    site = install("boom-plugin", {f"{PREFIX}boom": "x = 1 / 0\n"}, {"boom": f"{PREFIX}boom"})
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run(
        [sys.executable, "-P", "-m", "arbframe", "validate", str(BASE)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0
    assert result.stderr == WARNING


# --- internal errors: exit 3, one line, the traceback in a file -----------------------------

CRASHING = (
    HEADER
    + """
class Crashing(Feed):
    type_name = "crashing"
    interface_version = 2

    def venues(self):
        return ["upbit", "binance"]

    def symbols(self):
        return ["BTC"]

    def events(self):
        raise RuntimeError("the feed fell over")


@hookimpl
def arbframe_register_feeds(register):
    register(Crashing)
"""
)


def run_crashing(install: Install, tmp_path: Path) -> int:
    install("crash-plugin", {f"{PREFIX}crash": CRASHING}, {"crash": f"{PREFIX}crash"})
    path = scenario(tmp_path, "feeds:\n  - {type: crashing}\n")
    return main(["run", str(path), "--no-progress"])


def crash_line(err: str, directory: Path) -> Path:
    """The one stderr line; returns the crash file it names (in `directory`)."""
    prefix = "arbframe: internal error: RuntimeError: the feed fell over (full traceback in "
    assert err.startswith(prefix) and err.endswith(")\n") and err.count("\n") == 1, err
    path = Path(err.removeprefix(prefix).removesuffix(")\n"))
    assert path.parent == directory and path.name.startswith("arbframe-crash-")
    return path


def test_internal_error_exits_3_with_the_traceback_in_a_file(
    install: Install,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ARBFRAME_CRASH_DIR", str(tmp_path / "crashes"))
    assert run_crashing(install, tmp_path) == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err
    text = crash_line(err, tmp_path / "crashes").read_text()
    assert "Traceback (most recent call last):" in text
    assert 'raise RuntimeError("the feed fell over")' in text
    assert text.rstrip().endswith("RuntimeError: the feed fell over")


def test_crash_file_goes_to_the_temp_dir_by_default(
    install: Install,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("ARBFRAME_CRASH_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert run_crashing(install, tmp_path) == 3
    assert crash_line(capsys.readouterr().err, tmp_path).is_file()


def test_crash_file_that_cannot_be_written(
    install: Install,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("ARBFRAME_CRASH_DIR", str(tmp_path / "file" / "crashes"))
    assert run_crashing(install, tmp_path) == 3
    err = capsys.readouterr().err
    assert err.startswith(
        "arbframe: internal error: RuntimeError: the feed fell over (traceback not saved: "
    )
    assert err.count("\n") == 1 and "Traceback" not in err
