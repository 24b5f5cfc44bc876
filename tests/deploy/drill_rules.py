"""Drill copies of the alerting rules: every range, `for:` and age threshold divided by a factor.

A burn-rate alert over 1 h and 5 min with ``for: 2m`` would take minutes to fire in a test;
divided by 60 it watches 60 s and 5 s and waits 2 s, with the same expressions and thresholds,
so a drill exercises the real rules in seconds. An age compared with the clock
(``time() - <gauge> > 300``: seconds since a timestamp) is a duration too and is divided alike.
Pure text rewriting of `deploy/prometheus/rules.yml`
(the recording rules' names, which spell their nominal window, stay as they are).
"""

from __future__ import annotations

import re

_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RANGE = re.compile(r"\[(\d+)([smhd])\]")
_FOR = re.compile(r"^(\s+for: )(\d+)([smhd])$", re.MULTILINE)
_AGE = re.compile(r"(time\(\) - [A-Za-z_:][A-Za-z0-9_:]* > )(\d+)\b")
MIN_RANGE_S = 3
"""A range must hold at least two 1 s scrapes for rate() and deriv() to answer."""


def _seconds(value: str, unit: str) -> int:
    return int(value) * _UNIT_S[unit]


def compress(rules: str, factor: int) -> str:
    """`rules` with each ``[N<unit>]`` range, ``for:`` duration and ``time() - x > N`` age
    divided by `factor` (ranges no shorter than MIN_RANGE_S, the others no shorter than 1 s)."""
    if factor < 1:
        raise ValueError(f"compression factor must be >= 1, got {factor}")

    def shorter_range(match: re.Match[str]) -> str:
        seconds = max(MIN_RANGE_S, _seconds(match[1], match[2]) // factor)
        return f"[{seconds}s]"

    def shorter_for(match: re.Match[str]) -> str:
        seconds = max(1, _seconds(match[2], match[3]) // factor)
        return f"{match[1]}{seconds}s"

    def shorter_age(match: re.Match[str]) -> str:
        return f"{match[1]}{max(1, int(match[2]) // factor)}"

    return _AGE.sub(shorter_age, _FOR.sub(shorter_for, _RANGE.sub(shorter_range, rules)))
