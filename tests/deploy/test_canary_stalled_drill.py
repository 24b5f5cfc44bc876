"""Canary stalled drill: ``docs/runbooks/canary-stalled.md``, followed as written.

The local stack (`tests.support.live_stack` with its own consumer held back: seeded Redis with
the canary, origin, local edge, the purge worker purging it) on a broker of the test's own; the
consumer runs as the runbook starts it (``shelfedge consume``), the freshness canary runs as a
deployment runs it (``shelfedge canary``, a round every second), and a real Prometheus scrapes
both with the drill copy of ``deploy/prometheus/rules.yml`` (windows, ``for:`` and the
canary's 300 s age divided by 30). The consumer is stopped: ``ShelfedgeCanaryStalled`` goes
pending, then firing, and the runbook's check prints a timeout. The runbook's act line starts
the consumer again: the check passes and the alert resolves.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from shelfedge.localstack import KafkaBroker, free_port
from tests.deploy.drill_rules import compress
from tests.deploy.drills import StateLog, alert_state, canary_age, drilled_blocks, until
from tests.deploy.support import ROOT, RULES
from tests.support.cli import run_command_line, running_command_line
from tests.support.live_stack import live_stack
from tests.support.prometheus import PrometheusServer

RUNBOOK = ROOT / "docs" / "runbooks" / "canary-stalled.md"
ALERT = "ShelfedgeCanaryStalled"
DRILL_FACTOR = 30
CANARY = "shelfedge canary --interval 1 --timeout 3"
"""The deployment's canary (not a runbook line): a round a second, each waiting 3 s at most."""
pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def test_the_drilled_blocks_check_with_the_canary_and_start_the_consumer() -> None:
    assert drilled_blocks(RUNBOOK) == [
        ["shelfedge canary --rounds 1 --timeout 10 --metrics-port 0"],
        ["shelfedge consume"],
    ]


async def test_canary_stalled_alert_fires_while_the_consumer_is_down_and_the_runbook_recovers(
    redis_url: str, fresh_kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    [[check], [start_consumer]] = drilled_blocks(RUNBOOK)
    bootstrap = fresh_kafka_broker.bootstrap
    rules = tmp_path / "rules.drill.yml"
    rules.write_text(compress(RULES.read_text(), DRILL_FACTOR))
    consumer_port, canary_port = free_port(), free_port()
    async with live_stack(redis_url, bootstrap, consume=False) as stack:
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "REDIS_URL": redis_url,
            "SHELFEDGE_LOCAL_EDGE_URL": stack.edge.url,
            "SHELFEDGE_SEGMENT_SECRET": stack.segment_secret,
            "SHELFEDGE_CONSUMER_GROUP": f"drill-canary-{consumer_port}",
            "SHELFEDGE_CONSUMER_METRICS_PORT": str(consumer_port),
            "SHELFEDGE_CONSUMER_SESSION_TIMEOUT_MS": "3000",
            "SHELFEDGE_CANARY_METRICS_PORT": str(canary_port),
        }
        targets = {
            "shelfedge-consumer": (f"127.0.0.1:{consumer_port}", "/metrics"),
            "shelfedge-canary": (f"127.0.0.1:{canary_port}", "/metrics"),
        }
        with PrometheusServer(targets, [rules]) as prometheus:
            log = StateLog(prometheus, ALERT)
            async with running_command_line(CANARY, env):
                async with running_command_line(start_consumer, env):
                    await asyncio.to_thread(prometheus.wait_for_scrape, "shelfedge-canary", 30)
                    await asyncio.to_thread(prometheus.wait_for_scrape, "shelfedge-consumer", 30)
                    await until("the canary succeeding", lambda: canary_age(prometheus) < 3, 60)
                    await until(f"{ALERT} inactive", lambda: log.see() == "inactive", 30)
                # The fault: the consumer stopped (SIGTERM above; a crash or a lost pod alike).
                stopped_at = time.monotonic()
                fired_after = await until(f"{ALERT} firing", lambda: log.see() == "firing", 60)
                assert log.states[-2:] == ["pending", "firing"], log.states
                assert alert_state(prometheus, "ShelfedgeTargetDown") != "inactive"

                stalled = await run_command_line(check, env)
                assert stalled.returncode == 1, (stalled.stdout, stalled.stderr[-2000:])
                assert stalled.stdout.startswith("round 1: timeout"), stalled.stdout

                # The runbook's act: the consumer is started again.
                restarted_at = time.monotonic()
                async with running_command_line(start_consumer, env) as restarted:
                    resolved_after = await until(
                        f"{ALERT} resolved", lambda: log.see() == "inactive", 60
                    )
                    healthy = await run_command_line(check, env)
                    assert healthy.returncode == 0, (healthy.stdout, healthy.stderr[-2000:])
                    assert healthy.stdout.startswith("round 1: ok"), healthy.stdout
                    assert restarted.returncode is None
    print(
        f"drill: {ALERT} firing {fired_after:.1f} s after the consumer stopped (states "
        f"{log.states}); resolved {resolved_after:.1f} s after it was started again "
        f"({restarted_at - stopped_at:.1f} s stalled)"
    )
