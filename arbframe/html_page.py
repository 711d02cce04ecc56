"""The HTML page `arbframe report` writes: plotly.js inline in the head (no CDN, so the file
opens offline and can be archived or mailed as it is), sections of tables and charts."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from html import escape
from pathlib import Path
from typing import Any

from arbframe.errors import ArbframeError
from arbframe.model import money

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.sub, .note { color: #666; } .chart { min-height: 300px; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.scroll { max-height: 480px; overflow: auto; }
"""


def page(title: str, subtitle: str, sections: list[str]) -> str:
    """The whole document: plotly.js inline in the head, then the sections."""
    from plotly.offline import get_plotlyjs

    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{STYLE}</style>"
        f"<script>{get_plotlyjs()}</script></head><body>"
        f"<h1>{escape(title)}</h1><p class='sub'>{escape(subtitle)}</p>"
        + "\n".join(sections)
        + "</body></html>\n"
    )


def chart(name: str, fig: Any, height: int = 360) -> str:
    """A figure as a div (``id chart-<name>``) and the script that draws it."""
    fig.update_layout(
        template="plotly_white", height=height, margin={"l": 60, "r": 20, "t": 40, "b": 40}
    )
    html = fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=f"chart-{name}",
        config={"displaylogo": False, "responsive": True},
    )
    return f"<div class='chart' data-chart='{name}'>{html}</div>"


def section(title: str, *parts: str) -> str:
    return f"<section><h2>{escape(title)}</h2>{''.join(parts)}</section>"


def note(text: str) -> str:
    return f"<p class='note'>{escape(text)}</p>"


def table(headers: list[str], rows: list[list[Any]], scroll: bool = False) -> str:
    def cell(value: Any) -> str:
        numeric = isinstance(value, int | float | Decimal) and not isinstance(value, bool)
        text = "" if value is None else money(value) if isinstance(value, Decimal) else str(value)
        return f"<td class='num'>{escape(text)}</td>" if numeric else f"<td>{escape(text)}</td>"

    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    html = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f"<div class='scroll'>{html}</div>" if scroll else html


def when(ns: int | None) -> datetime | None:
    return None if ns is None else datetime.fromtimestamp(ns / 1e9, UTC)


def stamp(ns: int | None) -> str:
    moment = when(ns)
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def write_html(path: Path, html: str) -> Path:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html, encoding="utf-8")
    except OSError as err:
        raise ArbframeError(f"{path}: cannot write the report: {err.strerror or err}") from None
    return path
