"""docs/reference.md is generated from the code (``python -m arbframe.docgen``): it must be
current, and it must describe everything a plugin touches.

What must be described is found here by introspecting the live objects (dataclass fields,
enum members, slots, attributes set by constructors, public methods and properties,
registered hookspecs), independently of the generator's ``ast`` walk, so a field, method
or hook that the generator skips fails as surely as one without a docstring.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import inspect
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from arbframe import components, docgen, hookspecs, model, orders
from arbframe.clock import Clock
from arbframe.execution import StrategyPort
from arbframe.market import MarketView

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "reference.md"
REGENERATE = "python -m arbframe.docgen"


@pytest.fixture(scope="module")
def generated() -> str:
    return docgen.render()


def test_reference_is_current(generated: str) -> None:
    if not REFERENCE.exists():
        pytest.fail(f"{REFERENCE} is missing: run `{REGENERATE}` to generate it")
    committed = REFERENCE.read_text(encoding="utf-8")
    if committed != generated:
        diff = difflib.unified_diff(
            committed.splitlines(), generated.splitlines(), "committed", "generated", lineterm=""
        )
        shown = "\n".join(list(diff)[:40])
        pytest.fail(f"docs/reference.md is stale: run `{REGENERATE}` to regenerate it\n{shown}")


def test_sections_in_order(generated: str) -> None:
    headings = re.findall(r"^## \d+\. (.+)$", generated, flags=re.M)
    assert headings == list(docgen.SECTIONS)


# ---- what must be described ------------------------------------------------------------------


def _own_members(cls: type) -> list[str]:
    """Fields, annotated class attributes, enum members, slots, public methods/properties."""
    names: list[str] = []
    if issubclass(cls, enum.Enum):
        names += list(cls.__members__)
    names += list(vars(cls).get("__annotations__", {}))
    names += [s for s in vars(cls).get("__slots__", ()) if not s.startswith("_")]
    for name, value in vars(cls).items():
        routine = inspect.isfunction(value) or isinstance(value, property | classmethod)
        if routine and not name.startswith("_"):
            names.append(name)
    return list(dict.fromkeys(names))


def _public_classes(module: Any) -> list[type]:
    return [
        value
        for name, value in vars(module).items()
        if inspect.isclass(value) and value.__module__ == module.__name__ and name[0] != "_"
    ]


def _instance_attributes(obj: Any) -> list[str]:
    return [name for name in vars(obj) if not name.startswith("_")]


def expected() -> dict[str, list[str]]:
    """Section block (the class, or the hook group) -> the names it must describe."""
    want: dict[str, list[str]] = {}
    for cls in _public_classes(model):
        want[cls.__name__] = _own_members(cls)
    for cls in (orders.OrderState, orders.OrderEvent):
        want[cls.__name__] = _own_members(cls)
    contexts = [components.RunInfo, components.Context, *components.CONTEXTS.values()]
    for cls in dict.fromkeys(contexts):  # each context's own fields (not the inherited ones)
        own = vars(cls).get("__annotations__", {})
        want[cls.__name__] = [f.name for f in dataclasses.fields(cls) if f.name in own]
    bases = [components.Component, components.SimulatedExchange, *components.KINDS.values()]
    for cls in bases:
        want[cls.__name__] = _own_members(cls)
    component = components.Component({}, name="x", ctx=None)
    want["Component"] += _instance_attributes(component)
    # What strategies use is documented by its contract; the kernel's classes implement it.
    want["Execution"] = _own_members(components.Execution)
    want["MarketData"] = _own_members(components.MarketData)
    assert set(want["Execution"]) <= set(_own_members(StrategyPort) + ["cooldowns"])
    assert set(want["MarketData"]) <= set(dir(MarketView("USDT", {"KRW": Decimal(1300)})))
    want["Clock"] = _own_members(Clock)
    hooks = [name for name, fn in vars(hookspecs).items() if hasattr(fn, "arbframe_spec")]
    want["Registration hooks"] = [h for h in hooks if h.startswith("arbframe_register_")]
    want["Event hooks"] = [h for h in hooks if not h.startswith("arbframe_register_")]
    return want


def documented(text: str) -> dict[str, dict[str, str]]:
    """Block (a ``### `Name``` heading, or its plain text) -> item -> description, from
    table rows ``| `item...` | ... | description |`` and ``#### `item...``` headings."""
    blocks: dict[str, dict[str, str]] = {}
    items: dict[str, str] = {}
    heading: str | None = None
    for line in text.splitlines():
        if line.startswith("### "):
            title = line[4:].strip()
            items = blocks.setdefault(title.strip("`"), {})
            heading = None
        elif line.startswith("#### "):
            match = re.match(r"#### `([A-Za-z_]\w*)", line)
            heading = match[1] if match else None
            if heading:
                items[heading] = ""
        elif line.startswith("#"):
            heading = None
        elif line.startswith("| `"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            match = re.match(r"`([A-Za-z_]\w*)", cells[0])
            if match:
                items[match[1]] = cells[-1]
        elif heading:
            items[heading] = (items[heading] + " " + line).strip()
    return blocks


def test_everything_is_described(generated: str) -> None:
    blocks = documented(generated)
    problems = []
    for block, names in expected().items():
        if block not in blocks:
            problems.append(f"{block}: not in the reference at all")
            continue
        for name in names:
            if name not in blocks[block]:
                problems.append(f"{block}.{name}: not in the reference (the generator skips it)")
            elif not blocks[block][name]:
                problems.append(f"{block}.{name}: no description")
    assert not problems, (
        "Undocumented in docs/reference.md: add a docstring (attribute docstring after a "
        f"field, `#:` comment on an enum member), then run `{REGENERATE}`:\n  "
        + "\n  ".join(problems)
    )


def test_documented_parses_what_it_should() -> None:
    """The parser above sees a missing description (else the previous test proves nothing)."""
    text = "### `X`\n\n| field | type | meaning |\n|---|---|---|\n| `a` | `int` |  |\n"
    text += "| `b` | `int \\| None` | B. |\n\n#### `f(x: int) -> None`\n\n#### `g()`\n\nG.\n"
    assert documented(text) == {"X": {"a": "", "b": "B.", "f": "", "g": "G."}}


# ---- the --check mode --------------------------------------------------------------------------


def _docgen(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "arbframe.docgen", *args]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def test_check_fails_on_a_stale_file(tmp_path: Path, generated: str) -> None:
    stale = tmp_path / "reference.md"
    stale.write_text(generated.replace("Base amount filled so far.", "Base amount."), "utf-8")
    result = _docgen("--check", "--output", str(stale))
    assert result.returncode != 0
    assert "stale" in result.stderr and REGENERATE in result.stderr

    missing = _docgen("--check", "--output", str(tmp_path / "absent.md"))
    assert missing.returncode != 0 and "missing" in missing.stderr

    assert _docgen("--output", str(stale)).returncode == 0  # regenerating it...
    assert stale.read_text("utf-8") == generated
    assert _docgen("--check", "--output", str(stale)).returncode == 0  # ...makes it pass
