"""Loading scenario files: YAML -> `extends` merge -> `${VAR}` substitution -> validation.

Every value keeps the file, line and column it was read from (through merging too), so
each problem is reported as ``file:line:col: key.path: message`` pointing at the file the
offending value actually came from. Only the first problem is reported: YAML and
`extends` problems as found, then the first core-schema problem by position, then the
first plugin-schema problem by position (the given file before its bases).

Input may be hostile: sizes, nesting and alias expansion are bounded (`yaml_limits`), and
non-finite numbers are refused, so a bad file fails with one line instead of hanging,
crashing or silently disabling a check.
"""

from __future__ import annotations

import datetime
import difflib
import math
import os
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError, best_match
from ruamel.yaml import YAML
from ruamel.yaml.comments import TaggedScalar
from ruamel.yaml.error import MarkedYAMLError, YAMLError, YAMLFutureWarning, YAMLWarning
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.scalarbool import ScalarBoolean

from arbframe import schema_walk
from arbframe.errors import ArbframeError, ScenarioError
from arbframe.plugins import Registry
from arbframe.schema import (
    DURATION,
    NONNEGATIVE_DECIMAL,
    POSITIVE_DECIMAL,
    SINGLE_SLOTS,
    SLOTS,
    component_schema,
    core_schema,
    summary_schema,
)
from arbframe.secrets import Secret
from arbframe.summary import reference
from arbframe.yaml_limits import MAX_BYTES, MAX_DEPTH, MAX_EXTENDS, MAX_VALUES, deep_nesting_at

# JSON Schema counts 3.0 as an integer; Python code does not (`range(3.0)`, a seed of 7.0
# that seeds another run): an integer field takes integers only.
Validator = validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool)
    ),
)

_ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_DECIMAL = "(a YAML number, or a decimal string of at most 30 digits)"
# anyOf definitions whose branch errors ("does not match '^\s*(\d+...'") would confuse:
# (branches, message, whether numbers get it too rather than their branch's message).
_SUMMARIES = [
    (
        DURATION["anyOf"],
        "is not a duration (e.g. 250ms, 30s, 2m, 1h) or a number of seconds",
        False,
    ),
    (POSITIVE_DECIMAL["anyOf"], f"is not a number from 1e-12 to below 1e15 {_DECIMAL}", True),
    (NONNEGATIVE_DECIMAL["anyOf"], f"is not a number from 0 to below 1e15 {_DECIMAL}", True),
]
_REPLACE = "!replace"  # in an extending file: replace the base's value, do not merge
# A list of known keys this short already shows the right spelling: no "did you mean".
_SHORT_LIST = 3
# YAML 1.2 core schema scalars, to read text ruamel left unread (see _core_scalar).
_CORE_BOOL = {word: word[0] in "tT" for word in ("true", "True", "TRUE", "false", "False", "FALSE")}
_CORE_NULL = ("", "~", "null", "Null", "NULL")
_CORE_INT = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_CORE_FLOAT = re.compile(
    r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)"
)
# Where a number starts in the source (after an optional tag), to quote it as written.
_WRITTEN = re.compile(r"(?:!\S*\s+)?([^\s,\]}#]+)")


@dataclass(frozen=True)
class LoadedScenario:
    path: Path
    data: dict[str, Any]
    root: Any = field(default=None, repr=False, compare=False)  # positions, for error()

    def error(self, path: tuple[str | int, ...], message: str) -> ScenarioError:
        """An error at the node `path` leads to: for problems found after validation."""
        node = _locate(self.root, list(path))
        # A whole block is named by its key; a scalar by its value.
        block = isinstance(node.value, (dict, list)) and node.key_pos is not None
        pos = node.key_pos if block else node.pos
        return ScenarioError(pos.file, pos.line, pos.col, _key_path(list(path)), message)


@dataclass(frozen=True, order=True, slots=True)
class _Pos:
    depth: int  # 0 for the file given, 1 for its base, ...: orders problems across files
    line: int
    col: int
    file: str = field(compare=False)


@dataclass(slots=True)  # an alias bomb builds up to MAX_VALUES of them
class _Node:
    """A YAML value (dict[str, _Node] | list[_Node] | scalar) and where it was written."""

    value: Any
    pos: _Pos
    key_pos: _Pos | None = None  # where the key naming it sits, for mapping entries
    replace: bool = False  # tagged `!replace`: an `extends` merge takes it whole
    placeholder: str | None = None  # the `${VAR}` it was, when it was exactly one


