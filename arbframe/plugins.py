"""Plugin manager and the registry of component types.

``get_plugin_manager()`` builds a fresh manager (no globals): hook specs, then every
module of the ``arbframe`` entry-point group (built-ins first, then the others), then any
extra plugins given. ``ARBFRAME_DISABLE_PLUGIN_AUTOLOAD=1`` skips the entry points;
``ARBFRAME_TRACE_PLUGINS=1`` traces hook calls to stderr.

A plugin that fails (its module does not import, a hook implementation does not match its
spec, a registration hook raises or registers something the registry refuses) does not
stop the others: it is recorded as a :class:`BrokenPlugin` in ``registry.broken`` and
contributes no component types. Only a scenario that needs one of its types fails.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import Any

import pluggy
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from arbframe import hookspecs
from arbframe.components import KINDS, Component, interface_problem
from arbframe.errors import ArbframeError, PluginError

GROUP = "arbframe"
LOCAL = "<local>"  # the distribution of a plugin given in-process (extra_plugins)

_REGISTRARS = {
    "exchange": "arbframe_register_exchanges",
    "feed": "arbframe_register_feeds",
    "strategy": "arbframe_register_strategies",
    "guard": "arbframe_register_guards",
    "sink": "arbframe_register_sinks",
    "alert": "arbframe_register_alerts",
    "fault": "arbframe_register_faults",
    "state": "arbframe_register_state_stores",
    "universe": "arbframe_register_universes",
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


@dataclass(frozen=True)
class BrokenPlugin:
    """A plugin that failed to import or to register; none of its types are available."""

    plugin: str  # the entry point's name (the plugin name in the manager)
    module: str  # the entry point's value, e.g. "foo_mod" (or the module of a local plugin)
    distribution: str  # "name version", or "<local>"
    reason: str  # one line: "ZeroDivisionError: division by zero", a refusal, ...
    types: tuple[tuple[str, str], ...] = ()  # (kind, type_name) it registered before failing

    def describe(self) -> str:
        return (
            f"plugin {self.plugin!r} (module {self.module}, distribution {self.distribution}) "
            f"failed to load: {self.reason}"
        )


def one_line(err: BaseException) -> str:
    """``Type: message`` on one line, for reports without a traceback."""
    message = " ".join(str(err).split())
    return f"{type(err).__name__}: {message}" if message else type(err).__name__


class Registry:
    """Component types by kind and name. Refuses duplicates, naming both sides."""

    def __init__(self) -> None:
        self._types: dict[str, dict[str, ComponentInfo]] = {kind: {} for kind in KINDS}
        self.broken: list[BrokenPlugin] = []

    def add(self, info: ComponentInfo) -> None:
        _check_class(info.kind, info.cls)
        known = self._types[info.kind].get(info.type_name)
        if known is not None and known.cls is not info.cls:
            raise PluginError(
                f"{info.kind} type {info.type_name!r} is registered twice: by "
                f"{known.cls.__module__}.{known.cls.__qualname__} ({known.plugin}) and by "
                f"{info.cls.__module__}.{info.cls.__qualname__} ({info.plugin})"
            )
        _check_schema(info)
        self._types[info.kind][info.type_name] = info

    def mark_broken(self, record: BrokenPlugin) -> None:
        """Record a broken plugin and drop the types it had registered."""
        self.broken.append(record)
        for types in self._types.values():
            for name in [n for n, info in types.items() if info.plugin == record.plugin]:
                del types[name]

    def explain_unknown(self, kind: str, type_name: str) -> str:
        """A hint to append to an "unknown type" error: ``""`` if no plugin is broken.

        Otherwise `` (plugin 'foo' failed to load: <reason>; it may have provided it)``,
        with a leading space; more precise when the broken plugin did register that type.
        """
        if not self.broken:
            return ""
        for b in self.broken:
            if (kind, type_name) in b.types:
                return f" (plugin {b.plugin!r} provides it but failed to load: {b.reason})"
        failed = "; ".join(f"plugin {b.plugin!r} failed to load: {b.reason}" for b in self.broken)
        return (
            f" ({failed}; {'it' if len(self.broken) == 1 else 'one of them'} may have provided it)"
        )

    def types(self, kind: str) -> dict[str, ComponentInfo]:
        return self._types[kind]

    def get(self, kind: str, type_name: str) -> ComponentInfo:
        return self._types[kind][type_name]

    def all(self) -> list[ComponentInfo]:
        return [info for kind in KINDS for info in sorted(self._types[kind].values(), key=_name)]


def _name(info: ComponentInfo) -> str:
    return info.type_name


def _check_class(kind: str, cls: Any) -> None:
    base = KINDS[kind]
    if not isinstance(cls, type):  # e.g. an instance: issubclass would TypeError
        raise PluginError(f"register() takes a component class, got {cls!r}")
    if not issubclass(cls, base):
        raise PluginError(
            f"{cls.__qualname__} is registered as a {kind} "
            f"but does not subclass {base.__qualname__}"
        )
    if not cls.type_name:
        raise PluginError(f"{cls.__qualname__} has no type_name")
    problem = interface_problem(cls)
    if problem:
        raise PluginError(f"{cls.__qualname__} {problem}")


def _check_schema(info: ComponentInfo) -> None:
    schema = info.cls.config_schema
    where = f"{info.kind} type {info.type_name!r} (plugin {info.plugin})"
    if not isinstance(schema, dict):
        raise PluginError(f"{where}: config_schema must be a JSON object, got {schema!r}")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as err:
        at = err.json_path.removeprefix("$").removeprefix(".")
        raise PluginError(
            f"{where}: invalid config_schema{f' at {at}' if at else ''}: {err.message}"
        ) from None


# --- the plugin manager --------------------------------------------------------------------


class PluginManager(pluggy.PluginManager):
    """pluggy's manager, plus what arbframe's entry-point loader found.

    ``broken`` lists the plugins that failed to load (and, once ``build_registry`` ran, those
    that failed to register); ``loaded`` pairs each plugin loaded from an entry point with
    that entry point (its distribution: what pluggy's own loader keeps for
    ``list_plugin_distinfo()``).
    """

    def __init__(self) -> None:
        super().__init__(GROUP)
        self.broken: list[BrokenPlugin] = []
        self.loaded: list[tuple[object, EntryPoint]] = []

    def load_entry_points(self, eps: Iterable[EntryPoint]) -> None:
        """Import and register each entry point; a failure marks that plugin broken."""
        seen: set[tuple[str, str]] = set()
        for ep in eps:
            key = (dist_label(ep.dist), ep.name)  # a distribution found twice on sys.path
            if key in seen or self.is_blocked(ep.name):
                continue
            seen.add(key)
            try:
                self._load(ep)
            except Exception as err:  # whatever it is, this plugin is broken; the others load
                self.broken.append(BrokenPlugin(ep.name, ep.value, key[0], _reason(err)))

    def _load(self, ep: EntryPoint) -> None:
        if self.has_plugin(ep.name):
            owner = next((dist_label(e.dist) for _, e in self.loaded if e.name == ep.name), LOCAL)
            raise PluginError(f"the plugin name {ep.name!r} is already taken by {owner}")
        plugin = ep.load()
        if self.get_name(plugin) is not None:
            raise PluginError(f"{ep.value} is already loaded as plugin {self.get_name(plugin)!r}")
        try:
            self.register(plugin, name=ep.name)
            self.check_pending()  # a hook implementation without a spec (misspelt hook name)
        except Exception:
            if self.get_plugin(ep.name) is plugin:
                self.unregister(plugin)
            raise
        self.loaded.append((plugin, ep))


def dist_label(dist: Any) -> str:
    """``name version`` of a distribution (importlib's or pluggy's DistFacade), else <local>."""
    return f"{dist.metadata['Name']} {dist.version}" if dist is not None else LOCAL


def _builtins_first(ep: EntryPoint) -> bool:
    return ep.dist is None or ep.dist.metadata["Name"] != "arbframe"


def _reason(err: Exception, hook_name: str = "") -> str:
    """A refusal's own message; else ``[<hook_name> raised ]Type: message``."""
    if isinstance(err, PluginError):
        return str(err)
    return f"{hook_name} raised {one_line(err)}" if hook_name else one_line(err)


