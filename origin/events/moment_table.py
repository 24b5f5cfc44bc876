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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from origin.experiments.stats.moments import Moments

BINARY_METRICS = ("click", "add_to_cart", "purchase")
CONTINUOUS_METRICS = ("revenue",)
METRICS = BINARY_METRICS + CONTINUOUS_METRICS


@dataclass(frozen=True, slots=True)
class MomentTable:
    """stat -> variant -> day -> increment."""

    cells: Mapping[tuple[str, str, str], float]

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
        return sum(
            v
            for (s, var, day), v in self.cells.items()
            if s == stat and var == variant and (upto is None or day <= upto)
        )

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