@dataclass(frozen=True)
class _Problem:
    pos: _Pos
    key_path: str
    message: str

    def error(self) -> ScenarioError:
        pos = self.pos
        return ScenarioError(pos.file, pos.line, pos.col, self.key_path, self.message)


def load_scenario(
    path: str | Path,
    registry: Registry,
    env: Mapping[str, str] | None = None,
    summary: dict[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> LoadedScenario:
    """Load, merge, substitute and validate; raise ScenarioError/ArbframeError if bad.

    ``expect:`` paths are checked against ``summary`` (default: the run summary's schema).
    ``overrides`` (dotted path -> value, as `arbframe tune` sets them) replace values before
    validation; a problem one causes is reported at its key in `tuning.params`.
    """
    root = _load_file(str(path), [], None, _Budget())
    for dotted, value in (overrides or {}).items():
        _override(root, dotted, value)
    _substitute(root, os.environ if env is None else env, [])
    _type_placeholders(root, registry)
    data = _plain(root)
    _raise_first(_core_problems(root, data))
    _raise_first(_component_problems(root, data, registry))
    _rebase_paths(root, data, registry, Path(path).parent)
    loaded = LoadedScenario(Path(path), data, root)
    # A misspelt path would only fail the run, as if the strategy had failed.
    check_expect_paths(loaded, summary_schema() if summary is None else summary)
    return loaded


def check_expect_paths(loaded: LoadedScenario, summary_schema: dict[str, Any]) -> None:
    """Refuse an `expect:` path that no summary valid against `summary_schema` can hold.

    Such a path would only fail the run's expectation, as if the strategy had failed.
    """
    problems = []
    for name, checks in loaded.data.get("expect", {}).items():
        message = _expect_path_problem(name, summary_schema)
        if message is not None:
            node = _locate(loaded.root, ["expect", name])
            pos = node.key_pos or node.pos
            problems.append(_Problem(pos, _key_path(["expect", name]), message))
        # A reference's path (`{sum: symbols.*.pnl}`) is checked the same way.
        for op, expected in (checks or {}).items():
            ref = reference(expected)
            message = ref and _expect_path_problem(ref[1], summary_schema)
            if message:
                where = ["expect", name, op, ref[0]]
                node = _locate(loaded.root, where)
                problems.append(_Problem(node.pos, _key_path(where), message))
    _raise_first(problems)


# --- reading and merging ------------------------------------------------------------------


@dataclass
class _Budget:
    """What the rest of an `extends` chain may still use: bounds hostile input."""

    bytes: int = MAX_BYTES
    values: int = MAX_VALUES


def _read(file: str, budget: _Budget) -> str:
    try:
        with open(file, "rb") as handle:  # bounded: /dev/zero or a huge file is refused
            raw = handle.read(budget.bytes + 1)
    except FileNotFoundError:
        raise ArbframeError(f"{file}: no such file") from None
    except IsADirectoryError:
        raise ArbframeError(f"{file}: is a directory, not a scenario file") from None
    except OSError as e:
        raise ArbframeError(f"{file}: cannot read ({e.strerror})") from None
    if len(raw) > budget.bytes:
        raise ArbframeError(
            f"{file}: too large (a scenario and the files it extends may hold "
            f"{MAX_BYTES // 1024} KiB in all)"
        )
    budget.bytes -= len(raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ArbframeError(f"{file}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")  # as text mode reads it


def _load_file(file: str, chain: list[str], ext: _Node | None, budget: _Budget) -> _Node:
    """Parse `file` and, recursively, its bases. `chain` holds the real paths of the
    extending files, `ext` the `extends` value that named this file (None for the top)."""
    try:
        text = _read(file, budget)
    except ArbframeError as e:
        if ext is None:
            raise
        raise _Problem(ext.pos, "extends", str(e)).error() from None
    depth = len(chain)
    root = _parse(text, file, depth, budget)
    if not isinstance(root.value, dict):
        got = "an empty document" if root.value is None else _kind(root.value)
        raise _Problem(root.pos, "", f"a scenario must be a mapping of keys, got {got}").error()
    base_ref = root.value.pop("extends", None)
    if base_ref is None:
        return root
    if not isinstance(base_ref.value, str):
        raise _Problem(base_ref.pos, "extends", "extends must be a path (a string)").error()
    if depth + 1 >= MAX_EXTENDS:
        message = f"more than {MAX_EXTENDS} files in the extends chain"
        raise _Problem(base_ref.pos, "extends", message).error()
    # Relative to the extending file; displayed joined but not made absolute.
    base = str(Path(file).parent / base_ref.value)
    seen = [*chain, os.path.realpath(file)]
    if os.path.realpath(base) in seen:
        names = [Path(f).name for f in seen[seen.index(os.path.realpath(base)) :]]
        cycle = " -> ".join([*names, Path(base).name])
        raise _Problem(base_ref.pos, "extends", f"extends cycle: {cycle}").error()
    return _merge(_load_file(base, seen, base_ref, budget), root)


def _parse(text: str, file: str, depth: int, budget: _Budget) -> _Node:
    deep = deep_nesting_at(text)
    if deep is not None:  # before ruamel, which recurses (and crawls) on deep nesting
        raise ScenarioError(file, *deep, "", f"nested more than {MAX_DEPTH} levels deep")
    try:
        with warnings.catch_warnings():  # e.g. a redefined anchor: valid YAML, no stray output
            warnings.simplefilter("ignore", YAMLWarning)
            warnings.simplefilter("ignore", YAMLFutureWarning)
            doc = YAML(typ="rt").load(text)
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        message = e.problem or e.context or "invalid YAML"
        if e.context and message.startswith("but "):  # "but found another document"
            message = f"{e.context}, {message}"
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise ScenarioError(file, line, col, "", " ".join(str(message).split())) from None
    except ReaderError as e:  # control characters and the like: only a char offset
        line = text.count("\n", 0, e.position) + 1
        col = e.position - text.rfind("\n", 0, e.position)
        char = e.character if isinstance(e.character, int) else ord(e.character)
        raise ScenarioError(
            file, line, col, "", f"unacceptable character #x{char:04x}: {e.reason}"
        ) from None
    except (YAMLError, ValueError) as e:  # ValueError: e.g. `2024-13-45`, `!!int x`
        raise ScenarioError(file, None, None, "", f"invalid YAML: {e}") from None
    except RecursionError:  # nesting the estimate missed: still one line, no traceback
        raise ScenarioError(file, None, None, "", "nested too deeply to parse") from None
    except TypeError:  # `? {a: {b: 1}}`: ruamel hashes a complex key, and cannot
        message = "keys must be strings, got a mapping or a list"
        raise ScenarioError(file, None, None, "", message) from None
    builder = _Builder(file, depth, text.split("\n"), budget)
    return builder.node(doc, _Pos(depth, 1, 1, file), None, [])


@dataclass
class _Builder:
    """Turns ruamel's values into plain values inside _Nodes, keeping positions.

    An alias shares its anchor's value, and building expands it: values are counted
    against the budget, so an alias bomb stops at the alias that crosses the limit.
    """

    file: str
    depth: int  # of the file in the `extends` chain
    lines: list[str]
    budget: _Budget
    built: set[int] = field(default_factory=set)  # ids of mappings and lists built once
    alias: tuple[Any, _Pos, list[str | int]] | None = None  # the outermost being expanded

    def node(self, obj: Any, pos: _Pos, key_pos: _Pos | None, path: list[str | int]) -> _Node:
        self.budget.values -= 1
        if self.budget.values < 0:
            raise self._too_many(pos, path)
        if len(path) > MAX_DEPTH:  # exact; deep_nesting_at only estimated
            raise _problem(pos, path, f"nested more than {MAX_DEPTH} levels deep")
        tag = getattr(getattr(obj, "tag", None), "value", None)
        if tag is not None and tag != _REPLACE:
            raise _problem(pos, path, f"unsupported YAML value (tag {tag})")
        if not isinstance(obj, (dict, list)):
            return _Node(self._scalar(obj, pos, path), pos, key_pos, tag is not None)
        outer = self.alias
        if id(obj) in self.built and outer is None:  # a second use: an alias
            self.alias = (getattr(obj.anchor, "value", None), pos, path)
        self.built.add(id(obj))
        if isinstance(obj, dict):
            value: Any = self._mapping(obj, pos, path)
        else:
            value = [
                self.node(v, self._at(obj.lc, i, 0, pos), None, [*path, i])
                for i, v in enumerate(obj)
            ]
        self.alias = outer
        return _Node(value, pos, key_pos, tag is not None)

    def _at(self, lc: Any, key: Any, offset: int, default: _Pos) -> _Pos:
        # Missing for `<<` merged keys, and for the items of a tagged list.
        marks = getattr(lc, "data", None)
        mark = marks.get(key) if isinstance(marks, dict) else None
        if not mark:
            return default
        return _Pos(self.depth, mark[offset] + 1, mark[offset + 1] + 1, self.file)

    def _mapping(self, obj: Any, pos: _Pos, path: list[str | int]) -> dict[str, _Node]:
        out: dict[str, _Node] = {}
        for key, value in obj.items():
            key_pos = self._at(obj.lc, key, 0, pos)
            if not isinstance(key, str):
                raise _Problem(
                    key_pos, _key_path(path), f"keys must be strings, got {_kind(key)} {key!r}"
                ).error()
            value_pos = self._at(obj.lc, key, 2, pos)
            if value is None and value_pos.line != key_pos.line:
                value_pos = key_pos  # `key:` with nothing after: ruamel marks the next line
            out[str(key)] = self.node(value, value_pos, key_pos, [*path, str(key)])
        return out

    def _scalar(self, obj: Any, pos: _Pos, path: list[str | int]) -> Any:
        if isinstance(obj, TaggedScalar):  # `!replace 3`: harmless, the value as if untagged
            obj = _core_scalar(obj.value) if obj.style is None else str(obj.value)
        if obj is None or isinstance(obj, bool):
            return obj
        if isinstance(obj, str):
            return str(obj)
        if isinstance(obj, ScalarBoolean):  # anchored booleans are int subclasses
            return bool(obj)
        if isinstance(obj, (int, float)):
            value = int(obj) if isinstance(obj, int) else float(obj)
            problem = _number_problem(value, self._written(pos, value))
            if problem is not None:
                raise _problem(pos, path, problem)
            return value
        if isinstance(obj, (datetime.date, datetime.datetime)):
            return obj.isoformat()  # YAML timestamps: keep JSON-able, as written-ish
        raise _problem(pos, path, f"unsupported YAML value ({type(obj).__name__})")

    def _written(self, pos: _Pos, value: float | int) -> str:
        """The number as written in the file, for messages; else as YAML would write it."""
        line = self.lines[pos.line - 1] if 0 < pos.line <= len(self.lines) else ""
        match = _WRITTEN.match(line, pos.col - 1)
        if match and (_CORE_FLOAT.fullmatch(match[1]) or _CORE_INT.fullmatch(match[1])):
            return _shorter(match[1])
        if isinstance(value, float) and math.isnan(value):
            return ".nan"
        if isinstance(value, float) and math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return _shorter(str(value))

    def _too_many(self, pos: _Pos, path: list[str | int]) -> ScenarioError:
        limit = f"more than {MAX_VALUES} values in all, with the files it extends"
        if self.alias is None:
            return _problem(pos, path, f"too many values ({limit})")
        anchor, alias_pos, alias_path = self.alias
        name = f"alias *{anchor}" if anchor else "an alias"
        return _problem(alias_pos, alias_path, f"{name} expands to {limit}")


def _problem(pos: _Pos, path: list[str | int], message: str) -> ScenarioError:
    return _Problem(pos, _key_path(path), message).error()


def _number_problem(value: float | int, written: str) -> str | None:
    """Numbers every consumer can take: finite floats and ints that fit a float."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{written} is not a finite number"  # NaN passes `minimum`: it compares False
    if isinstance(value, int) and abs(value).bit_length() > 1024:
        return f"{written} is too large a number"  # float() would overflow
    return None


def _core_scalar(text: str) -> Any:
    """`text` as a plain YAML 1.2 core-schema scalar: null, bool, int, float or str."""
    if text in _CORE_NULL:
        return None
    if text in _CORE_BOOL:
        return _CORE_BOOL[text]
    try:
        if _CORE_INT.fullmatch(text):
            base = {"0o": 8, "0x": 16}.get(text[:2], 10)
            return int(text[2:] if base != 10 else text, base)
        if _CORE_FLOAT.fullmatch(text):
            lower = text.lower()
            return math.nan if "nan" in lower else float(lower.replace(".inf", "inf"))
    except ValueError:  # e.g. more digits than int() converts
        pass
    return text


def _merge(base: _Node, over: _Node) -> _Node:
    """Mappings merge recursively; anything else in `over`, anything tagged `!replace`, and
    a component block naming another `type:` (whose keys mean something else) replaces
    what `base` had; a key set to null in `over` removes the base's."""
    if over.replace or not (isinstance(base.value, dict) and isinstance(over.value, dict)):
        return over
    types = [node.value.get("type") for node in (base, over)]
    if types[1] is not None and types[0] is not None and types[0].value != types[1].value:
        return over
    merged = dict(base.value)
    for key, node in over.value.items():
        if key not in base.value:
            merged[key] = node
        elif node.value is None and not node.replace:
            del merged[key]
        else:
            merged[key] = _merge(base.value[key], node)
    return _Node(merged, over.pos, over.key_pos)


def _override(root: _Node, dotted: str, value: Any) -> None:
    """Set the existing value at `dotted` (list items by index) to `value`, as if written at
    its `tuning.params` key (else at the top of the file)."""
    try:
        at = root.value["tuning"].value["params"].value[dotted].key_pos or root.pos
    except (KeyError, TypeError, AttributeError):
        at = root.pos
    node, parts = root, dotted.split(".")
    for i, part in enumerate(parts):
        key: str | int = int(part) if isinstance(node.value, list) and part.isdigit() else part
        try:
            child = node.value[key]
        except (KeyError, IndexError, TypeError):
            where = ".".join(parts[: i + 1])
            raise ScenarioError(at.file, at.line, at.col, f"tuning.params[{dotted!r}]",
                                f"{where} is not in the scenario") from None  # fmt: skip
        if i == len(parts) - 1:
            node.value[key] = _Node(value, at, child.key_pos)
        node = child


def summary_path_problem(name: str) -> str | None:
    """Why the dotted `name` cannot be in a run summary, or None."""
    return _expect_path_problem(name, summary_schema())


# --- environment and plain data -----------------------------------------------------------


def _substitute(node: _Node, env: Mapping[str, str], path: list[str | int]) -> None:
    if isinstance(node.value, dict):
        for key, child in node.value.items():
            _substitute(child, env, [*path, key])
    elif isinstance(node.value, list):
        for i, child in enumerate(node.value):
            _substitute(child, env, [*path, i])
    elif isinstance(node.value, str):

        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if env.get(name):
                return env[name]
            if default is not None:  # like the shell's ${VAR:-default}: unset or empty
                return default
            if name in env:
                return ""
            raise _Problem(
                node.pos, _key_path(path), f"environment variable {name} is not set"
            ).error()

        if _ENV_VAR.fullmatch(node.value):  # may be typed by the schema: remember it
            node.placeholder = node.value
        node.value = _ENV_VAR.sub(replace, node.value)


def _type_placeholders(root: _Node, registry: Registry) -> None:
    """Give values that were exactly one `${VAR}` the type the schema expects there.

    The core schema covers the top-level keys; each component block is walked with the
    schema of the plugin type its `type:` names (an unknown type is reported later).
    """
    core = core_schema()
    top = schema_walk.flatten([core], core)
    for key, node in root.value.items():
        if key not in SLOTS:
            _type_walk(node, schema_walk.child(top, core, key), core, [key])
    for kind, path, block in _component_nodes(root):
        type_name = getattr(block.value.get("type"), "value", None)
        info = registry.types(kind).get(type_name) if isinstance(type_name, str) else None
        if info is not None:
            schema = component_schema(info.schema, info.type_name)
            _type_walk(block, schema_walk.flatten([schema], schema), schema, path)


def _component_nodes(root: _Node) -> Iterable[tuple[str, list[str | int], _Node]]:
    """Every component block that is a mapping, before validation: (kind, path, node)."""
    for slot, kind in SLOTS.items():
        node = root.value.get(slot)
        value = node.value if node else None
        if slot in SINGLE_SLOTS:
            found: list[tuple[str | int, _Node]] = [(slot, node)] if node else []
        elif slot == "venues" and isinstance(value, dict):
            found = list(value.items())
        else:
            found = list(enumerate(value)) if isinstance(value, list) else []
        for key, block in found:
            if isinstance(block.value, dict):
                yield kind, [slot] if slot in SINGLE_SLOTS else [slot, key], block


def _type_walk(
    node: _Node, schemas: list[dict[str, Any]], root: dict[str, Any], path: list[str | int]
) -> None:
    if isinstance(node.value, dict):
        for key, child in node.value.items():
            _type_walk(child, schema_walk.child(schemas, root, key), root, [*path, key])
    elif isinstance(node.value, list):
        for i, child in enumerate(node.value):
            _type_walk(child, schema_walk.child(schemas, root, i), root, [*path, i])
    elif any(schema.get("x-secret") for schema in schemas):
        node.value = _secret(node, path)
    elif node.placeholder is not None and isinstance(node.value, str):
        types = schema_walk.declared_types(schemas)
        if "string" not in types:
            node.value = _typed(node, types, path)


def _secret(node: _Node, path: list[str | int]) -> Any:
    """A key the schema marks ``x-secret``: only ``${VAR}``, kept as a Secret that reads as
    the reference (a key written in a file ends up in version control, logs and backups)."""
    match = _ENV_VAR.fullmatch(node.placeholder or "")
    if match is None or match.group(2) or not isinstance(node.value, str):  # no literal default
        raise _Problem(
            node.pos,
            _key_path(path),
            "a secret comes only from the environment: write it as ${VARIABLE_NAME}, not its value",
        ).error()
    return Secret(node.placeholder, node.value)


def _typed(node: _Node, types: set[str], path: list[str | int]) -> Any:
    """The substituted text as the YAML number or boolean it reads as, where the schema
    takes that; else the text, for validation to report at the value."""
    value = _core_scalar(node.value)
    fits = (
        (isinstance(value, bool) and "boolean" in types)
        or (type(value) is int and bool(types & {"integer", "number"}))
        or (isinstance(value, float) and "number" in types)
    )
    if not fits:
        return node.value
    problem = _number_problem(value, f"{_shorter(node.value)} (from {node.placeholder})")
    if problem is not None:
        raise _Problem(node.pos, _key_path(path), problem).error()
    return value


def _plain(node: _Node) -> Any:
    if isinstance(node.value, dict):
        return {key: _plain(child) for key, child in node.value.items()}
    if isinstance(node.value, list):
        return [_plain(child) for child in node.value]
    return node.value


# --- validation ---------------------------------------------------------------------------


def _raise_first(problems: Iterable[_Problem]) -> None:
    # Stable: among problems at one position the most relevant (listed first) wins.
    first = min(problems, key=lambda p: p.pos, default=None)
    if first is not None:
        raise first.error()


def _core_problems(root: _Node, data: dict[str, Any]) -> list[_Problem]:
    errors = Validator(core_schema()).iter_errors(data)
    return [p for e in _by_relevance(errors) for p in _explain(e, root, [])]


def _blocks(data: dict[str, Any]) -> Iterable[tuple[str, list[str | int], dict[str, Any]]]:
    """Every component block: (kind, its key path, the block)."""
    for slot, kind in SLOTS.items():
        if slot not in data:
            continue
        if slot == "venues":
            yield from ((kind, [slot, name], block) for name, block in data[slot].items())
        elif slot in SINGLE_SLOTS:
            yield kind, [slot], data[slot]
        else:
            yield from ((kind, [slot, i], block) for i, block in enumerate(data[slot]))


def _component_problems(root: _Node, data: dict[str, Any], registry: Registry) -> list[_Problem]:
    problems: list[_Problem] = []
    for kind, prefix, block in _blocks(data):
        types = registry.types(kind)
        info = types.get(block["type"])
        if info is None:
            known = ", ".join(sorted(types)) or "none registered"
            where = [*prefix, "type"]
            problems.append(
                _Problem(
                    _locate(root, where).pos,
                    _key_path(where),
                    f"unknown {kind} type {block['type']!r} (known: {known})"
                    + registry.explain_unknown(kind, block["type"]),
                )
            )
            continue
        # (the registry refused any type whose config_schema is not a valid schema)
        schema = component_schema(info.schema, info.type_name, kind)
        errors = Validator(schema).iter_errors(block)
        problems += [p for e in _by_relevance(errors) for p in _explain(e, root, prefix)]
    return problems


def _rebase_paths(root: _Node, data: dict[str, Any], registry: Registry, top: Path) -> None:
    """Make relative paths (schema `"format": "path"`) relative to the scenario run.

    A path is written relative to the file that holds it; an `extends:` base may sit in
    another folder, so its paths are rewritten relative to the scenario file being run,
    which is what components resolve them against.
    """

    def walk(schema: dict[str, Any], node: _Node, container: Any, key: Any) -> None:
        value = container[key]
        if schema.get("format") == "path" and isinstance(value, str):
            declared = Path(node.pos.file).parent
            if not Path(value).is_absolute() and declared != top:
                container[key] = os.path.relpath(declared / value, top)
        elif isinstance(value, dict):
            props, extra = schema.get("properties", {}), schema.get("additionalProperties")
            for k in value:
                sub = props.get(k, extra)
                if isinstance(sub, dict):
                    walk(sub, node.value[k], value, k)
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            for i in range(len(value)):
                walk(schema["items"], node.value[i], value, i)

    for kind, prefix, block in _blocks(data):
        node, container = root, data
        for part in prefix[:-1]:
            node, container = node.value[part], container[part]
        walk(
            registry.get(kind, block["type"]).schema, node.value[prefix[-1]], container, prefix[-1]
        )


def _by_relevance(errors: Iterable[ValidationError]) -> list[ValidationError]:
    # best_match's idea, minus its path comparison (which can compare str with int).
    return sorted(errors, key=lambda e: e.validator in ("anyOf", "oneOf"))


def _explain(error: ValidationError, root: _Node, prefix: list[str | int]) -> list[_Problem]:
    """One precise, one-line problem per thing wrong that `error` stands for."""
    path = [*prefix, *error.absolute_path]
    node = _locate(root, path)
    here = _key_path(path)
    instance = error.instance
    schema = error.schema

    def at_key(key: str) -> _Problem:
        pos = _locate(root, [*path, key]).key_pos or node.pos
        return _Problem(pos, _key_path([*path, key]), _unknown_key(key, schema, instance))

    if error.validator == "additionalProperties" and error.validator_value is False:
        return [at_key(k) for k in _unknown_keys(schema, instance)]
    if error.validator == "required":
        # A misspelt required key is reported where it is, not as missing at the block.
        typos = {_required_typo(k, schema, instance): k for k in _unknown_keys(schema, instance)}
        return [
            at_key(typos[k])
            if k in typos
            else _Problem(node.pos, here, f"missing required key {k!r}")
            for k in error.validator_value
            if k not in instance
        ]
    if (
        "propertyNames" in error.relative_schema_path
        and isinstance(node.value, dict)
        and instance in node.value
    ):
        key_node = node.value[instance]
        return [
            _Problem(
                key_node.key_pos or node.pos,
                _key_path([*path, instance]),
                f"key {_one_line(error.message)}",
            )
        ]
    alternatives = _required_alternatives(error)
    if alternatives:  # point at the alternative written in the given file, if any
        nodes = [_locate(root, [*path, k]) for keys in alternatives for k in keys if k in instance]
        at = min((n.key_pos or n.pos for n in nodes), default=node.pos)
        return [_Problem(at, here, _exactly_one(alternatives, instance))]
    if error.validator in ("anyOf", "oneOf") and error.context:
        return _explain_branches(error, root, prefix, node, here)
    return [_Problem(node.pos, here, _one_line(error.message))]


def _explain_branches(
    error: ValidationError, root: _Node, prefix: list[str | int], node: _Node, here: str
) -> list[_Problem]:
    """anyOf/oneOf: follow the one branch the value's type fits, else summarise."""
    branches: dict[int, list[ValidationError]] = {}
    for sub in error.context or []:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    fitting = [
        errs
        for errs in branches.values()
        if not any(e.validator == "type" and not e.relative_path for e in errs)
    ]
    instance = error.instance
    summary, numbers_too = next(
        ((text, numbers) for b, text, numbers in _SUMMARIES if b == error.validator_value),
        (None, False),
    )
    is_number = isinstance(instance, (int, float)) and not isinstance(instance, bool)
    if summary is not None and (numbers_too or not (is_number and len(fitting) == 1)):
        return [_Problem(node.pos, here, f"{_short(instance)} {summary}")]
    if len(fitting) == 1:
        return [p for e in _by_relevance(fitting[0]) for p in _explain(e, root, prefix)]
    if not fitting:
        types = [
            t
            for e in error.context or []
            if e.validator == "type"
            for t in (
                [e.validator_value] if isinstance(e.validator_value, str) else e.validator_value
            )
        ]
        names = ", ".join(repr(t) for t in dict.fromkeys(types))
        return [_Problem(node.pos, here, f"{_short(instance)} is not of type {names}")]
    if isinstance(instance, dict):  # the branch naming most of the keys written, then fewest errors
        chosen = max(fitting, key=lambda errs: (_keys_known(error, errs, instance), -len(errs)))
        return [p for e in _by_relevance(chosen) for p in _explain(e, root, prefix)]
    return _explain(best_match(error.context or []), root, prefix)


def _keys_known(error: ValidationError, errs: list[ValidationError], instance: dict) -> int:
    """How many of the mapping's keys a branch of `error` (an anyOf/oneOf) declares."""
    branch = error.validator_value[errs[0].relative_schema_path[0]]
    props = next((e.schema for e in errs if not e.relative_path and isinstance(e.schema, dict)), {})
    known = {*branch.get("properties", {}), *props.get("properties", {})}
    return sum(k in known for k in instance)


def _unknown_keys(schema: dict[str, Any], instance: dict[str, Any]) -> list[str]:
    known = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    return [k for k in instance if k not in known and not any(re.search(p, k) for p in patterns)]


def _required_typo(key: str, schema: dict[str, Any], instance: dict[str, Any]) -> str | None:
    """The missing required key that the unknown `key` looks like a misspelling of."""
    missing = [k for k in schema.get("required", []) if k not in instance]
    return next(iter(difflib.get_close_matches(key, missing, n=1)), None)


def _unknown_key(key: str, schema: dict[str, Any], instance: dict[str, Any]) -> str:
    required = _required_typo(key, schema, instance)
    if required is not None:
        return f"unknown key {key!r} (did you mean {required!r}? it is required)"
    known = sorted(schema.get("properties", {}))
    close = difflib.get_close_matches(key, known, n=1)
    if close and len(known) > _SHORT_LIST:
        return f"unknown key {key!r} (did you mean {close[0]!r}?)"
    return f"unknown key {key!r} (expected one of: {', '.join(known) or 'none'})"


def _expect_path_problem(name: str, summary_schema: dict[str, Any]) -> str | None:
    """Why the dotted `name` cannot be in a summary valid against the schema, or None."""
    parts = name.split(".")
    here = schema_walk.flatten([summary_schema], summary_schema)
    for i, part in enumerate(parts):
        below = schema_walk.child(here, summary_schema, part)
        if part == "*":  # a reference's wildcard: any key, named or not
            below += [
                s
                for key in schema_walk.names(here)
                for s in schema_walk.child(here, summary_schema, key)
            ]
        if not below:
            known = schema_walk.names(here)
            close = difflib.get_close_matches(part, known, n=1)
            if close:
                guess = ".".join([*parts[:i], close[0], *parts[i + 1 :]])
                hint = f"did you mean {guess!r}?"
            else:
                where = repr(".".join(parts[:i])) if i else "the summary"
                hint = f"{where} has: {', '.join(known)}" if known else f"{where} has no keys"
            return f"no such value in the run summary ({hint})"
        here = below
    return None


def _required_alternatives(error: ValidationError) -> list[list[str]]:
    """For a oneOf whose branches only require keys (strategy / strategies): those keys."""
    if error.validator != "oneOf":
        return []
    branches = error.validator_value
    if all(isinstance(b, dict) and list(b) == ["required"] for b in branches):
        return [b["required"] for b in branches]
    return []


def _exactly_one(alternatives: list[list[str]], instance: Any) -> str:
    """The message for a oneOf of `required` alternatives (e.g. strategy / strategies)."""
    keys = [keys[0] if len(keys) == 1 else " + ".join(keys) for keys in alternatives]
    present = [k for k in keys if isinstance(instance, dict) and k in instance]
    names = " or ".join(repr(k) for k in keys)
    if not present:
        return f"needs {names}"
    return (
        f"has {' and '.join(repr(k) for k in present)}: keep one (in an extending file, "
        f"`{present[0]}: null` removes an inherited one)"
    )


# --- paths and text -----------------------------------------------------------------------


def _locate(root: _Node, path: list[str | int]) -> _Node:
    """The deepest node along `path` (a jsonschema error path into the merged data)."""
    node = root
    for part in path:
        try:
            node = node.value[part]
        except (KeyError, IndexError, TypeError):
            break
    return node


def _key_path(path: list[str | int]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:  # keys like `portfolio.winrate` would read as two levels
            out += f"[{part!r}]"
    return out


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _shorter(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def _one_line(message: str) -> str:
    return " ".join(message.splitlines())
