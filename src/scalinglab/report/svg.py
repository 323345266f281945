"""A small SVG chart builder for the HTML report: scatter, line, band, error bar and label primitives
on linear or log axes, with hover values and series a legend hides and shows.

Why our own builder rather than matplotlib's SVG backend: every point must carry its own values
(``data-tip``) and every element its series (``data-series``) so a few lines of inline JavaScript
(:data:`SCRIPT`) can show a tooltip and toggle a series. matplotlib's SVG output can be tagged with
``gid``, but its markers are shared ``<use>`` references, its text is glyph paths by default and its
element order follows the artist tree: tagging it reliably means post-processing XML we do not control.
Here the markup is ours, small (a few hundred bytes per series) and deterministic.

A :class:`Chart` is drawn in layers (bands, then lines, then markers, then labels), so a series'
band never covers another's points. :meth:`Chart.svg` returns the ``<svg>`` element and
:meth:`Chart.legend_html` the legend (HTML buttons with ``aria-pressed``); the report puts both in a
``<figure>`` whose ``id`` the legend names.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["CSS", "PALETTE", "SCRIPT", "Chart", "cell_edges", "fmt", "ramp"]

#: colour-blind-safe categorical colours (Okabe and Ito 2008)
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000")

#: a sequential ramp (dark blue to yellow, viridis-like) for ordered series such as FLOP budgets
_RAMP = ((68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (200, 200, 40))


def ramp(t: float) -> str:
    """The colour at ``t`` in [0, 1] on the sequential ramp, as ``#rrggbb``."""
    t = min(1.0, max(0.0, float(t))) * (len(_RAMP) - 1)
    i = min(int(t), len(_RAMP) - 2)
    f = t - i
    rgb = [round(a + (b - a) * f) for a, b in zip(_RAMP[i], _RAMP[i + 1])]
    return "#" + "".join(f"{c:02x}" for c in rgb)


def fmt(v: Any, digits: int = 4) -> str:
    """A number as text: ``digits`` significant digits, exponent without ``+`` or leading zeros."""
    if isinstance(v, bool) or v is None:
        return "yes" if v is True else "no" if v is False else "-"
    if isinstance(v, (int, np.integer)) and abs(int(v)) < 10**6:
        return str(int(v))
    if isinstance(v, (int, float, np.integer, np.floating)):
        x = float(v)
        if not math.isfinite(x):
            return str(x)
        s = f"{x:.{digits}g}"
        if "e" in s:
            m, e = s.split("e")
            s = f"{m}e{int(e)}"
        return s
    return str(v)


CSS = """
.sl-fig { margin: 1em 0 1.5em; }
.sl-fig svg { max-width: 100%; height: auto; font: 11px system-ui, sans-serif; background: #fff; }
.sl-fig svg .axis { stroke: #444; } .sl-fig svg .grid { stroke: #e6e6e6; }
.sl-fig svg text { fill: #333; } .sl-fig svg .title { font-size: 13px; font-weight: 600; }
.sl-fig svg [data-tip] { cursor: crosshair; } .sl-fig svg [data-tip]:hover { stroke-width: 2.5; }
.sl-fig svg .ann { font-size: 10px; }
.sl-off { display: none; }
.sl-legend { display: flex; flex-wrap: wrap; gap: .3em .5em; font-size: .82em; margin: .3em 0 0; }
.sl-leg { border: 1px solid #ccc; background: #fff; border-radius: 3px; padding: .15em .5em; cursor: pointer; }
.sl-leg[aria-pressed=false] { opacity: .4; text-decoration: line-through; }
.sl-leg .sw { display: inline-block; width: .9em; height: .9em; margin-right: .35em; vertical-align: -.1em;
  border-radius: 2px; }
#sl-tip { position: absolute; pointer-events: none; background: #fffff4; border: 1px solid #999;
  box-shadow: 0 1px 4px rgba(0,0,0,.2); padding: .3em .5em; font-size: .8em; z-index: 10; }
#sl-tip table { margin: 0; border: 0; font-size: 1em; } #sl-tip td { border: 0; padding: 0 .4em 0 0; }
"""

