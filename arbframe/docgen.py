"""The plugin reference, ``docs/reference.md``, generated from the code so it cannot drift.

    python -m arbframe.docgen                  # (re)write docs/reference.md
    python -m arbframe.docgen --check          # exit 1 when the file is stale or missing
    python -m arbframe.docgen --output PATH    # another file (with or without --check)

Everything is read from the source with ``ast`` and ``tokenize``: classes and fields with
their types as written, attribute docstrings (the string literal right after a field),
``#:`` comments of enum members, signatures and docstrings of methods and hookspecs; the
kernel's own tables (``TRANSITIONS``, ``KINDS``, ``CONTEXTS``) are rendered from the dicts.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import io
import re
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "reference.md" if (ROOT / "pyproject.toml").exists() else None
COMMAND = "python -m arbframe.docgen"
SECTIONS = (
    "Units and conventions",
    "Model classes",
    "The order state machine",
    "Contexts",
    "Base classes",
    "What strategies use: execution, market data, clock",
    "Hooks",
)


def md(doc: str | None) -> str:
    """A docstring as markdown: dedented, reST roles and ``literals`` as code spans."""
    doc = inspect.cleandoc(doc or "")
    doc = re.sub(r":\w+:`(~?)([^`]+)`", lambda m: f"`{m[2].split('.')[-1] if m[1] else m[2]}`", doc)
    return re.sub(r"``(.+?)``", r"`\1`", doc, flags=re.S)


def code(text: str) -> str:
    return f"`{text}`" if text else ""


def slug(title: str) -> str:
    """The anchor GitHub gives a heading (after its "N." prefix)."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    def cell(text: str) -> str:
        return " ".join(text.split()).replace("|", "\\|")

    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(map(cell, row)) + " |" for row in rows] + [""]


def decorators(node: ast.FunctionDef | ast.ClassDef) -> list[str]:
    return [ast.unparse(d) for d in node.decorator_list]


def doc_after(body: list[ast.stmt], i: int) -> str:
    """The attribute docstring of ``body[i]``: a string literal as the next statement."""
    nxt = body[i + 1].value if i + 1 < len(body) and isinstance(body[i + 1], ast.Expr) else None
    return md(nxt.value) if isinstance(nxt, ast.Constant) and isinstance(nxt.value, str) else ""


def required(fn: ast.FunctionDef) -> bool:
    body = fn.body[1:] if ast.get_docstring(fn) is not None else fn.body
    return len(body) == 1 and "NotImplementedError" in ast.unparse(body[0])


