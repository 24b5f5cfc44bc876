"""Broker outage drill: ``docs/runbooks/broker-outage.md``'s canary check, run as written, fails
while the broker is down and passes once it is back and the pipeline has reconnected.

The local stack (`tests.support.live_stack`: seeded Redis with the canary, origin, local edge,
the invalidation service) runs on a broker of the test's own. The runbook's drilled line
(``shelfedge canary --rounds 1 ...``) runs as an operator would (`tests.support.cli`).
"""

from __future__ import annotations

import time

import pytest

from fragments.topics import ALL_TOPICS
from shelfedge.localstack import KafkaBroker, ensure_topics
from tests.deploy.drills import drilled_blocks
from tests.deploy.support import ROOT
from tests.support.cli import run_command_line
from tests.support.live_stack import live_stack

RUNBOOK = ROOT / "docs" / "runbooks" / "broker-outage.md"
RECOVERY_ATTEMPTS = 3
pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


async def test_the_canary_check_fails_during_a_broker_outage_and_passes_after(
    redis_url: str, fresh_kafka_broker: KafkaBroker
) -> None:
    [[check]] = drilled_blocks(RUNBOOK)
    broker = fresh_kafka_broker
    async with live_stack(redis_url, broker.bootstrap) as stack:
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
            "SHELFEDGE_LOCAL_EDGE_URL": stack.edge.url,
            "SHELFEDGE_SEGMENT_SECRET": stack.segment_secret,
        }
        healthy = await run_command_line(check, env)
        assert healthy.returncode == 0, healthy.stderr
        assert healthy.stdout.startswith("round 1: ok"), healthy.stdout

        broker.stop()
        out = await run_command_line(check, env)
        assert out.returncode == 1, out.stdout
        assert f"cannot reach Kafka at {broker.bootstrap}" in out.stderr or "round 1: " in (
            out.stdout
        ), out.stderr[-2000:]

        broker.start()
        await ensure_topics(broker.bootstrap, ALL_TOPICS)
        started = time.monotonic()
        results = []
        for _ in range(RECOVERY_ATTEMPTS):
            result = await run_command_line(check, env)
            results.append(result)
            if result.returncode == 0:
                break
        assert results[-1].returncode == 0, [(r.stdout, r.stderr[-800:]) for r in results]
        assert results[-1].stdout.startswith("round 1: ok")
        print(f"recovered after {time.monotonic() - started:.1f} s, {len(results)} round(s)")