#: the report's whole script: a tooltip for every element with ``data-tip`` (a JSON list of
#: [name, value] pairs) and legend buttons that hide and show the elements of their series
SCRIPT = """
(function () {
  var tip = document.getElementById('sl-tip');
  function place(e) {
    if (tip.hidden) return;
    tip.style.left = (e.pageX + 14) + 'px';
    tip.style.top = (e.pageY + 14) + 'px';
  }
  document.addEventListener('mouseover', function (e) {
    var t = e.target.closest ? e.target.closest('[data-tip]') : null;
    if (!t) { tip.hidden = true; return; }
    var rows = JSON.parse(t.getAttribute('data-tip'));
    var table = document.createElement('table');
    rows.forEach(function (r) {
      var tr = table.insertRow();
      tr.insertCell().textContent = r[0];
      tr.insertCell().textContent = r[1];
    });
    tip.replaceChildren(table);
    tip.hidden = false;
    place(e);
  });
  document.addEventListener('mousemove', place);
  document.addEventListener('click', function (e) {
    var b = e.target.closest ? e.target.closest('.sl-leg') : null;
    if (!b) return;
    var on = b.getAttribute('aria-pressed') !== 'false';
    b.setAttribute('aria-pressed', on ? 'false' : 'true');
    var fig = document.getElementById(b.parentNode.getAttribute('data-fig'));
    fig.querySelectorAll('[data-series="' + CSS.escape(b.getAttribute('data-key')) + '"]')
      .forEach(function (el) { el.classList.toggle('sl-off', on); });
  });
})();
"""

_LAYERS = ("band", "line", "mark", "label")


@dataclass
class _Axis:
    label: str
    log: bool
    values: list[float] = field(default_factory=list)
    lim: tuple[float, float] | None = None

    def extent(self) -> tuple[float, float]:
        if self.lim is not None:
            return self.lim
        v = np.asarray([x for x in self.values if math.isfinite(x) and (x > 0 or not self.log)], dtype=float)
        if v.size == 0:
            return (1.0, 10.0) if self.log else (0.0, 1.0)
        lo, hi = float(v.min()), float(v.max())
        if self.log:
            a, b = math.log10(lo), math.log10(hi)
            pad = max(0.04 * (b - a), 0.02)
            return 10 ** (a - pad), 10 ** (b + pad)
        pad = 0.08 * (hi - lo) if hi > lo else max(abs(lo) * 0.05, 0.5)
        return lo - pad, hi + pad

    def ticks(self) -> list[float]:
        lo, hi = self.extent()
        if not self.log:
            return _nice_ticks(lo, hi)
        a, b = math.log10(lo), math.log10(hi)
        if b - a >= 3:
            step = max(1, math.ceil((b - a) / 7))
            return [10.0**k for k in range(math.ceil(a), math.floor(b) + 1) if k % step == 0]
        mults = (1.0, 2.0, 5.0) if b - a >= 1 else (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0)
        ts = [m * 10.0**k for k in range(math.floor(a), math.ceil(b) + 1) for m in mults]
        ts = [t for t in ts if lo <= t <= hi]
        return ts if len(ts) >= 2 else _nice_ticks(lo, hi)


def _nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    span = hi - lo
    if not span > 0:
        return [lo]
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    out = []
    t = first
    while t <= hi + 1e-9 * span:
        out.append(0.0 if abs(t) < 1e-12 * step else t)
        t += step
    return out


