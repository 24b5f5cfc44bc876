"""The results page's lift chart: each challenger's always-valid interval of the relative lift,
day by day, narrowing as data comes in. An inline SVG drawn on the server. Pure.

Per challenger: a shaded band (the confidence sequence), a line for the estimate, a dot per day
with a tooltip; a bold zero line ("no effect") so a marketer sees at a glance whether the band has
left it. Bands wider than the plot are clipped to it (the first days' sequences are very wide).
Colours come from CSS classes (``series-N``, challenger N keeps its variant's colour), never inline
styles; every text is escaped here, so the caller may mark the result safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from origin.web.admin.svg_plot import bucket_label, nice_ceiling, svg_open, x_labels

WIDTH = 760
HEIGHT = 260
LEFT, RIGHT, TOP, BOTTOM = 60, 36, 14, 40
CLIP = 1.0
"""The y axis never extends beyond +-100 % lift."""


@dataclass(frozen=True, slots=True)
class LiftPoint:
    day: str
    lift: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class LiftSeries:
    variant: str
    colour: int
    """The variant's index (its colour class)."""
    points: tuple[LiftPoint, ...]


def lift_chart(series: Sequence[LiftSeries], metric: str) -> str:
    """The SVG markup ("" when no day has an interval yet)."""
    days = sorted({p.day for s in series for p in s.points})
    if not days:
        return ""
    reach = max(max(abs(p.low), abs(p.high), abs(p.lift)) for s in series for p in s.points)
    top = min(nice_ceiling(reach), CLIP)
    plot_w: float = WIDTH - LEFT - RIGHT
    plot_h: float = HEIGHT - TOP - BOTTOM

    def x(i: int) -> float:
        return LEFT + (plot_w / 2 if len(days) == 1 else plot_w * i / (len(days) - 1))

    def y(v: float) -> float:
        v = max(-top, min(top, v))
        return TOP + plot_h * (1 - (v + top) / (2 * top))

    title = f"Relative lift in {metric.replace('_', ' ')} vs control, always-valid interval by day"
    out = svg_open("chart lift-chart", WIDTH, HEIGHT, title)
    for t in (-1.0, -0.5, 0.0, 0.5, 1.0):
        v = top * t
        cls = "zeroline" if t == 0 else "gridline"
        label = "0 %" if t == 0 else f"{v * 100:+.0f} %"
        out.append(
            f'<line class="{cls}" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(v):.1f}" '
            f'y2="{y(v):.1f}"/><text class="axis" x="{LEFT - 8}" y="{y(v) + 4:.1f}" '
            f'text-anchor="end">{label}</text>'
        )
    out += x_labels(days, x, HEIGHT - BOTTOM + 20)
    index = {d: i for i, d in enumerate(days)}
    for s in series:
        colour = f"series-{s.colour % 6}"
        pts = [(x(index[p.day]), p) for p in s.points]
        if len(pts) > 1:
            upper = " ".join(f"{px:.1f},{y(p.high):.1f}" for px, p in pts)
            lower = " ".join(f"{px:.1f},{y(p.low):.1f}" for px, p in reversed(pts))
            out.append(f'<polygon class="band {colour}" points="{upper} {lower}"/>')
            line = " ".join(f"{px:.1f},{y(p.lift):.1f}" for px, p in pts)
            out.append(f'<polyline class="line {colour}" points="{line}"/>')
        for px, p in pts:
            tip = (
                f"{s.variant} · {bucket_label(p.day)}: {p.lift * 100:+.1f} % "
                f"(always valid {p.low * 100:+.1f} % … {p.high * 100:+.1f} %)"
            )
            out.append(
                f'<line class="whisker {colour}" x1="{px:.1f}" x2="{px:.1f}" '
                f'y1="{y(p.low):.1f}" y2="{y(p.high):.1f}"/>'
                f'<circle class="dot {colour}" cx="{px:.1f}" cy="{y(p.lift):.1f}" r="3.5">'
                f"<title>{escape(tip)}</title></circle>"
            )
    out.append("</svg>")
    return "".join(out)
