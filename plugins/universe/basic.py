"""The built-in universes: `single`, `fixed_list`, `top_n`, `full_market`.

Each only picks among the candidates the kernel hands it (arbframe.universe: quoted on two
venues or more, through the block's `quote`, `min_volume` and `blacklist` filters).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from arbframe.components import Universe, UniverseContext
from arbframe.errors import ConfigError
from arbframe.hookspecs import Register, hookimpl
from arbframe.universe import symbols_problem

_SYMBOL = {"type": "string", "minLength": 1}


class Single(Universe):
    type_name = "single"
    interface_version = 2
    description = "One symbol, while it passes the filters."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["symbol"],
        "properties": {"symbol": _SYMBOL},
    }

    def __init__(self, config: dict[str, Any], *, name: str, ctx: UniverseContext) -> None:
        super().__init__(config, name=name, ctx=ctx)
        problem = symbols_problem([config["symbol"]], ctx.market)
        if problem:
            raise ConfigError(problem[1], ("symbol",))

    def select(self, candidates: Mapping[str, float | None]) -> Iterable[str]:
        return [self.config["symbol"]]


class FixedList(Universe):
    type_name = "fixed_list"
    interface_version = 2
    description = "A whitelist of symbols, each while it passes the filters."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["symbols"],
        "properties": {
            "symbols": {"type": "array", "items": _SYMBOL, "minItems": 1, "uniqueItems": True},
        },
    }

    def __init__(self, config: dict[str, Any], *, name: str, ctx: UniverseContext) -> None:
        super().__init__(config, name=name, ctx=ctx)
        problem = symbols_problem(config["symbols"], ctx.market)
        if problem:
            raise ConfigError(problem[1], ("symbols", problem[0]))

    def select(self, candidates: Mapping[str, float | None]) -> Iterable[str]:
        return self.config["symbols"]


class TopN(Universe):
    type_name = "top_n"
    interface_version = 2
    description = "The n symbols with the largest reported 24h volume (ties: by name)."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["n"],
        "properties": {"n": {"type": "integer", "minimum": 1}},
    }

    def select(self, candidates: Mapping[str, float | None]) -> Iterable[str]:
        # A symbol whose volume no venue reported cannot be ranked: it is not chosen.
        ranked = sorted((-v, s) for s, v in candidates.items() if v is not None)
        return [s for _, s in ranked[: self.config["n"]]]


class FullMarket(Universe):
    type_name = "full_market"
    interface_version = 2
    description = "Every symbol that passes the filters."

    def select(self, candidates: Mapping[str, float | None]) -> Iterable[str]:
        return candidates


@hookimpl
def arbframe_register_universes(register: Register) -> None:
    for cls in (Single, FixedList, TopN, FullMarket):
        register(cls)
