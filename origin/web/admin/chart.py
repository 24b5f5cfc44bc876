"""The results page's conversion-over-time chart: an inline SVG drawn on the server. Pure.

One line per variant of the cumulative conversion rate per bucket (day or hour), with a point
and a tooltip (``<title>``) per bucket, horizontal grid lines at round percentages and bucket
labels thinned to fit. Colours come from CSS classes (``series-0``...), not inline styles, so
the admin's Content-Security-Policy can forbid inline styles. No JavaScript, no library. Every
text is escaped here: the caller may mark the result safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from origin.web.admin.svg_plot import bucket_label, nice_ceiling, svg_open, x_labels

WIDTH = 760
HEIGHT = 280
LEFT, RIGHT, TOP, BOTTOM = 56, 36, 14, 40
Y_TICKS = 4


@dataclass(frozen=True, slots=True)
class ChartPoint:
    bucket: str
    """``YYYYMMDD`` (day) or ``YYYYMMDDHH`` (hour), as the counters name buckets."""
    rate: float
    """Cumulative conversion rate up to and including this bucket."""
    exposures: int
    """Cumulative distinct exposed visitors."""
    conversions: int
    """Cumulative distinct converted visitors."""


@dataclass(frozen=True, slots=True)
class ChartSeries:
    variant: str
    points: tuple[ChartPoint, ...]


def conversion_chart(series: Sequence[ChartSeries], metric: str) -> str:
    """The SVG markup (empty string when no bucket has data)."""
    buckets = sorted({p.bucket for s in series for p in s.points})
    if not buckets:
        return ""
    top = nice_ceiling(max((p.rate for s in series for p in s.points), default=0.0))
    plot_w: float = WIDTH - LEFT - RIGHT
    plot_h: float = HEIGHT - TOP - BOTTOM

    def x(i: int) -> float:
        return LEFT + (plot_w / 2 if len(buckets) == 1 else plot_w * i / (len(buckets) - 1))

    def y(rate: float) -> float:
        return TOP + plot_h * (1 - min(rate, top) / top)

    title = f"Cumulative {metric.replace('_', ' ')} conversion rate per variant"
    out = svg_open("chart", WIDTH, HEIGHT, title)
    for t in range(Y_TICKS + 1):
        rate = top * t / Y_TICKS
        out.append(
            f'<line class="gridline" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(rate):.1f}" '
            f'y2="{y(rate):.1f}"/>'
            f'<text class="axis" x="{LEFT - 8}" y="{y(rate) + 4:.1f}" text-anchor="end">'
            f"{_percent(rate)}</text>"
        )
    out += x_labels(buckets, x, HEIGHT - BOTTOM + 20)
    index = {b: i for i, b in enumerate(buckets)}
    for n, s in enumerate(series):
        points = [(x(index[p.bucket]), y(p.rate), p) for p in s.points]
        if len(points) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py, _ in points)
            out.append(f'<polyline class="line series-{n % 6}" points="{path}"/>')
        for px, py, p in points:
            tip = (
                f"{s.variant} · {bucket_label(p.bucket)}: {p.rate * 100:.2f} % "
                f"({p.conversions} of {p.exposures} visitors)"
            )
            out.append(
                f'<circle class="dot series-{n % 6}" cx="{px:.1f}" cy="{py:.1f}" r="3.5">'
                f"<title>{escape(tip)}</title></circle>"
            )
    out.append("</svg>")
    return "".join(out)


def _percent(rate: float) -> str:
    """An axis label: at most two decimals, no trailing zeros (0.25 %, 0.5 %, 1 %)."""
    return f"{rate * 100:.2f}".rstrip("0").rstrip(".") + " %"
