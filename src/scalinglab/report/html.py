"""A self-contained HTML report: figures as inline SVG, tables as HTML, downloads as ``data:`` URIs.

The page loads nothing: no image, font, style sheet or script from outside it. Figures are
:class:`.svg.Chart` objects (hover values, legends that hide and show a series; the script is
:data:`.svg.SCRIPT`) or matplotlib figures, inlined as SVG with text kept as text (the sparsity
contour). A :class:`Section` is the unit every part of the report (and any later one: sparse,
precision, dynamics) is made of.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import pandas as pd
from matplotlib.figure import Figure

from .. import __version__
from .svg import CSS as SVG_CSS
from .svg import SCRIPT, Chart, fmt

__all__ = ["Download", "Footer", "Section", "dedupe", "figure_svg", "render", "write"]

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
table { border-collapse: collapse; font-size: .85em; margin: .5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th { background: #f4f4f4; } td { white-space: nowrap; } td:first-child, th:first-child { text-align: left; }
tr.flag td { background: #fff1dc; }
.wide { overflow-x: auto; }
pre { background: #f7f7f7; padding: .8em; overflow-x: auto; font-size: .85em; }
.warn { color: #8a4b00; background: #fff6e8; border-left: 3px solid #e69f00; padding: .3em .6em; margin: .3em 0; }
.downloads a { margin-right: 1em; }
footer { margin-top: 3em; border-top: 1px solid #ddd; padding-top: .6em; font-size: .8em; color: #555; }
footer code { word-break: break-all; }
"""


@dataclass
class Section:
    """One section of the report: a title, then text, warnings, figures, tables, a preformatted block.

    ``figures``: :class:`.svg.Chart` objects (interactive) or matplotlib figures (inlined as SVG);
    ``tables``: data frames; ``flag_rows``: per table, the row positions to highlight (or none);
    ``warnings``: shown once each, in plain view; ``pre``: monospace text (``pre_summary`` puts it in
    a collapsed ``<details>`` with that summary); ``html``: trusted markup appended as is.
    """

    title: str
    text: str = ""
    pre: str = ""
    figures: list[Chart | Figure] = field(default_factory=list)
    tables: list[pd.DataFrame] = field(default_factory=list)
    warnings: Sequence[str] = ()
    captions: Sequence[str] = ()
    flag_rows: Sequence[Sequence[int]] = ()
    pre_summary: str = ""
    html: str = ""
    anchor: str = ""


@dataclass
class Download:
    """A file embedded in the page as a ``data:`` URI (base64), offered with its ``name``."""

    name: str
    content: str
    mime: str = "text/plain"
    label: str = ""

    def link(self) -> str:
        data = base64.b64encode(self.content.encode("utf-8")).decode("ascii")
        return (f'<a download="{html.escape(self.name)}" href="data:{self.mime};charset=utf-8;base64,{data}">'
                f'{html.escape(self.label or self.name)}</a>')


@dataclass
class Footer:
    """The page's provenance: the command that wrote it, the scalinglab version, the store and the
    sha256 of its exported content (:func:`.store_report.store_digest`)."""

    command: str = ""
    store: str = ""
    store_sha256: str = ""
    version: str = __version__

    def html(self) -> str:
        parts = [f"scalinglab {html.escape(self.version)}"]
        if self.command:
            parts.append(f"command: <code>{html.escape(self.command)}</code>")
        if self.store:
            parts.append(f"store: <code>{html.escape(self.store)}</code>")
        if self.store_sha256:
            parts.append(f"store sha256 (of <code>scalinglab runs export --points all</code> as CSV): "
                         f"<code class='sha'>{html.escape(self.store_sha256)}</code>")
        return "<footer>" + " · ".join(parts) + "</footer>"


def dedupe(items: Sequence[str]) -> list[str]:
    """``items`` without repeats, in first-seen order (a plan repeats its fit's warnings)."""
    return list(dict.fromkeys(items))


def figure_svg(fig: Figure) -> str:
    """A matplotlib figure as an inline ``<svg>`` element, its text kept as text."""
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "scalinglab"}):
        fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    # inline SVG in HTML needs no namespace declarations; the metadata block only names its schemas
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)
    return re.sub(r'\sxmlns(:\w+)?="[^"]*"', "", text, count=0)


def _table_html(df: pd.DataFrame, flagged: Sequence[int] = ()) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return html.escape(fmt(v))
        return html.escape(str(v))
    flags = set(flagged)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = "".join(("<tr class='flag'>" if i in flags else "<tr>") + "".join(f"<td>{cell(v)}</td>" for v in row)
                   + "</tr>" for i, row in enumerate(df.itertuples(index=False)))
    return f"<div class='wide'><table><tr>{head}</tr>{rows}</table></div>"


def _figure_html(fig: Chart | Figure, fig_id: str, caption: str) -> str:
    if isinstance(fig, Chart):
        body = fig.svg(fig_id) + fig.legend_html(fig_id)
    else:
        body = figure_svg(fig)
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f"<figure class='sl-fig' id='{fig_id}'>{body}{cap}</figure>"


def render(title: str, sections: Sequence[Section], *, subtitle: str = "", downloads: Sequence[Download] = (),
           footer: Footer | None = None) -> str:
    """The page as text."""
    parts = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
             "<meta name='viewport' content='width=device-width, initial-scale=1'>",
             f"<title>{html.escape(title)}</title><style>{_CSS}{SVG_CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    if subtitle:
        parts.append(f"<p>{html.escape(subtitle)}</p>")
    if downloads:
        parts.append("<p class='downloads'>Download: " + "".join(d.link() for d in downloads) + "</p>")
    n_fig = 0
    for s in sections:
        anchor = f" id='{html.escape(s.anchor)}'" if s.anchor else ""
        parts.append(f"<section{anchor}><h2>{html.escape(s.title)}</h2>")
        if s.text:
            parts.append(f"<p>{html.escape(s.text)}</p>")
        for w in dedupe(list(s.warnings)):
            parts.append(f"<p class='warn'>warning: {html.escape(w)}</p>")
        for i, fig in enumerate(s.figures):
            n_fig += 1
            parts.append(_figure_html(fig, f"fig-{n_fig}", s.captions[i] if i < len(s.captions) else ""))
        for i, t in enumerate(s.tables):
            parts.append(_table_html(t, s.flag_rows[i] if i < len(s.flag_rows) else ()))
        if s.pre:
            if s.pre_summary:
                parts.append(f"<details><summary>{html.escape(s.pre_summary)}</summary>"
                             f"<pre>{html.escape(s.pre)}</pre></details>")
            else:
                parts.append(f"<pre>{html.escape(s.pre)}</pre>")
        if s.html:
            parts.append(s.html)
        parts.append("</section>")
    if footer is not None:
        parts.append(footer.html())
    parts.append(f"<div id='sl-tip' role='tooltip' hidden></div><script>{SCRIPT}</script></body></html>")
    return "\n".join(parts)


def write(path: str | Path, title: str, sections: Sequence[Section], *, subtitle: str = "",
          downloads: Sequence[Download] = (), footer: Footer | None = None) -> Path:
    """Render and write atomically; returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(render(title, sections, subtitle=subtitle, downloads=downloads, footer=footer), encoding="utf-8")
    tmp.replace(p)
    return p
