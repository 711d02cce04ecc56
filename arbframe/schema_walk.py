"""Walking a JSON Schema alongside data: which subschemas apply to a value below a key.

Used by the loader to type `${VAR}` values and to check `expect:` paths. A step down
follows `properties`, then `patternProperties`, then `additionalProperties` (a wildcard
for keys such as symbol names), and `prefixItems`/`items` for list indices. A schema with
none that applies has no way down: for `expect:` paths that means the value cannot exist,
even where JSON Schema itself would allow anything. Combinators (`allOf`, `anyOf`, `oneOf`,
`then`, `else`) and local `$ref`s (``#/...``) are followed, so a step yields every
subschema that may apply, as a flat list.
"""

from __future__ import annotations

import re
from typing import Any

Schema = dict[str, Any]
_COMBINATORS = ("allOf", "anyOf", "oneOf")


def flatten(schemas: list[Any], root: Schema) -> list[Schema]:
    """`schemas` and every subschema reachable through combinators and `$ref`s."""
    out: list[Schema] = []
    todo = list(reversed(schemas))
    while todo:  # iterative, and each schema once: `$ref` loops end
        schema = todo.pop()
        if schema is True:
            schema = {}
        if not isinstance(schema, dict) or any(schema is s for s in out):
            continue
        out.append(schema)
        subs = [sub for key in _COMBINATORS for sub in schema.get(key, [])]
        subs += [schema[key] for key in ("then", "else") if key in schema]
        if isinstance(schema.get("$ref"), str):
            subs.append(_resolve(schema["$ref"], root))
        todo.extend(reversed(subs))
    return out


def child(schemas: list[Schema], root: Schema, key: str | int) -> list[Schema]:
    """The flattened subschemas for the value at `key` below a value `schemas` describe."""
    found: list[Any] = []
    for schema in schemas:
        if isinstance(key, int):
            prefix = schema.get("prefixItems", [])
            found.append(prefix[key] if key < len(prefix) else schema.get("items"))
            continue
        props = schema.get("properties", {})
        named = [props[key]] if isinstance(props, dict) and key in props else []
        patterns = schema.get("patternProperties", {})
        if isinstance(patterns, dict):
            named += [sub for p, sub in patterns.items() if _search(p, key)]
        found += named or [schema.get("additionalProperties")]
    return flatten([s for s in found if s is not None and s is not False], root)


def names(schemas: list[Schema]) -> list[str]:
    """The keys named in `properties` at this level, sorted."""
    props = [s.get("properties") for s in schemas]
    return sorted({key for p in props if isinstance(p, dict) for key in p})


def declared_types(schemas: list[Schema]) -> set[str]:
    """JSON types the schemas name through `type`, `const` and `enum` (empty: unknown)."""
    types: set[str] = set()
    for schema in schemas:
        declared = schema.get("type", [])
        types.update([declared] if isinstance(declared, str) else declared)
        values = [schema["const"]] if "const" in schema else schema.get("enum", [])
        types.update(_json_type(v) for v in values)
    return types


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return {str: "string", dict: "object", list: "array"}.get(type(value), "null")


def _resolve(ref: str, root: Schema) -> Any:
    """A local reference (``#/$defs/x``); anything else resolves to no schema."""
    if not ref.startswith("#"):
        return None
    node: Any = root
    for part in filter(None, ref[1:].split("/")):
        part = part.replace("~1", "/").replace("~0", "~")
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _search(pattern: str, key: str) -> bool:
    try:
        return re.search(pattern, key) is not None
    except re.error:  # a plugin's bad pattern: jsonschema reports it, not this walk
        return False