def get_plugin_manager(extra_plugins: tuple[Any, ...] = ()) -> PluginManager:
    pm = PluginManager()
    pm.add_hookspecs(hookspecs)
    if os.environ.get("ARBFRAME_DISABLE_PLUGIN_AUTOLOAD") != "1":
        # The built-ins first: on a type-name clash, the third-party plugin is the broken one.
        pm.load_entry_points(sorted(entry_points(group=GROUP), key=_builtins_first))
    try:
        for plugin in extra_plugins:
            pm.register(plugin)
        pm.check_pending()
    except pluggy.PluginValidationError as err:
        raise ArbframeError(f"plugin {err.plugin!r}: {' '.join(str(err).split())}") from err
    if os.environ.get("ARBFRAME_TRACE_PLUGINS") == "1":
        pm.trace.root.setwriter(sys.stderr.write)
        pm.enable_tracing()
    return pm


# --- registration --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Origin:
    """Where a registered plugin came from."""

    module: str
    distribution: str


def build_registry(pm: pluggy.PluginManager) -> Registry:
    """Ask every plugin to register its component types.

    A plugin whose registration hook raises, or registers something the registry refuses,
    is marked broken (``registry.broken``), loses the types it had registered and is
    unregistered from ``pm``; the other plugins are not affected.
    """
    registry = Registry()
    registry.broken.extend(getattr(pm, "broken", ()))
    origins = _origins(pm)
    tried: dict[str, list[tuple[str, str]]] = {}  # plugin -> (kind, type) it registered
    for kind, hook_name in _REGISTRARS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            if any(b.plugin == impl.plugin_name for b in registry.broken):
                continue
            origin = origins.get(id(impl.plugin)) or _Origin(_module_of(impl.plugin), LOCAL)
            types = tried.setdefault(impl.plugin_name, [])
            register = _register_into(registry, kind, impl.plugin_name, origin, types)
            try:
                impl.function(register=register)
            except Exception as err:  # the plugin's bug: it is broken, the others go on
                reason = _reason(err, hook_name)
                record = BrokenPlugin(
                    impl.plugin_name, origin.module, origin.distribution, reason, tuple(types)
                )
                _mark_broken(pm, registry, impl.plugin, record)
    return registry


