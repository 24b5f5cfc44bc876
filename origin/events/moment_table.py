"""The per-variant sums of an experiment, by UTC day, as results read them. Pure.

The aggregator folds each event into increments of a few sums per (variant, day of the event):

- ``n``: exposed visitors tracked (first exposure), ``x`` and ``xx``: sum and sum of squares of
  their pre-exposure activity (the CUPED covariate);
- ``y:<metric>``, ``yy:<metric>``, ``xy:<metric>``: sum of the visitor-level outcome, of its
  square and of its product with the covariate, for ``click``, ``add_to_cart``, ``purchase``
  (0/1 per visitor: yy = y, not stored) and ``revenue`` (minor units per visitor);
- ``multi``: visitors exposed to a second variant (counted once, against their first);
- ``untracked``: first exposures not tracked because the visitor cap was reached.

Every sum is a total of increments, so the sums over the days up to d are exactly the state at
the end of day d: the confidence sequence over time is computed from the same table. Results
never see a visitor: only these aggregates.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence

from origin.experiments.stats.moments import Moments

BINARY_METRICS = ("click", "add_to_cart", "purchase")
CONTINUOUS_METRICS = ("revenue",)
METRICS = BINARY_METRICS + CONTINUOUS_METRICS


class MomentTable:
    """stat -> variant -> day -> increment, with running totals per (stat, variant) so a sum up
    to any day is one binary search (the lift series asks for every day)."""

    __slots__ = ("_running", "cells")

    def __init__(self, cells: Mapping[tuple[str, str, str], float]) -> None:
        self.cells = dict(cells)
        grouped: dict[tuple[str, str], list[tuple[str, float]]] = {}
        for (stat, variant, day), value in self.cells.items():
            grouped.setdefault((stat, variant), []).append((day, value))
        self._running: dict[tuple[str, str], tuple[list[str], list[float]]] = {}
        for key, rows in grouped.items():
            rows.sort()
            days, sums, total = [], [], 0.0
            for day, value in rows:
                total += value
                days.append(day)
                sums.append(total)
            self._running[key] = (days, sums)

    @classmethod
    def parse(cls, raw: Mapping[str, str]) -> MomentTable:
        cells: dict[tuple[str, str, str], float] = {}
        for field, value in raw.items():
            stat, variant, day = field.rsplit("|", 2)
            cells[(stat, variant, day)] = float(value)
        return cls(cells)

    @property
    def days(self) -> list[str]:
        return sorted({day for _, _, day in self.cells})

    def total(self, stat: str, variant: str, upto: str | None = None) -> float:
        """The sum of `stat` for `variant` over every day (up to and including `upto`)."""
        found = self._running.get((stat, variant))
        if found is None:
            return 0.0
        days, sums = found
        i = len(days) if upto is None else bisect_right(days, upto)
        return sums[i - 1] if i else 0.0

    def moments(self, metric: str, variant: str, upto: str | None = None) -> Moments:
        """The metric's sums for `variant` (up to and including day `upto`)."""
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
        y = self.total(f"y:{metric}", variant, upto)
        yy = y if metric in BINARY_METRICS else self.total(f"yy:{metric}", variant, upto)
        return Moments(
            n=self.total("n", variant, upto),
            sum_y=y,
            sum_yy=yy,
            sum_x=self.total("x", variant, upto),
            sum_xx=self.total("xx", variant, upto),
            sum_xy=self.total(f"xy:{metric}", variant, upto),
        )

    def all_moments(
        self, metric: str, variants: Sequence[str], upto: str | None = None
    ) -> list[Moments]:
        return [self.moments(metric, v, upto) for v in variants]