class Chart:
    """One figure: a title, two axes (``xlog``/``ylog`` for log scales), series of elements.

    Every element belongs to a series (``series``, a key; :meth:`add_series` gives it a legend label
    and a colour). ``tips``: one list of ``(name, value)`` pairs per point, shown on hover.
    """

    def __init__(self, title: str, xlabel: str, ylabel: str, *, xlog: bool = False, ylog: bool = False,
                 width: int = 680, height: int = 420) -> None:
        self.title = title
        self.x = _Axis(xlabel, xlog)
        self.y = _Axis(ylabel, ylog)
        self.width, self.height = width, height
        self.margin = (34, 18, 50, 70)          # top, right, bottom, left
        self.series: dict[str, tuple[str, str]] = {}
        self.unlisted: set[str] = set()
        self._items: list[tuple[str, str, Any]] = []   # (layer, series, drawing closure data)

    # -- series and primitives --------------------------------------------------------------------
    def add_series(self, key: str, label: str, color: str, *, legend: bool = True) -> str:
        """Register a series (in the legend unless ``legend`` is False: a reference line); returns ``key``."""
        self.series.setdefault(key, (label, color))
        if not legend:
            self.unlisted.add(key)
        return key

    def color(self, key: str) -> str:
        return self.series[key][1] if key in self.series else "#444"

    def _track(self, xs: Iterable[float], ys: Iterable[float]) -> tuple[list[float], list[float]]:
        xl = [float(v) for v in xs]
        yl = [float(v) for v in ys]
        self.x.values += xl
        self.y.values += yl
        return xl, yl

    def scatter(self, xs: Sequence[float], ys: Sequence[float], *, series: str,
                tips: Sequence[Sequence[tuple[str, Any]]] | None = None, marker: str = "circle",
                hollow: bool | Sequence[bool] = False, size: float = 4.5) -> None:
        xl, yl = self._track(xs, ys)
        holl = [hollow] * len(xl) if isinstance(hollow, bool) else list(hollow)
        for i, (x, y) in enumerate(zip(xl, yl)):
            self._items.append(("mark", series, ("point", x, y, marker, holl[i], size,
                                                 None if tips is None else tips[i])))

    def line(self, xs: Sequence[float], ys: Sequence[float], *, series: str, dash: str | None = None,
             width: float = 1.5, track: bool = True) -> None:
        xl, yl = self._track(xs, ys) if track else ([float(v) for v in xs], [float(v) for v in ys])
        self._items.append(("line", series, ("line", xl, yl, dash, width)))

    def band(self, xs: Sequence[float], lo: Sequence[float], hi: Sequence[float], *, series: str,
             opacity: float = 0.16) -> None:
        """A filled interval between ``lo`` and ``hi`` along ``xs`` (a prediction band)."""
        xl = [float(v) for v in xs]
        lo_l, hi_l = [float(v) for v in lo], [float(v) for v in hi]
        self._track(xl + xl, lo_l + hi_l)
        self._items.append(("band", series, ("band", xl, lo_l, hi_l, opacity)))

    def errorbar(self, x: float, lo: float, hi: float, *, series: str, horizontal: bool = False) -> None:
        """A vertical bar from ``lo`` to ``hi`` at ``x`` (``horizontal``: from lo to hi at y = ``x``)."""
        if horizontal:
            self._track([lo, hi], [x, x])
        else:
            self._track([x, x], [lo, hi])
        self._items.append(("line", series, ("bar", float(x), float(lo), float(hi), horizontal)))

    def cells(self, x_edges: Sequence[float], y_edges: Sequence[float], colors: Sequence[Sequence[str]], *,
              series: str, tips: Sequence[Sequence[Sequence[tuple[str, Any]]]] | None = None) -> None:
        """A heat map: cell (i, j) spans ``y_edges[i:i+2]`` x ``x_edges[j:j+2]`` in ``colors[i][j]``
        (a contour drawn as filled cells; :func:`cell_edges` gives edges from centres)."""
        self._track(list(x_edges), [y_edges[0]] * len(x_edges))
        self._track([x_edges[0]] * len(y_edges), list(y_edges))
        for i in range(len(y_edges) - 1):
            for j in range(len(x_edges) - 1):
                self._items.append(("band", series, ("cell", float(x_edges[j]), float(x_edges[j + 1]),
                                                     float(y_edges[i]), float(y_edges[i + 1]), colors[i][j],
                                                     None if tips is None else tips[i][j])))

    def label(self, x: float, y: float, text: str, *, series: str, dx: float = 6, dy: float = -6) -> None:
        self._items.append(("label", series, ("label", float(x), float(y), text, dx, dy)))

    # -- rendering -------------------------------------------------------------------------------
    def _maps(self) -> tuple[Any, Any]:
        top, right, bottom, left = self.margin
        (x0, x1), (y0, y1) = self.x.extent(), self.y.extent()
        tx = math.log10 if self.x.log else float
        ty = math.log10 if self.y.log else float
        a0, a1, b0, b1 = tx(x0), tx(x1), ty(y0), ty(y1)
        pw, ph = self.width - left - right, self.height - top - bottom

        def X(v: float) -> float:
            return left + (tx(v) - a0) / ((a1 - a0) or 1.0) * pw

        def Y(v: float) -> float:
            return top + ph - (ty(v) - b0) / ((b1 - b0) or 1.0) * ph
        return X, Y

    def _ok(self, x: float, y: float) -> bool:
        return (math.isfinite(x) and math.isfinite(y) and (x > 0 or not self.x.log)
                and (y > 0 or not self.y.log))

    def svg(self, fig_id: str) -> str:
        """The ``<svg>`` element (its clip path named after ``fig_id``)."""
        X, Y = self._maps()
        W, H = self.width, self.height
        top, right, bottom, left = self.margin
        clip = f"{fig_id}-clip"
        out = [f'<svg viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
               f'role="img" aria-label="{_e(self.title)}">',
               f'<defs><clipPath id="{clip}"><rect x="{left}" y="{top}" width="{W - left - right}" '
               f'height="{H - top - bottom}"/></clipPath></defs>',
               f'<text class="title" x="{W / 2:.1f}" y="20" text-anchor="middle">{_e(self.title)}</text>']
        for t in self.x.ticks():
            px = X(t)
            out.append(f'<line class="grid" x1="{px:.1f}" x2="{px:.1f}" y1="{top}" y2="{H - bottom}"/>'
                       f'<text x="{px:.1f}" y="{H - bottom + 15}" text-anchor="middle">{_e(fmt(t, 3))}</text>')
        for t in self.y.ticks():
            py = Y(t)
            out.append(f'<line class="grid" x1="{left}" x2="{W - right}" y1="{py:.1f}" y2="{py:.1f}"/>'
                       f'<text x="{left - 5}" y="{py + 3.5:.1f}" text-anchor="end">{_e(fmt(t, 3))}</text>')
        out.append(f'<rect class="axis" x="{left}" y="{top}" width="{W - left - right}" height="{H - top - bottom}" '
                   'fill="none"/>')
        out.append(f'<text x="{left + (W - left - right) / 2:.1f}" y="{H - 12}" text-anchor="middle">'
                   f'{_e(self.x.label)}</text>')
        out.append(f'<text transform="translate(16 {top + (H - top - bottom) / 2:.1f}) rotate(-90)" '
                   f'text-anchor="middle">{_e(self.y.label)}</text>')
        for layer in _LAYERS:
            groups: dict[str, list[str]] = {}
            for lay, key, item in self._items:
                if lay == layer:
                    groups.setdefault(key, []).append(self._draw(item, key, X, Y))
            for key, parts in groups.items():
                out.append(f'<g data-series="{_e(key)}" clip-path="url(#{clip})">' + "".join(parts) + "</g>")
        out.append("</svg>")
        return "\n".join(out)

    def _draw(self, item: tuple[Any, ...], key: str, X: Any, Y: Any) -> str:
        c = self.color(key)
        kind = item[0]
        if kind == "point":
            _, x, y, marker, hollow, size, tip = item
            if not self._ok(x, y):
                return ""
            fill = "#fff" if hollow else c
            attrs = f'fill="{fill}" stroke="{c}" stroke-width="1.3"'
            if tip is not None:
                attrs += f' data-tip="{_e(json.dumps([[str(k), _tipval(v)] for k, v in tip]))}"'
            px, py = X(x), Y(y)
            if marker == "circle":
                return f'<circle cx="{px:.1f}" cy="{py:.1f}" r="{size}" {attrs}/>'
            return f'<path d="{_marker_path(marker, px, py, size)}" {attrs}/>'
        if kind == "line":
            _, xs, ys, dash, width = item
            pts = " ".join(f"{X(x):.1f},{Y(y):.1f}" for x, y in zip(xs, ys) if self._ok(x, y))
            d = f' stroke-dasharray="{dash}"' if dash else ""
            return f'<polyline points="{pts}" fill="none" stroke="{c}" stroke-width="{width}"{d}/>'
        if kind == "band":
            _, xs, lo, hi, opacity = item
            up = [f"{X(x):.1f},{Y(h):.1f}" for x, h in zip(xs, hi) if self._ok(x, h)]
            down = [f"{X(x):.1f},{Y(v):.1f}" for x, v in zip(xs, lo) if self._ok(x, v)][::-1]
            return f'<polygon points="{" ".join(up + down)}" fill="{c}" fill-opacity="{opacity}" stroke="none"/>'
        if kind == "cell":
            _, xa, xb, ya, yb, color, tip = item
            if not (self._ok(xa, ya) and self._ok(xb, yb)):
                return ""
            px, py = min(X(xa), X(xb)), min(Y(ya), Y(yb))
            w, h = abs(X(xb) - X(xa)), abs(Y(yb) - Y(ya))
            t = f' data-tip="{_e(json.dumps([[str(k), _tipval(v)] for k, v in tip]))}"' if tip is not None else ""
            # a hair wider than the cell: no seams between neighbours
            return (f'<rect x="{px:.1f}" y="{py:.1f}" width="{w + 0.4:.1f}" height="{h + 0.4:.1f}" '
                    f'fill="{color}"{t}/>')
        if kind == "bar":
            _, x, lo, hi, horizontal = item
            if horizontal:
                if not (self._ok(lo, x) and self._ok(hi, x)):
                    return ""
                py, a, b = Y(x), X(lo), X(hi)
                d = f"M{a:.1f} {py:.1f}H{b:.1f}M{a:.1f} {py - 3:.1f}V{py + 3:.1f}M{b:.1f} {py - 3:.1f}V{py + 3:.1f}"
            else:
                if not (self._ok(x, lo) and self._ok(x, hi)):
                    return ""
                px, a, b = X(x), Y(lo), Y(hi)
                d = f"M{px:.1f} {a:.1f}V{b:.1f}M{px - 3:.1f} {a:.1f}H{px + 3:.1f}M{px - 3:.1f} {b:.1f}H{px + 3:.1f}"
            return f'<path d="{d}" stroke="{c}" stroke-width="1.2" fill="none"/>'
        _, x, y, text, dx, dy = item
        if not self._ok(x, y):
            return ""
        return f'<text class="ann" x="{X(x) + dx:.1f}" y="{Y(y) + dy:.1f}" fill="{c}">{_e(text)}</text>'

    def legend_html(self, fig_id: str) -> str:
        """The legend: one toggle button per series."""
        if not set(self.series) - self.unlisted:
            return ""
        buttons = "".join(
            f'<button type="button" class="sl-leg" data-key="{_e(k)}" aria-pressed="true">'
            f'<span class="sw" style="background:{c}"></span>{_e(label)}</button>'
            for k, (label, c) in self.series.items() if k not in self.unlisted)
        return f'<div class="sl-legend" data-fig="{_e(fig_id)}">{buttons}</div>'


