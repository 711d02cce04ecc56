"""The scenario schema: the kernel's core schema composed with every plugin's fragment."""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from arbframe.plugins import Registry

# Component slots of a scenario and the kind of plugin each holds.
SLOTS = {
    "venues": "exchange",
    "feeds": "feed",
    "strategy": "strategy",
    "strategies": "strategy",
    "guards": "guard",
    "sinks": "sink",
    "alerts": "alert",
    "faults": "fault",
    "state": "state",
    "universe": "universe",
}
SINGLE_SLOTS = frozenset({"strategy", "universe"})
"""Slots that hold one block (a mapping), not a list or a mapping of blocks."""


@cache
def _load(name: str) -> dict[str, Any]:
    try:
        folder: Any = files("arbframe.schemas")
    except ModuleNotFoundError:  # a source checkout imported without installing it
        folder = Path(__file__).resolve().parent.parent / "schemas"
    return json.loads(folder.joinpath(name).read_text())


def core_schema() -> dict[str, Any]:
    return copy.deepcopy(_load("scenario.schema.json"))


def summary_schema() -> dict[str, Any]:
    return copy.deepcopy(_load("summary.schema.json"))


# Reusable fragments for plugin config schemas (copies of the core definitions).
DURATION: dict[str, Any] = _load("scenario.schema.json")["$defs"]["duration"]
POSITIVE_DECIMAL: dict[str, Any] = _load("scenario.schema.json")["$defs"]["positive_decimal"]
NONNEGATIVE_DECIMAL: dict[str, Any] = _load("scenario.schema.json")["$defs"]["nonnegative_decimal"]
SECRET: dict[str, Any] = {
    "type": "string",
    "x-secret": True,
    "description": "Only as ${VARIABLE}: the loader refuses a value written in the file, and the "
    "value reads as its reference in every output (arbframe.secrets).",
}


def _inline(schema: Any, defs: dict[str, Any]) -> Any:
    """``schema`` with local ``$ref``s into ``defs`` replaced by their targets."""
    if isinstance(schema, dict):
        ref = schema.get("$ref", "")
        if ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {key: _inline(value, defs) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_inline(value, defs) for value in schema]
    return schema


# The kernel's own keys in a strategy block: its name, and execution settings that
# override the scenario's `execution:` for its trades.
STRATEGY_KEYS: dict[str, Any] = {
    "name": {"type": "string", "pattern": "^[A-Za-z0-9_.-]+$"},
    "execution": _inline(
        _load("scenario.schema.json")["$defs"]["execution"], _load("scenario.schema.json")["$defs"]
    ),
}


# The kernel's own keys in a universe block: when it is evaluated, what happens to a removed
# symbol's open trades, and the filters every universe type shares (arbframe.universe).
UNIVERSE_KEYS: dict[str, Any] = {
    "refresh": {
        **copy.deepcopy(DURATION),
        "description": "Evaluate again every this much scenario time (default: only at start).",
    },
    "on_remove": {
        "enum": ["close", "keep"],
        "default": "close",
        "description": "A removed symbol's open trades: close them at once (exit reason "
        "universe_removed, urgent), or keep them to their normal exit. Either way no new entry.",
    },
    "quote": {
        "type": "array",
        "items": {"type": "string", "minLength": 1},
        "minItems": 1,
        "uniqueItems": True,
        "description": "Only instruments quoted in these currencies count (a symbol needs two).",
    },
    "min_volume": {
        "type": "number",
        "minimum": 0,
        "description": "Minimum 24h volume (report currency, summed over the symbol's eligible "
        "venues); a symbol with no reported volume does not pass.",
    },
    "blacklist": {
        "type": "array",
        "items": {"type": "string", "minLength": 1},
        "uniqueItems": True,
        "description": "Symbols never traded (each must be quoted by a feed).",
    },
}


# A fault's name: its key in `summary.faults.timeline`, so no dots (expect paths split on them).
FAULT_KEYS: dict[str, Any] = {"name": {"type": "string", "pattern": "^[A-Za-z0-9_-]+$"}}


def component_schema(info_schema: dict[str, Any], type_name: str, kind: str = "") -> dict[str, Any]:
    """A plugin's config schema with the `type` key added (what a scenario block holds),
    and the kernel's keys of the kind: a strategy's `name` and `execution`, a fault's `name`."""
    schema = copy.deepcopy(info_schema)
    schema.setdefault("type", "object")
    props = schema.setdefault("properties", {})
    props["type"] = {"const": type_name}
    if kind == "strategy":
        props.update(copy.deepcopy(STRATEGY_KEYS))
    elif kind == "fault":
        props.update(copy.deepcopy(FAULT_KEYS))
    elif kind == "state":
        props["name"] = copy.deepcopy(STRATEGY_KEYS["name"])
    elif kind == "universe":
        props.update(copy.deepcopy(UNIVERSE_KEYS))
    return schema


def composed_schema(registry: Registry) -> dict[str, Any]:
    """The whole scenario schema, for editors: each slot accepts exactly the known types."""
    schema = core_schema()
    for slot, kind in SLOTS.items():
        types = registry.types(kind)
        branches = []
        for name, info in sorted(types.items()):
            branch = component_schema(info.schema, name, kind)
            branch["description"] = info.cls.description or branch.get("description", "")
            branches.append(
                {
                    "if": {"properties": {"type": {"const": name}}, "required": ["type"]},
                    "then": branch,
                }
            )
        # No registered type: nothing can fill the slot (`false`: no value for `type` is
        # valid). `allOf` and `enum` must not be empty in a valid (or sensible) schema.
        slot_schema: dict[str, Any] = {
            "type": "object",
            "required": ["type"],
            "properties": {"type": {"enum": sorted(types)} if types else False},
        }
        if branches:
            slot_schema["allOf"] = branches
        defn = f"{slot}_component"
        schema["$defs"][defn] = slot_schema
        ref = {"$ref": f"#/$defs/{defn}"}
        prop = schema["properties"][slot]
        if slot == "venues":
            prop["additionalProperties"] = ref
        elif slot in SINGLE_SLOTS:
            schema["properties"][slot] = ref
        else:
            prop["items"] = ref
    return schema