class Module:
    """One module's source, parsed: classes, comments by line, text as written."""

    def __init__(self, name: str) -> None:
        self.mod = importlib.import_module(name)
        source = inspect.getsource(self.mod)
        self.lines = source.splitlines()
        self.encoded = [line.encode() for line in source.splitlines(keepends=True)]
        self.tree = ast.parse(source)
        tokens = tokenize.generate_tokens(io.StringIO(source).readline)
        self.comments = {t.start[0]: t.string for t in tokens if t.type == tokenize.COMMENT}
        self.classes = {n.name: n for n in self.tree.body if isinstance(n, ast.ClassDef)}
        self.doc = md(ast.get_docstring(self.tree))

    def src(self, node: ast.AST | None) -> str:
        """A node's source text as written, on one line (offsets are in UTF-8 bytes)."""
        if node is None:
            return ""
        first, last = node.lineno - 1, node.end_lineno
        text = b"".join(self.encoded[first:last])[node.col_offset :]
        end = len(text) - len(self.encoded[last - 1]) + node.end_col_offset
        return " ".join(text[:end].decode().split())

    def comment_above(self, node: ast.stmt) -> str:
        """The comment block above ``node`` (blank lines and ``# ----`` rules skipped)."""
        line = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1
        while line > 0 and not self.lines[line - 1].strip():
            line -= 1
        block: list[str] = []
        while line > 0 and self.lines[line - 1].lstrip().startswith("#"):
            block.insert(0, self.lines[line - 1].strip().lstrip("#").strip())
            line -= 1
        return md(" ".join(b for b in block if b.strip("- ")))

    def assigned(self, name: str) -> ast.expr:
        """The value assigned to a module-level ``name``."""
        for st in self.tree.body:
            if isinstance(st, ast.Assign | ast.AnnAssign):
                target = st.target if isinstance(st, ast.AnnAssign) else st.targets[0]
                if self.src(target) == name:
                    return st.value
        raise LookupError(name)

    def fields(self, body: list[ast.stmt], params: dict[str, ast.expr | None]) -> list[tuple]:
        """(name, type as written [= default], doc) of the annotated fields of a class body;
        of an ``__init__`` (with its ``params``): public ``self.x``, typed by the annotation,
        else the parameter's, else the literal's."""
        rows = []
        for i, st in enumerate(body):
            target = st.target if isinstance(st, ast.AnnAssign) else getattr(st, "targets", [0])[0]
            if params and isinstance(target, ast.Attribute) and self.src(target.value) == "self":
                name, value = target.attr, st.value
                kind = self.src(getattr(st, "annotation", None) or params.get(self.src(value)))
                if not kind and isinstance(value, ast.Constant):
                    kind = type(value.value).__name__
            elif not params and isinstance(st, ast.AnnAssign) and isinstance(target, ast.Name):
                name, value = target.id, st.value
                kind = re.sub(r"^ClassVar\[(.*)\]$", r"\1", self.src(st.annotation))
                if isinstance(value, ast.Call) and self.src(value.func) == "field":
                    options = {k.arg: self.src(k.value) for k in value.keywords}
                    factory = options.get("default_factory")
                    made = {"dict": "{}", "list": "[]"}.get(factory, f"{factory}()")
                    kind += " = " + (made if factory else options.get("default", "?"))
                elif value is not None:
                    kind += " = " + self.src(value)
            else:
                continue
            if not name.startswith("_"):
                rows.append((code(name), code(kind), doc_after(body, i)))
        return rows

    def signature(self, fn: ast.FunctionDef, method: bool = True) -> str:
        def param(arg: ast.arg, value: ast.expr | None = None) -> str:
            text = arg.arg + (f": {self.src(arg.annotation)}" if arg.annotation else "")
            return text + ((" = " if arg.annotation else "=") + self.src(value) if value else "")

        a = fn.args
        positional = a.posonlyargs + a.args
        defaults = [None] * (len(positional) - len(a.defaults)) + a.defaults
        parts = [param(p, d) for p, d in zip(positional, defaults, strict=True)]
        parts[len(a.posonlyargs) : len(a.posonlyargs)] = ["/"] if a.posonlyargs else []
        if a.vararg or a.kwonlyargs:
            parts.append("*" + (param(a.vararg) if a.vararg else ""))
        parts += [param(p, d) for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True)]
        parts += ["**" + param(a.kwarg)] if a.kwarg else []
        if method and "staticmethod" not in decorators(fn):
            parts = parts[1:]
        returns = f" -> {self.src(fn.returns)}" if fn.returns else ""
        return f"{fn.name}({', '.join(parts)}){returns}"

    def class_block(self, name: str, intro: str = "", flag: bool = False) -> list[str]:
        """A class: docstring, members or fields, then its public methods and properties
        (one table for the data classes of model/orders, a heading each elsewhere)."""
        cls = self.classes[name]
        bases = [self.src(b) for b in cls.bases]
        what = "frozen dataclass" if "dataclass(frozen=True)" in decorators(cls) else "class"
        what = "dataclass" if "dataclass" in decorators(cls) else what
        if "Enum" in bases or "Protocol" in bases:
            what, bases = f"enum ({', '.join(bases)})" if "Enum" in bases else "protocol", []
            flag = False  # a protocol's methods are all it is: neither required nor optional
        head = f"*{what}*" + "".join(f", subclass of {code(b)}" for b in bases)
        out = [f"### `{name}`", "", head + (f". {intro}" if intro else ""), ""]
        out += [md(ast.get_docstring(cls)), ""] if ast.get_docstring(cls) else []
        if what.startswith("enum"):
            rows = []
            for st in cls.body:
                if isinstance(st, ast.Assign):  # the member's "#:" comment is its doc
                    comment = self.comments.get(st.lineno, "")
                    doc = md(comment[2:]) if comment.startswith("#:") else ""
                    rows.append((code(self.src(st.targets[0])), code(self.src(st.value)), doc))
            out += table(("member", "value", "meaning"), rows)
        if rows := self.fields(cls.body, {}):
            column = "class attribute" if "ClassVar" in self.src(cls) else "field"
            out += table((column, "type", "meaning"), rows)
        for init in (f for f in cls.body if getattr(f, "name", "") == "__init__"):
            params = {a.arg: a.annotation for a in init.args.args + init.args.kwonlyargs}
            if rows := self.fields(init.body, params):
                out += table(("attribute", "type", "meaning"), rows)
        functions = [f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name[0] != "_"]
        if self.mod.__name__ in ("arbframe.model", "arbframe.orders") and functions:
            rows = []
            for fn in functions:
                kind = next((d for d in decorators(fn) if d in ("property", "classmethod")), "")
                call = fn.name if kind == "property" else self.signature(fn).split(" -> ")[0]
                first = code(call) + (f" ({kind})" if kind else "")
                rows.append((first, code(self.src(fn.returns)), md(ast.get_docstring(fn))))
            return out + table(("property / method", "returns", "meaning"), rows)
        for fn in functions:
            if "property" in decorators(fn):
                out.append(f"#### `{fn.name}: {self.src(fn.returns)}` (property)")
            else:
                extra = f" ({'required' if required(fn) else 'optional'})" if flag else ""
                out.append(f"#### `{self.signature(fn)}`{extra}")
            out += ["", md(ast.get_docstring(fn)), ""] if ast.get_docstring(fn) else [""]
        return out


