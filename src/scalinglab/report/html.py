"""A self-contained HTML report: figures embedded as PNG data, tables as HTML, no external assets."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
table { border-collapse: collapse; font-size: .85em; margin: .5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
pre { background: #f7f7f7; padding: .8em; overflow-x: auto; font-size: .85em; }
.warn { color: #a15c00; } img { max-width: 100%; }
"""


@dataclass
class Section:
    """One section of the report: a title, then any of text, a preformatted block, figures, tables."""

    title: str
    text: str = ""
    pre: str = ""
    figures: list[Figure] = field(default_factory=list)
    tables: list[pd.DataFrame] = field(default_factory=list)
    warnings: Sequence[str] = ()


def figure_png(fig: Figure) -> str:
    """The figure as a base64 PNG data URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _table_html(df: pd.DataFrame) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return html.escape(str(v))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = "".join("<tr>" + "".join(f"<td>{fmt(v)}</td>" for v in row) + "</tr>" for row in df.itertuples(index=False))
    return f"<table><tr>{head}</tr>{rows}</table>"


def render(title: str, sections: Sequence[Section], *, subtitle: str = "") -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    if subtitle:
        parts.append(f"<p>{html.escape(subtitle)}</p>")
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        if s.text:
            parts.append(f"<p>{html.escape(s.text)}</p>")
        for w in s.warnings:
            parts.append(f"<p class='warn'>warning: {html.escape(w)}</p>")
        if s.pre:
            parts.append(f"<pre>{html.escape(s.pre)}</pre>")
        for fig in s.figures:
            parts.append(f"<img alt='{html.escape(s.title)}' src='{figure_png(fig)}'>")
        for t in s.tables:
            parts.append(_table_html(t))
    parts.append("</body></html>")
    return "\n".join(parts)


def write(path: str | Path, title: str, sections: Sequence[Section], *, subtitle: str = "") -> Path:
    """Render and write atomically; returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(render(title, sections, subtitle=subtitle))
    tmp.replace(p)
    return p