def cell_edges(centres: Sequence[float], log: bool = True) -> list[float]:
    """Cell edges around sorted ``centres``: midpoints (geometric on a log axis), the outer edges
    mirrored; a single centre gets a cell of a factor 1.5 (log) or 1 (linear) each way."""
    c = np.asarray(centres, dtype=float)
    t = np.log(c) if log else c
    if t.size == 1:
        half = math.log(1.5) if log else 1.0
        e = np.array([t[0] - half, t[0] + half])
    else:
        mid = (t[1:] + t[:-1]) / 2
        e = np.concatenate([[t[0] - (mid[0] - t[0])], mid, [t[-1] + (t[-1] - mid[-1])]])
    return [float(v) for v in (np.exp(e) if log else e)]


def _tipval(v: Any) -> str:
    return v if isinstance(v, str) else fmt(v)


def _marker_path(marker: str, x: float, y: float, r: float) -> str:
    if marker == "star":
        r = r * 1.7
        pts = []
        for k in range(10):
            a = math.pi / 2 + k * math.pi / 5
            rr = r if k % 2 == 0 else r * 0.45
            pts.append(f"{x + rr * math.cos(a):.1f} {y - rr * math.sin(a):.1f}")
        return "M" + "L".join(pts) + "Z"
    if marker == "diamond":
        r = r * 1.3
        return f"M{x:.1f} {y - r:.1f}L{x + r:.1f} {y:.1f}L{x:.1f} {y + r:.1f}L{x - r:.1f} {y:.1f}Z"
    if marker == "square":
        return f"M{x - r:.1f} {y - r:.1f}h{2 * r:.1f}v{2 * r:.1f}h{-2 * r:.1f}Z"
    # triangle
    r = r * 1.3
    return f"M{x:.1f} {y - r:.1f}L{x + r:.1f} {y + 0.8 * r:.1f}L{x - r:.1f} {y + 0.8 * r:.1f}Z"


def _e(s: str) -> str:
    return html.escape(str(s), quote=True)

