"""The drill copy of the rules keeps every rule and only shortens its durations."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.deploy.drill_rules import compress
from tests.deploy.support import RULES, binary


def test_ranges_for_durations_and_ages_are_divided() -> None:
    text = (
        "      - alert: A\n"
        "        expr: rate(x[1h]) > 0 and rate(x[5m]) > 0 and deriv(y[1d]) > 0 and z[2m]\n"
        "        for: 15m\n"
        "      - record: shelfedge:x:ratio_rate5m\n"
        "        expr: rate(x[1m])\n"
        "      - alert: B\n"
        "        expr: time() - shelfedge_x_timestamp_seconds > 300 or y > 300\n"
    )
    assert compress(text, 60) == (
        "      - alert: A\n"
        "        expr: rate(x[60s]) > 0 and rate(x[5s]) > 0 and deriv(y[1440s]) > 0 and z[3s]\n"
        "        for: 15s\n"
        "      - record: shelfedge:x:ratio_rate5m\n"
        "        expr: rate(x[3s])\n"
        "      - alert: B\n"
        "        expr: time() - shelfedge_x_timestamp_seconds > 5 or y > 300\n"
    )


def test_a_factor_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="factor must be >= 1"):
        compress("", 0)


def test_the_drill_copy_of_the_real_rules_is_valid_and_complete(tmp_path: Path) -> None:
    real = RULES.read_text()
    drill = compress(real, 60)
    assert re.findall(r"- (?:alert|record): \S+", drill) == re.findall(
        r"- (?:alert|record): \S+", real
    )
    assert not re.search(r"\[\d+[mhd]\]|for: \d+[mhd]", drill), "a duration was left long"
    assert "time() - shelfedge_canary_last_success_timestamp_seconds > 5\n" in drill
    path = tmp_path / "rules.yml"
    path.write_text(drill)
    result = subprocess.run(
        [binary("promtool"), "check", "rules", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
