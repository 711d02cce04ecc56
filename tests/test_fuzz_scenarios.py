"""Corrupted copies of the shipped scenarios: loading, wiring and running return or raise
ArbframeError.

Seeded (derandomized, no example database) so every run tries the same 300 files. Any
other exception, or a hang, fails with the corrupted text in the report.
"""

from __future__ import annotations

import shutil
import signal
import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from arbframe.errors import ArbframeError
from arbframe.plugins import Registry, build_registry, get_plugin_manager
from arbframe.runner import Run
from arbframe.scenario import load_scenario
from arbframe.units import parse_duration

REPO = Path(__file__).resolve().parent.parent
NAMES = sorted(p.name for p in (REPO / "scenarios").glob("*.yaml"))
# YAML-special characters and tokens, and values that once slipped through or crashed.
TOKENS = [
    ": ", "- ", "&a ", "*a", "!!", "!!str ", "!!float ", "!replace ", "!x ", "<<: *a",
    "{", "}", "[", "]", ",", "? ", "|", ">-", "#", "'", '"', "%YAML 1.2\n", "---\n", "...\n",
    ".nan", "-.Inf", "1e999", "1e-999", "9" * 400, "0x" + "f" * 300, "${X}", "${X:-3}", "${",
    "\t", "\n", "  ", "~", "null", "true", "2024-13-45", "\x00", "\x85", "\ufeff", "\u2028",
    "[[[[[[[[", "{a: {b: {c: ", "extends: ", "extends: _campaign_base.yaml\n",
]  # fmt: skip
EDITS = ["flip", "delete", "duplicate", "swap", "insert"]

edits = st.tuples(
    st.sampled_from(EDITS),
    st.integers(0, 1 << 20),  # a line or byte, taken modulo the length
    st.integers(0, 1 << 20),
    st.one_of(st.sampled_from(TOKENS), st.text(max_size=6)),
)


def corrupt(text: str, changes: list[tuple[str, int, int, str]]) -> bytes:
    for kind, a, b, token in changes:
        lines = text.split("\n")
        i, j = a % len(lines), b % len(lines)
        if kind == "delete":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        elif kind == "swap":
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == "insert":
            at = b % (len(lines[i]) + 1)
            lines[i] = lines[i][:at] + token + lines[i][at:]
        text = "\n".join(lines)
        if kind == "flip":  # may leave invalid UTF-8: that is an input error too
            raw = bytearray(text.encode("utf-8", errors="surrogateescape"))
            raw[a % len(raw)] ^= 1 << (b % 8)
            text = raw.decode("utf-8", errors="surrogateescape")
    return text.encode("utf-8", errors="surrogateescape")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of scenarios/ next to data/, as the real link bases refer to ../data/real/."""
    root = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(REPO / "scenarios", root / "scenarios")
    (root / "data").symlink_to(REPO / "data", target_is_directory=True)
    return root / "scenarios"


@pytest.fixture(scope="module")
def registry() -> Registry:  # built once: the fuzz loop is the expensive part
    return build_registry(get_plugin_manager())


class Hang(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise Hang("load_scenario took more than 20 s")


@pytest.fixture
def hang_guard() -> Iterator[None]:
    """Hypothesis' deadline reports slowness only once an example ends: interrupt hangs."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


@settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=timedelta(seconds=5),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    name=st.sampled_from(NAMES),
    changes=st.lists(edits, min_size=1, max_size=4),
    load_child=st.booleans(),
)
def test_corrupted_scenarios_load_or_raise_arbframe_error(
    workdir: Path,
    registry: Registry,
    hang_guard: None,
    name: str,
    changes: list[tuple[str, int, int, str]],
    load_child: bool,
) -> None:
    original = (REPO / "scenarios" / name).read_text(encoding="utf-8")
    data = corrupt(original, changes)
    note(f"{name} corrupted:\n{data.decode('utf-8', errors='replace')}")
    target = workdir / name
    if load_child and name.startswith("_"):  # a corrupted base, loaded through a child
        child = next(n for n in NAMES if f"extends: {name}" in (workdir / n).read_text())
        target = workdir / child
    (workdir / name).write_bytes(data)
    signal.setitimer(signal.ITIMER_REAL, 20)
    try:
        with warnings.catch_warnings():  # a warning would be stray output: fail on it
            warnings.simplefilter("error")
            load_scenario(target, registry, env={"X": "1"})
    except ArbframeError:
        pass
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        (workdir / name).write_text(original, encoding="utf-8")


@settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=timedelta(seconds=10),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    name=st.sampled_from([n for n in NAMES if not n.startswith("_")]),
    changes=st.lists(edits, min_size=1, max_size=2),
)
def test_corrupted_scenarios_wire_and_run_or_raise_arbframe_error(
    workdir: Path,
    registry: Registry,
    hang_guard: None,
    name: str,
    changes: list[tuple[str, int, int, str]],
) -> None:
    """What `arbframe validate` does after loading (wiring every component) and what
    `arbframe run` does: an input error or a summary, never another exception (which the
    CLI would report as an internal error, exit 3). Runs are cut to 10 minutes of scenario
    time: a corrupted `duration: 30000h` is a long run, not a bug."""
    original = (REPO / "scenarios" / name).read_text(encoding="utf-8")
    data = corrupt(original, changes)
    note(f"{name} corrupted:\n{data.decode('utf-8', errors='replace')}")
    (workdir / name).write_bytes(data)
    signal.setitimer(signal.ITIMER_REAL, 20)
    try:
        loaded = load_scenario(workdir / name, registry, env={"X": "1"})
        if parse_duration(loaded.data["duration"]) > parse_duration("10m"):
            loaded.data["duration"] = "10m"
        summary = Run(loaded, registry, get_plugin_manager()).execute()
        assert isinstance(summary["passed"], bool)
    except ArbframeError:
        pass
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        (workdir / name).write_text(original, encoding="utf-8")
