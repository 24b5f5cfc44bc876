"""deploy/prometheus/rules.yml is valid and behaves as its unit tests say (`promtool`)."""

from __future__ import annotations

import re
import subprocess

from tests.deploy.support import RULES, RULES_TEST, binary


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary("promtool"), *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_rules_pass_promtool_check() -> None:
    result = _promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_rules_pass_their_unit_tests() -> None:
    result = _promtool("test", "rules", str(RULES_TEST))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_exercised_by_the_unit_tests() -> None:
    """An alert no unit test names could be broken unnoticed."""
    alerts = set(re.findall(r"^\s+- alert: (\S+)$", RULES.read_text(), re.MULTILINE))
    tested = set(re.findall(r"alertname: (\S+)$", RULES_TEST.read_text(), re.MULTILINE))
    untested = sorted(alerts - tested)
    # The 30-minute and 6-hour burns of latency, purge and freshness share their expressions'
    # shape with the availability ones, which are tested at every window.
    shared_shape = {
        f"Shelfedge{slo}{burn}"
        for slo in ("OriginLatency", "EventToPurge", "Freshness")
        for burn in ("SlowBurn", "BudgetBurn")
    }
    assert [a for a in untested if a not in shared_shape] == []
    assert len(alerts) >= 20, alerts