def model_classes(model: Module) -> list[str]:
    aliases = [
        (code(st.targets[0].id), code(model.src(st.value)), model.comment_above(st))
        for st in model.tree.body
        if isinstance(st, ast.Assign) and isinstance(st.value, ast.BinOp | ast.Subscript)
    ]
    out = ["In `arbframe.model`. Types as written in the class (`= value`: its default).", ""]
    out += table(("type alias", "definition", "meaning"), aliases)
    end = 0
    for st in model.tree.body:  # the classes, under the module's "# ---- group ----" rules
        start = min([st.lineno] + [d.lineno for d in getattr(st, "decorator_list", [])])
        gap = [line.lstrip("# ") for line in model.lines[end : start - 1] if line[:1] == "#"]
        end = st.end_lineno
        if gap and (rule := re.match(r"-+ (.+?) -+$", gap[0])):
            out += [md(" ".join([f"**{rule[1].capitalize()}.**", *gap[1:]])), ""]
        if isinstance(st, ast.ClassDef) and not st.name.startswith("_"):
            out += model.class_block(st.name)
    return out


def state_machine(orders: Module) -> list[str]:
    out = [orders.doc, "", *orders.class_block("OrderState"), *orders.class_block("OrderEvent")]
    state, event, table_ = orders.mod.OrderState, orders.mod.OrderEvent, orders.mod.TRANSITIONS
    notes = {  # the comment on the line of each (state, event) key
        (state[key.elts[0].attr], event[key.elts[1].attr]): orders.comments.get(key.lineno, "")
        for key in orders.assigned("TRANSITIONS").keys
    }
    final = ", ".join(code(s.value) for s in state if s in orders.mod.FINAL)
    out += ["### Transitions", ""]
    out += [
        "Rendered from `arbframe.orders.TRANSITIONS`: the events legal in each state and the "
        f"state each leads to; any other event is illegal. Final states: {final}.",
        "",
    ]
    rows = []
    for s in state:
        moves = [
            f"`{e.value}` → `{new.value}`" + (f" ({notes[s, e].lstrip('# ')})" * bool(notes[s, e]))
            for (origin, e), new in table_.items()
            if origin is s
        ]
        rows.append((code(s.value) + " (final)" * s.final, " <br> ".join(moves) or "none"))
    return out + table(("state", "event → new state"), rows)


