"""Purge API refusal drill: ``docs/runbooks/purge-api-failure.md`` (a revoked token), as written.

A seeded Redis, a broker of the test's own, and a local stand-in of Cloudflare's purge API
(`tests.support.fake_purge_api`) that accepts one token. The consumer runs as the runbook
starts it (``shelfedge consume``) with a revoked token: the first purge is answered 403 and the
purger stops, keeping its tags queued. A real Prometheus (the drill copy of
``deploy/prometheus/rules.yml``: windows and ``for:`` divided by 60) sees
``ShelfedgePurgeRejected`` go pending, then firing, and keep firing after the one 4xx left its
window (the purger is still stopped). The runbook's check shows the 4xx and the stopped purger;
the consumer is stopped and started again by the runbook's act line with the right token; the
queued tags are purged, the verify line shows it, and the alert resolves.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis.asyncio import Redis

from invalidation.events import PriceEvent
from shelfedge.localstack import KafkaBroker, free_port
from tests.deploy.drill_rules import compress
from tests.deploy.drills import StateLog, alert_state, drilled_blocks, until
from tests.deploy.support import ROOT, RULES
from tests.invalidation.support import produce, seed_world
from tests.support.cli import run_shell_line, running_command_line
from tests.support.fake_purge_api import DEFAULT_CLOUDFLARE_TOKEN, DEFAULT_ZONE_ID, FakePurgeApi
from tests.support.prometheus import PrometheusServer

RUNBOOK = ROOT / "docs" / "runbooks" / "purge-api-failure.md"
ALERT = "ShelfedgePurgeRejected"
DRILL_FACTOR = 60
REVOKED_TOKEN = "cf-revoked-token-0123456789"
pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def test_the_drilled_blocks_read_the_purge_metrics_and_restart_the_consumer() -> None:
    check, act, verify = drilled_blocks(RUNBOOK)
    assert [len(check), len(verify)] == [1, 1]
    assert check[0].startswith('curl -s "$CONSUMER/metrics" | grep -E')
    assert act == ["shelfedge consume"]
    assert verify[0].startswith('curl -s "$CONSUMER/metrics" | grep -E')


async def test_a_revoked_purge_token_fires_and_the_runbook_restart_purges_the_queue(
    redis_client: Redis, redis_url: str, fresh_kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    [check], [start_consumer], [verify] = drilled_blocks(RUNBOOK)
    bootstrap = fresh_kafka_broker.bootstrap
    world = await seed_world(redis_client)
    now = datetime.now(UTC)
    base = time.time_ns() // 1000
    changes = [
        PriceEvent(f"drill-{i}", p.sku, p.price_cents * 3 + 1, "USD", base + i, now)
        for i, p in enumerate(world.products[:30])
    ]
    rules = tmp_path / "rules.drill.yml"
    rules.write_text(compress(RULES.read_text(), DRILL_FACTOR))
    port = free_port()
    with FakePurgeApi() as api:
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "REDIS_URL": redis_url,
            "SHELFEDGE_CONSUMER_GROUP": f"drill-purge-{uuid.uuid4().hex[:6]}",
            "SHELFEDGE_CONSUMER_METRICS_PORT": str(port),
            "SHELFEDGE_CONSUMER_SESSION_TIMEOUT_MS": "3000",
            "SHELFEDGE_PURGERS": "cloudflare",
            "SHELFEDGE_CLOUDFLARE_ZONE_ID": DEFAULT_ZONE_ID,
            "SHELFEDGE_CLOUDFLARE_API_BASE": api.cloudflare_api_base,
            "SHELFEDGE_CLOUDFLARE_API_TOKEN": REVOKED_TOKEN,
            "CONSUMER": f"http://127.0.0.1:{port}",
        }
        targets = {"shelfedge-consumer": (f"127.0.0.1:{port}", "/metrics")}
        with PrometheusServer(targets, [rules]) as prometheus:
            log = StateLog(prometheus, ALERT)
            async with running_command_line(start_consumer, env):
                await asyncio.to_thread(prometheus.wait_for_scrape, "shelfedge-consumer", 60)
                assert alert_state(prometheus, ALERT) == "inactive"
                await produce(bootstrap, changes)
                await until("the refused purge", lambda: any(
                    c.status == 403 for c in api.calls("cloudflare")), 60)  # fmt: skip
                fired_after = await until(f"{ALERT} firing", lambda: log.see() == "firing", 60)
                assert log.states[-2:] == ["pending", "firing"], log.states
                # Still firing once the lone 4xx has left the (drill) 5-minute window: the
                # purger is stopped, nothing more is sent, the tags wait.
                await asyncio.sleep(6)
                assert log.see() == "firing", log.states
                [refused] = api.calls("cloudflare")
                assert refused.status == 403

                shown = (await run_shell_line(check, env)).check().stdout
                assert (
                    'shelfedge_purge_failures_total{purger="cloudflare",status_class="4xx"} 1.0'
                    in (shown)
                ), shown
                assert 'shelfedge_purger_stopped{purger="cloudflare"} 1.0' in shown, shown
            # The fix: the right token in the consumer's environment, and a restart.
            fixed = env | {"SHELFEDGE_CLOUDFLARE_API_TOKEN": DEFAULT_CLOUDFLARE_TOKEN}
            restarted_at = time.monotonic()
            async with running_command_line(start_consumer, fixed):
                await until("the queued tags purged", lambda: bool(api.accepted("cloudflare")), 60)
                resolved_after = await until(
                    f"{ALERT} resolved", lambda: log.see() == "inactive", 60
                )
                depth_zero = 'shelfedge_purge_queue_depth{purger="cloudflare"} 0.0'
                for _ in range(30):  # as an operator would: again until the queue is empty
                    shown = (await run_shell_line(verify, fixed)).check().stdout
                    if depth_zero in shown:
                        break
                    await asyncio.sleep(1)
                assert depth_zero in shown, shown
                assert 'shelfedge_purger_stopped{purger="cloudflare"} 0.0' in shown, shown
                assert 'shelfedge_purge_requests_total{outcome="ok",purger="cloudflare"}' in (
                    shown
                ), shown
    purged = api.accepted_tags("cloudflare")
    assert set(refused.tags) <= purged, "the refused request's tags were kept and purged"
    print(
        f"drill: {ALERT} firing {fired_after:.1f} s after the 403 (states {log.states}); "
        f"resolved {resolved_after:.1f} s after the restart with the right token "
        f"({time.monotonic() - restarted_at:.1f} s in all); {len(purged)} tags purged"
    )
