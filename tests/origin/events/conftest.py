"""Fixtures of the event tests: the seeded demo catalog in the suite's real Redis."""

from __future__ import annotations

from tests.origin.experiments.support import seeded

__all__ = ["seeded"]