def _origins(pm: pluggy.PluginManager) -> dict[int, _Origin]:
    """id(plugin) -> origin, for the plugins loaded from entry points."""
    origins = {
        id(plugin): _Origin(_module_of(plugin), dist_label(dist))
        for plugin, dist in pm.list_plugin_distinfo()  # a manager that used pluggy's loader
    }
    for plugin, ep in getattr(pm, "loaded", ()):
        origins[id(plugin)] = _Origin(ep.value, dist_label(ep.dist))
    return origins


def _module_of(plugin: object) -> str:
    return plugin.__name__ if isinstance(plugin, ModuleType) else type(plugin).__module__


def _register_into(
    registry: Registry, kind: str, plugin: str, origin: _Origin, tried: list[tuple[str, str]]
) -> Callable[[type[Component]], None]:
    """The ``register`` callable handed to one plugin's registrar of one kind."""

    def register(cls: type[Component]) -> None:
        type_name = getattr(cls, "type_name", "")
        tried.append((kind, str(type_name)))
        registry.add(ComponentInfo(kind, type_name, cls, plugin, origin.distribution))

    return register


def _mark_broken(
    pm: pluggy.PluginManager, registry: Registry, plugin: object, record: BrokenPlugin
) -> None:
    registry.mark_broken(record)
    if pm.get_name(plugin) is not None:  # its event hooks go too
        pm.unregister(plugin)
    if isinstance(pm, PluginManager):  # a later build_registry(pm) reports it too
        pm.broken.append(record)
