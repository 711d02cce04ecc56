"""Bounds on what a scenario file may hold, so hostile input is refused, not obeyed.

ruamel's composer recurses once per nesting level (and its scanner slows down about
quadratically with depth), so nesting is estimated from the text before ruamel sees it.
The loader also counts values as it builds them, which bounds alias expansion.
"""

from __future__ import annotations

import re

MAX_BYTES = 1 << 20  # a scenario and the files it extends, in all: scenarios are a few KiB
MAX_DEPTH = 64  # nesting levels: real scenarios use fewer than ten
MAX_VALUES = 100_000  # values after expanding aliases: real scenarios have a few hundred
MAX_EXTENDS = 16  # files in an `extends` chain

# A quote opens a quoted scalar only where a scalar starts.
_SCALAR_START = ("", ":", "-", ",", "[", "{", "?")
_BLOCK_SCALAR = re.compile(r"[|>][-+0-9]*[ \t]*(#.*)?$")


def deep_nesting_at(text: str, limit: int = MAX_DEPTH) -> tuple[int, int] | None:
    """Where (line, column, 1-based) nesting first gets deeper than `limit`, or None.

    An estimate from the text alone: open flow brackets (outside quotes, comments and
    block scalars) plus the stack of block indentation levels, where each `- ` of a
    compact sequence (`- - x`) counts as a level too. It can over-count by a level or two,
    never by much, and the loader checks the exact depth again while it builds values.
    """
    indents: list[int] = []
    flow = 0
    quote = ""
    literal = -1  # indentation of the line that opened a block scalar (`|`, `>`), if any
    for number, line in enumerate(text.split("\n"), 1):
        col = len(line) - len(line.lstrip(" "))
        if literal >= 0 and (col > literal or not line.strip()):
            continue  # block scalar text: nothing in it nests
        literal = -1
        # Block context: indentation nests (blank and comment lines do not).
        if not quote and not flow and line[col : col + 1] not in ("", "#"):
            while indents and indents[-1] >= col:
                indents.pop()
            indents.append(col)
            while len(indents) <= limit and line.startswith("- ", col):
                col += 2
                indents.append(col)
            if len(indents) > limit:
                return number, col + 1
        last = ""  # the last non-blank character before this one, on this line
        i = 0
        while i < len(line):
            ch = line[i]
            if quote:
                if ch == "\\" and quote == '"':
                    i += 1  # an escaped character
                elif ch == quote and line.startswith("''", i) and quote == "'":
                    i += 1  # '' is a quote inside a single-quoted scalar
                elif ch == quote:
                    quote = ""
            elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
                break  # a comment runs to the end of the line
            elif ch in "[{" and not flow and last not in _SCALAR_START:
                ch = "_"  # inside a plain scalar: `a: b[[c` opens nothing
            elif ch in "!&" and last in _SCALAR_START:  # a tag or anchor: the scalar follows
                while i + 1 < len(line) and line[i + 1] not in " \t":
                    i += 1
                ch = " "
            elif ch in "\"'" and last in _SCALAR_START:
                quote = ch
            elif ch in "[{":
                flow += 1
                if len(indents) + flow > limit:
                    return number, i + 1
            elif ch in "]}" and flow:
                flow -= 1
            elif ch in "|>" and not flow and _BLOCK_SCALAR.match(line, i):
                # Its text is indented deeper than its key, or than its `- ` entry.
                literal = indents[-1] - 2 if last == "-" else indents[-1]
            if ch not in " \t":
                last = ch
            i += 1
    return None
