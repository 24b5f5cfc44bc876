"""Every runbook in docs/runbooks/ is drilled: it marks the command blocks a drill runs, the
drill it names exists, and that drill reads this runbook (so its commands are the ones run)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.deploy.drills import drilled_blocks
from tests.deploy.support import ROOT

RUNBOOKS = sorted((ROOT / "docs" / "runbooks").glob("*.md"))
_NAMED_DRILL = re.compile(r"<!-- drill:[^>]*?(tests/deploy/test_\w+\.py)")


def test_every_runbook_the_issue_asks_for_exists() -> None:
    assert {p.stem for p in RUNBOOKS} >= {
        "consumer-lag",
        "dead-letter-surge",
        "redis-outage",
        "broker-outage",
        "purge-api-failure",
        "bad-experiment-config",
        "replay-and-backfill",
    }


@pytest.mark.parametrize("runbook", RUNBOOKS, ids=lambda p: p.stem)
def test_each_runbook_names_a_drill_that_runs_its_blocks(runbook: Path) -> None:
    assert drilled_blocks(runbook), f"{runbook.name} has no drilled block"
    drills = set(_NAMED_DRILL.findall(runbook.read_text()))
    assert drills, f"{runbook.name}: its drill markers name no tests/deploy/test_*.py"
    for drill in drills:
        source = ROOT / drill
        assert source.is_file(), f"{runbook.name} names {drill}, which does not exist"
        assert f'"{runbook.stem}.md"' in source.read_text(), (
            f"{drill} does not read {runbook.name}'s blocks"
        )
