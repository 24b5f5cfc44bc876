"""Alert drill: a real Prometheus watches a real origin lose its Redis, then get it back.

Prometheus (Debian's binary, 1 s scrapes and rule evaluation) scrapes the origin's /metrics
while a client thread asks it for a bundle every 50 ms. The drill copy of deploy/prometheus/
rules.yml (`drill_rules.compress`, every window and `for:` divided by 60) is loaded. The origin's
redis-server is frozen (SIGSTOP: it keeps its sockets but never answers, so every bundle request
ends in a fast 503), and ShelfedgeOriginAvailabilityFastBurn must go pending, then firing; once
Redis is thawed it must resolve (leave /api/v1/alerts) while the 1 h window still remembers the
outage, which is what the multiwindow rule is for. The drilled blocks of
``docs/runbooks/redis-outage.md`` run as written (bash): its check while Redis is frozen
(``/readyz`` answers 503, the error counters show), its verify after (``/readyz`` answers 200).
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from fragments.slots import load_slots
from origin.core.seed import seed_demo
from origin.core.store import Store
from origin.settings import Settings
from shelfedge.localstack import RedisServer
from tests.deploy.drill_rules import compress
from tests.deploy.drills import drilled_blocks
from tests.deploy.support import ROOT, RULES
from tests.support.cli import CliResult, run_shell_line
from tests.support.origin_server import OriginServer
from tests.support.prometheus import PrometheusServer

RUNBOOK = ROOT / "docs" / "runbooks" / "redis-outage.md"
ALERT = "ShelfedgeOriginAvailabilityFastBurn"
BUNDLE = "/v1/bundles/home-hero?segment=everyone"
DRILL_FACTOR = 60
TRAFFIC_LIMIT_S = 240.0
pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


class Traffic:
    """A client thread asking the origin for one bundle every `pause` seconds, counting answers
    by status; it stops on `stop()` or after TRAFFIC_LIMIT_S, whichever comes first."""

    def __init__(self, url: str, pause: float = 0.05) -> None:
        self.url = url
        self.pause = pause
        self.statuses: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drill-traffic", daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + TRAFFIC_LIMIT_S
        with httpx.Client(timeout=5.0) as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                try:
                    status = client.get(self.url).status_code
                except httpx.HTTPError:
                    status = 0
                self.statuses[status] = self.statuses.get(status, 0) + 1
                self._stop.wait(self.pause)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def _seed(redis_url: str) -> None:
    async def seed() -> None:
        client = Redis.from_url(redis_url)
        try:
            await seed_demo(Store(client, 5.0), load_slots(), 42, 60)
        finally:
            await client.aclose()

    asyncio.run(seed())


def _run(line: str, origin: OriginServer) -> CliResult:
    return asyncio.run(run_shell_line(line, {"ORIGIN": origin.url})).check()


def test_the_drilled_blocks_check_readiness_and_the_error_counters() -> None:
    [readiness, counters], [verify] = drilled_blocks(RUNBOOK)
    assert readiness == verify
    assert readiness.endswith('"$ORIGIN/readyz"')
    assert counters.startswith('curl -s "$ORIGIN/metrics" | grep')


def _state_of(prometheus: PrometheusServer, name: str) -> str:
    """``firing``, ``pending`` or ``inactive`` (not in /api/v1/alerts)."""
    states = {a.state for a in prometheus.alerts() if a.name == name}
    return "firing" if "firing" in states else states.pop() if states else "inactive"


def _wait(what: str, condition: Callable[[], bool], timeout: float) -> float:
    """Poll `condition` every 100 ms; return the seconds it took, or fail naming `what`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)
    return time.monotonic() - started


@pytest.fixture
def drill_origin(fresh_redis_server: RedisServer) -> Iterator[OriginServer]:
    _seed(fresh_redis_server.url)
    settings = Settings(redis_url=fresh_redis_server.url, redis_timeout_ms=200)
    with OriginServer.for_origin(settings) as origin:
        yield origin


@pytest.fixture
def drill_prometheus(drill_origin: OriginServer, tmp_path: Path) -> Iterator[PrometheusServer]:
    rules = tmp_path / "rules.drill.yml"
    rules.write_text(compress(RULES.read_text(), DRILL_FACTOR))
    targets = {"shelfedge-origin": (f"{drill_origin.host}:{drill_origin.port}", "/metrics")}
    with PrometheusServer(targets, [rules]) as prometheus:
        prometheus.wait_for_scrape("shelfedge-origin")
        yield prometheus


def test_origin_availability_alert_fires_on_a_redis_outage_and_resolves_after(
    fresh_redis_server: RedisServer, drill_origin: OriginServer, drill_prometheus: PrometheusServer
) -> None:
    prometheus = drill_prometheus
    [readiness, counters], [verify] = drilled_blocks(RUNBOOK)
    redis_pid = fresh_redis_server.pid
    assert redis_pid is not None
    with Traffic(drill_origin.url + BUNDLE) as traffic:
        # Healthy: the availability ratio is recorded (traffic flows) and it is 0.
        _wait(
            "a recorded availability ratio of 0",
            lambda: [s["value"][1] for s in prometheus.query(
                "shelfedge:origin_availability:ratio_rate5m")] == ["0"],
            timeout=30,
        )  # fmt: skip
        assert _state_of(prometheus, ALERT) == "inactive"

        os.kill(redis_pid, signal.SIGSTOP)
        try:
            states: list[str] = []

            def firing() -> bool:
                state = _state_of(prometheus, ALERT)
                if not states or states[-1] != state:
                    states.append(state)
                return state == "firing"

            firing_after = _wait(f"{ALERT} firing", firing, 40)
            errors_seen = traffic.statuses.get(503, 0)
            # The runbook's check, while Redis is out.
            assert _run(readiness, drill_origin).stdout == "503\n"
            shown = _run(counters, drill_origin).stdout
            assert "shelfedge_origin_store_errors_total" in shown, shown
            assert 'status="503"}' in shown, shown
        finally:
            os.kill(redis_pid, signal.SIGCONT)

        resolved_after = _wait(
            f"{ALERT} resolved", lambda: _state_of(prometheus, ALERT) == "inactive", 60
        )
        long_window = prometheus.query("shelfedge:origin_availability:ratio_rate1h")
        assert _run(verify, drill_origin).stdout == "200\n"
        ok_after_recovery = traffic.statuses.get(200, 0)
        time.sleep(1.0)
        assert traffic.statuses.get(200, 0) > ok_after_recovery, "the origin serves again"

    assert states[-2:] == ["pending", "firing"], (
        f"the alert must be pending (its for: not yet elapsed) before firing: {states}"
    )
    assert errors_seen > 0, traffic.statuses
    assert float(long_window[0]["value"][1]) > 14.4 * 0.001, (
        "the long window still remembers the outage: the short window resolved the alert"
    )
    assert _state_of(prometheus, "ShelfedgeTargetDown") == "inactive"
    print(
        f"drill: firing {firing_after:.1f} s after the fault (states {states}), "
        f"resolved {resolved_after:.1f} s after recovery; answers {traffic.statuses}"
    )
