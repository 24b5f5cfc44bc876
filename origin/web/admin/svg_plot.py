"""What the admin's server-drawn SVG charts share: bucket labels, round axis bounds, the frame.

Pure. Every text is escaped here; colours are CSS classes, never inline styles (the admin's
Content-Security-Policy forbids them).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

MAX_X_LABELS = 8
"""At most this many bucket labels under a chart; the others are thinned out."""

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def bucket_label(bucket: str) -> str:
    """``20261117`` -> ``Nov 17``; ``2026111714`` -> ``Nov 17 14h``; anything else as is."""
    if len(bucket) in (8, 10) and bucket.isdigit() and 1 <= int(bucket[4:6]) <= 12:
        label = f"{_MONTHS[int(bucket[4:6]) - 1]} {int(bucket[6:8])}"
        return label + (f" {bucket[8:10]}h" if len(bucket) == 10 else "")
    return bucket


def nice_ceiling(value: float) -> float:
    """A round upper bound for an axis (1, 2, 2.5 or 5 times a power of ten), at least 1 %."""
    value = max(value, 0.01)
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * power + 1e-12:
            return step * power
    return 10 * power


def svg_open(css_class: str, width: int, height: int, title: str) -> list[str]:
    """The opening of an accessible chart: the ``<svg>`` tag and its ``<title>``."""
    return [
        f'<svg class="{css_class}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]


def x_labels(buckets: Sequence[str], x: Callable[[int], float], baseline: float) -> list[str]:
    """Bucket labels centred under their x positions, thinned to `MAX_X_LABELS` (the last
    bucket always labelled), on the line `baseline`."""
    every = max(1, math.ceil(len(buckets) / MAX_X_LABELS))
    return [
        f'<text class="axis" x="{x(i):.1f}" y="{baseline}" '
        f'text-anchor="middle">{escape(bucket_label(bucket))}</text>'
        for i, bucket in enumerate(buckets)
        if i % every == 0 or i == len(buckets) - 1
    ]
