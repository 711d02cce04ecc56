"""Plugin manager and the registry of component types.

``get_plugin_manager()`` builds a fresh manager (no globals): hook specs, then every
module of the ``arbframe`` entry-point group (built-ins included), then any extra
plugins given. ``ARBFRAME_DISABLE_PLUGIN_AUTOLOAD=1`` skips the entry points;
``ARBFRAME_TRACE_PLUGINS=1`` traces hook calls to stderr.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

import pluggy

from arbframe import hookspecs
from arbframe.components import INTERFACE_VERSION, KINDS, Component
from arbframe.errors import ArbframeError

GROUP = "arbframe"

_REGISTRARS = {
    "exchange": "arbframe_register_exchanges",
    "feed": "arbframe_register_feeds",
    "strategy": "arbframe_register_strategies",
    "guard": "arbframe_register_guards",
    "sink": "arbframe_register_sinks",
    "alert": "arbframe_register_alerts",
    "fault": "arbframe_register_faults",
}


@dataclass(frozen=True)
class ComponentInfo:
    kind: str
    type_name: str
    cls: type[Component]
    plugin: str  # plugin name in the manager (the entry point's name for installed ones)
    distribution: str  # "name version" of the package it came from, or "<local>"

    @property
    def schema(self) -> dict[str, Any]:
        return self.cls.config_schema


class Registry:
    """Component types by kind and name. Refuses duplicates, naming both sides."""

    def __init__(self) -> None:
        self._types: dict[str, dict[str, ComponentInfo]] = {kind: {} for kind in KINDS}

    def add(self, info: ComponentInfo) -> None:
        base = KINDS[info.kind]
        if not issubclass(info.cls, base):
            raise ArbframeError(
                f"plugin {info.plugin}: {info.cls.__qualname__} is registered as a {info.kind} "
                f"but does not subclass {base.__qualname__}"
            )
        if not info.cls.type_name:
            raise ArbframeError(f"plugin {info.plugin}: {info.cls.__qualname__} has no type_name")
        if info.cls.interface_version != INTERFACE_VERSION:
            raise ArbframeError(
                f"plugin {info.plugin}: {info.cls.__qualname__} targets interface version "
                f"{info.cls.interface_version}, this arbframe speaks {INTERFACE_VERSION}"
            )
        known = self._types[info.kind].get(info.type_name)
        if known is not None and known.cls is not info.cls:
            raise ArbframeError(
                f"{info.kind} type {info.type_name!r} is registered twice: by "
                f"{known.cls.__module__}.{known.cls.__qualname__} ({known.plugin}) and by "
                f"{info.cls.__module__}.{info.cls.__qualname__} ({info.plugin})"
            )
        self._types[info.kind][info.type_name] = info

    def types(self, kind: str) -> dict[str, ComponentInfo]:
        return self._types[kind]

    def get(self, kind: str, type_name: str) -> ComponentInfo:
        return self._types[kind][type_name]

    def all(self) -> list[ComponentInfo]:
        return [info for kind in KINDS for info in sorted(self._types[kind].values(), key=_name)]


def _name(info: ComponentInfo) -> str:
    return info.type_name


def get_plugin_manager(extra_plugins: tuple[Any, ...] = ()) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    try:
        if os.environ.get("ARBFRAME_DISABLE_PLUGIN_AUTOLOAD") != "1":
            pm.load_setuptools_entrypoints(GROUP)
        for plugin in extra_plugins:
            pm.register(plugin)
        pm.check_pending()
    except pluggy.PluginValidationError as err:
        raise ArbframeError(f"plugin {err.plugin!r}: {' '.join(str(err).split())}") from err
    except ImportError as err:  # an entry point whose module does not import
        raise ArbframeError(
            f"a plugin of the {GROUP!r} entry-point group failed to import: {err}"
        ) from err
    if os.environ.get("ARBFRAME_TRACE_PLUGINS") == "1":
        pm.trace.root.setwriter(sys.stderr.write)
        pm.enable_tracing()
    return pm


def build_registry(pm: pluggy.PluginManager) -> Registry:
    """Ask every plugin to register its component types."""
    registry = Registry()
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    for kind, hook_name in _REGISTRARS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            dist = dists.get(id(impl.plugin))
            dist_name = f"{dist.project_name} {dist.version}" if dist else "<local>"

            def register(cls: type[Component], _kind=kind, _impl=impl, _dist=dist_name) -> None:
                if not isinstance(cls, type):  # e.g. an instance: issubclass would TypeError
                    raise ArbframeError(
                        f"plugin {_impl.plugin_name}: register() takes a "
                        f"component class, got {cls!r}"
                    )
                registry.add(ComponentInfo(_kind, cls.type_name, cls, _impl.plugin_name, _dist))

            impl.function(register=register)
    return registry
