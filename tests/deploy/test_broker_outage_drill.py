"""Broker outage drill: ``docs/runbooks/broker-outage.md``, followed as written.

The local stack (`tests.support.live_stack`: seeded Redis with the canary, origin, local edge,
the invalidation service) runs on a broker of the test's own; the freshness canary runs as a
deployment runs it (``shelfedge canary``, a round every second) and a real Prometheus scrapes it
with the drill copy of ``deploy/prometheus/rules.yml`` (windows, ``for:`` and the canary's 300 s
age divided by 30). The broker is stopped: the runbook's first alert, ``ShelfedgeCanaryStalled``,
goes pending, then firing, and the runbook's drilled check (``shelfedge canary --rounds 1``, run
as an operator would, `tests.support.cli`) fails. The broker is restored (the runbook's act):
the check passes and the alert resolves, with nothing restarted on shelfedge's side.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from fragments.topics import ALL_TOPICS
from shelfedge.localstack import KafkaBroker, ensure_topics, free_port
from tests.deploy.drill_rules import compress
from tests.deploy.drills import StateLog, canary_age, drilled_blocks, until
from tests.deploy.support import ROOT, RULES
from tests.support.cli import run_command_line, running_command_line
from tests.support.live_stack import live_stack
from tests.support.prometheus import PrometheusServer

RUNBOOK = ROOT / "docs" / "runbooks" / "broker-outage.md"
ALERT = "ShelfedgeCanaryStalled"
DRILL_FACTOR = 30
CANARY = "shelfedge canary --interval 1 --timeout 3"
"""The deployment's canary (not a runbook line): a round a second, each waiting 3 s at most."""
RECOVERY_ATTEMPTS = 3
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_the_runbook_names_the_alert_the_drill_sees() -> None:
    assert f"`{ALERT}`" in RUNBOOK.read_text().split("## Symptoms")[0]


async def test_the_canary_stalls_during_a_broker_outage_and_recovers_when_it_is_back(
    redis_url: str, fresh_kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    [[check]] = drilled_blocks(RUNBOOK)
    broker = fresh_kafka_broker
    rules = tmp_path / "rules.drill.yml"
    rules.write_text(compress(RULES.read_text(), DRILL_FACTOR))
    canary_port = free_port()
    async with live_stack(redis_url, broker.bootstrap) as stack:
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
            "SHELFEDGE_LOCAL_EDGE_URL": stack.edge.url,
            "SHELFEDGE_SEGMENT_SECRET": stack.segment_secret,
        }
        targets = {"shelfedge-canary": (f"127.0.0.1:{canary_port}", "/metrics")}
        with PrometheusServer(targets, [rules]) as prometheus:
            log = StateLog(prometheus, ALERT)
            canary_env = {**env, "SHELFEDGE_CANARY_METRICS_PORT": str(canary_port)}
            async with running_command_line(CANARY, canary_env):
                await asyncio.to_thread(prometheus.wait_for_scrape, "shelfedge-canary", 30)
                await until("the canary succeeding", lambda: canary_age(prometheus) < 3, 60)
                await until(f"{ALERT} inactive", lambda: log.see() == "inactive", 30)
                healthy = await run_command_line(check, env)
                assert healthy.returncode == 0, healthy.stderr
                assert healthy.stdout.startswith("round 1: ok"), healthy.stdout

                # The fault: the broker is gone.
                broker.stop()
                stopped_at = time.monotonic()
                fired_after = await until(f"{ALERT} firing", lambda: log.see() == "firing", 90)
                assert log.states[-2:] == ["pending", "firing"], log.states
                out = await run_command_line(check, env)
                assert out.returncode == 1, out.stdout
                assert f"cannot reach Kafka at {broker.bootstrap}" in out.stderr or (
                    "round 1: " in out.stdout
                ), out.stderr[-2000:]

                # The runbook's act: restore the brokers; shelfedge restarts nothing.
                broker.start()
                await ensure_topics(broker.bootstrap, ALL_TOPICS)
                back_at = time.monotonic()
                results = []
                for _ in range(RECOVERY_ATTEMPTS):
                    result = await run_command_line(check, env)
                    results.append(result)
                    if result.returncode == 0:
                        break
                assert results[-1].returncode == 0, [(r.stdout, r.stderr[-800:]) for r in results]
                assert results[-1].stdout.startswith("round 1: ok")
                await until(f"{ALERT} resolved", lambda: log.see() == "inactive", 90)
                resolved_after = time.monotonic() - back_at
    print(
        f"drill: {ALERT} firing {fired_after:.1f} s after the broker stopped (states "
        f"{log.states}); check ok after {len(results)} round(s), alert resolved "
        f"{resolved_after:.1f} s after the broker was back ({back_at - stopped_at:.1f} s out)"
    )