def contexts_and_bases(comps: Module) -> tuple[list[str], list[str]]:
    kinds, contexts = comps.mod.KINDS, comps.mod.CONTEXTS
    rows = [(code(k), code(kinds[k].__name__), code(c.__name__)) for k, c in contexts.items()]
    ctx = [
        "A component is built as `cls(config, name=..., ctx=...)`; `ctx` is the context of its "
        "kind (`arbframe.components.CONTEXTS`):",
        "",
        *table(("kind", "base class", "`ctx`"), rows),
    ]
    data = [n for n, c in comps.classes.items() if any("dataclass" in d for d in decorators(c))]
    for name in data:
        ctx += comps.class_block(
            name, "Plus every field of `Context`." * bool(comps.classes[name].bases)
        )
    feed_event = comps.assigned("FeedEvent")
    bases = [comps.doc, "", f"`INTERFACE_VERSION = {comps.mod.INTERFACE_VERSION}`.", ""]
    bases += [f"`FeedEvent = {comps.src(feed_event)}`: {comps.comment_above(feed_event)}", ""]
    kind_of = {cls.__name__: kind for kind, cls in kinds.items()}
    protocols = {"Execution", "MarketData"}  # section 6, with the clock
    for name in comps.classes:
        if name not in data and name not in protocols and not name.startswith("_"):
            kind = kind_of.get(name)
            intro = f"Kind `{kind}`; `ctx`: `{contexts[kind].__name__}`." if kind else ""
            bases += comps.class_block(name, intro, flag=True)
    return ctx, bases


def hooks_section(hooks: Module) -> list[str]:
    out = [hooks.doc, "", f"`Register = {hooks.src(hooks.assigned('Register'))}`.", ""]
    functions = [f for f in hooks.tree.body if isinstance(f, ast.FunctionDef)]
    specs = [f for f in functions if "hookspec" in decorators(f)]
    for title, registration in (("Registration hooks", True), ("Event hooks", False)):
        group = [f for f in specs if f.name.startswith("arbframe_register_") is registration]
        out += [f"### {title}", "", *([hooks.comment_above(group[0]), ""] * bool(group))]
        for fn in group:
            signature = hooks.signature(fn, method=False)
            out += [f"#### `{signature}`", "", md(ast.get_docstring(fn)), ""]
    return out


def render() -> str:
    """The whole reference, as markdown."""
    model, comps = Module("arbframe.model"), Module("arbframe.components")
    contexts, bases = contexts_and_bases(comps)
    interfaces = [("components", "Execution"), ("components", "MarketData"), ("clock", "Clock")]
    bodies = [
        [model.doc, ""],
        model_classes(model),
        state_machine(Module("arbframe.orders")),
        contexts,
        bases,
        [line for m, cls in interfaces for line in Module(f"arbframe.{m}").class_block(cls)],
        hooks_section(Module("arbframe.hookspecs")),
    ]
    out = [
        f"# Plugin reference (interface version {comps.mod.INTERFACE_VERSION})",
        "",
        f"Generated from the code by `{COMMAND}`: do not edit by hand; change the docstring "
        "and regenerate (`tests/test_reference.py` fails while this file is stale). How to "
        "write a plugin: [plugins.md](plugins.md).",
        "",
        *(f"{i}. [{title}](#{i}-{slug(title)})" for i, title in enumerate(SECTIONS, 1)),
        "",
    ]
    for i, (title, body) in enumerate(zip(SECTIONS, bodies, strict=True), 1):
        out += [f"## {i}. {title}", "", *body]
    return "\n".join(out).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description="Generate docs/reference.md.")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="default: docs/reference.md")
    args = parser.parse_args(argv)
    if args.output is None:
        parser.error("arbframe is not installed from a checkout: give --output")
    text = render()
    if not args.check:
        args.output.write_text(text, encoding="utf-8", newline="\n")
        return 0
    current = args.output.read_text(encoding="utf-8") if args.output.exists() else None
    if current == text:
        return 0
    again = COMMAND + ("" if args.output == OUTPUT else f" --output {args.output}")
    why = "missing" if current is None else "stale (the code's docstrings changed)"
    print(f"{args.output} is {why}: run `{again}` to regenerate it", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
