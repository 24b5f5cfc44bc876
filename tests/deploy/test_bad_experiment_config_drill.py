"""Bad experiment configuration drill: ``docs/runbooks/bad-experiment-config.md``, as written.

A real origin (seeded Redis, admin tokens) and a local edge following its published experiments
(`follow_experiments`, as ``shelfedge edge`` runs), each under uvicorn on a loopback port; a
client thread is the shoppers (consenting, a new visitor each request) asking the edge for the
home-hero slot; a real Prometheus scrapes the edge's ``/se/metrics`` with the drill copy of
``deploy/prometheus/rules.yml`` (windows and ``for:`` divided by 60). A running 50/50
experiment is changed through the admin API to give control 0 % (valid, and wrong):
``ShelfedgeExperimentWithoutControl`` goes pending, then firing. The runbook's three blocks run
as written (bash: ``curl`` and ``jq``), the rollback makes the last good version current again,
the edge serves it, control gets its share back and the alert resolves.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from edge.adapters.local_server import LocalEdge, create_edge_app
from edge.config import EdgeConfig
from fragments.slots import load_slots
from origin.core.redis_client import RedisLike
from tests.deploy.drill_rules import compress
from tests.deploy.drills import StateLog, alert_state, drilled_blocks, until
from tests.deploy.support import ROOT, RULES
from tests.origin.experiments.support import (
    EDITOR,
    EDITOR_TOKEN,
    SECRET,
    hero_experiment,
    if_match,
    origin_settings,
    seeded,
)
from tests.support.cli import run_shell_line
from tests.support.origin_server import OriginServer
from tests.support.prometheus import PrometheusServer

RUNBOOK = ROOT / "docs" / "runbooks" / "bad-experiment-config.md"
ALERT = "ShelfedgeExperimentWithoutControl"
DRILL_FACTOR = 60
SLOT = "/se/slot/home-hero"
HALF = [
    {"id": "control", "name": "Control", "weight": 0.5},
    {
        "id": "compact",
        "name": "Compact cards",
        "weight": 0.5,
        "changes": {"card_template": "card_compact.html.j2"},
    },
]
ALL_COMPACT = [{**HALF[0], "weight": 0.0}, {**HALF[1], "weight": 1.0}]
"""The mistake: control's weight typed as 0 (valid: weights sum to 1)."""
pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
__all__ = ["seeded"]  # the fixture, imported for the tests below


class Shoppers:
    """A client thread asking the edge for the slot every `pause` seconds as a new consenting
    visitor each time, counting the variants served, until the block exits."""

    def __init__(self, url: str, pause: float = 0.04) -> None:
        self.url = url
        self.pause = pause
        self.variants: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drill-shoppers", daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=5.0) as client:
            while not self._stop.is_set():
                cookie = f"se_vid={uuid.uuid4().hex}; se_consent=1"
                try:
                    response = client.get(self.url, headers={"cookie": cookie})
                    variant = response.headers.get("x-shelfedge-variant", f"{response.status_code}")
                except httpx.HTTPError as exc:
                    variant = type(exc).__name__
                self.variants[variant] = self.variants.get(variant, 0) + 1
                self._stop.wait(self.pause)

    def __enter__(self) -> Shoppers:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def test_the_drilled_blocks_list_versions_roll_back_and_show_the_current_config() -> None:
    check, act, verify = drilled_blocks(RUNBOOK)
    assert [len(check), len(act), len(verify)] == [1, 1, 1]
    assert check[0].startswith(
        'curl -fsS -H "Authorization: Bearer $TOKEN" "$ORIGIN/v1/edge-config/versions"'
    )
    assert act == [
        'curl -fsS -X POST -H "Authorization: Bearer $TOKEN" '
        '"$ORIGIN/v1/edge-config/rollback/$GOOD_VERSION"'
    ]


@pytest.fixture
def origin(redis_url: str, seeded: RedisLike) -> Iterator[OriginServer]:
    with OriginServer.for_origin(origin_settings(redis_url)) as server:
        yield server


@pytest.fixture
def edge(origin: OriginServer) -> Iterator[tuple[OriginServer, LocalEdge]]:
    config = replace(EdgeConfig.from_slots(load_slots(), SECRET), debug_headers=True)
    app: Starlette = create_edge_app(config, origin.url, follow_experiments=True)
    with OriginServer(app) as server:
        yield server, app.state.edge


def _exposure_rates(prometheus: PrometheusServer) -> dict[str, float]:
    rows = prometheus.query(
        'sum by (variant) (rate(shelfedge_edge_exposures_total{experiment="hero"}[5s]))'
    )
    return {row["metric"]["variant"]: float(row["value"][1]) for row in rows}


async def test_a_control_less_allocation_fires_and_the_runbook_rolls_it_back(
    origin: OriginServer, edge: tuple[OriginServer, LocalEdge], tmp_path: Path
) -> None:
    [check], [roll_back], [verify] = drilled_blocks(RUNBOOK)
    edge_server, local_edge = edge
    env = {"ORIGIN": origin.url, "TOKEN": EDITOR_TOKEN}
    rules = tmp_path / "rules.drill.yml"
    rules.write_text(compress(RULES.read_text(), DRILL_FACTOR))
    targets = {"shelfedge-edge": (f"{edge_server.host}:{edge_server.port}", "/se/metrics")}
    async with httpx.AsyncClient(base_url=origin.url, timeout=30.0) as admin:
        doc = hero_experiment(variants=HALF)
        assert (await admin.post("/v1/experiments", json=doc, headers=EDITOR)).status_code == 201
        started = await admin.post("/v1/experiments/hero/start", headers=if_match(1))
        assert started.status_code == 200, started.text
        with PrometheusServer(targets, [rules]) as prometheus, Shoppers(edge_server.url + SLOT):
            log = StateLog(prometheus, ALERT)
            both = ("control", "compact")
            await until("exposures of both variants", lambda: all(
                _exposure_rates(prometheus).get(v, 0) > 0 for v in both), 60)  # fmt: skip
            good_version = local_edge.configs.config.version
            # The alert's state is the last rule evaluation's: one that ran before control's
            # first exposures were scraped left it pending, and the next one clears it.
            await until(f"{ALERT} inactive under the good version", lambda: (
                alert_state(prometheus, ALERT) == "inactive"), 30)  # fmt: skip

            # The mistake, through the admin API: every shopper to the challenger.
            bad = await admin.put(
                "/v1/experiments/hero",
                json=hero_experiment(variants=ALL_COMPACT, status="running"),
                headers=if_match(2),
            )
            assert bad.status_code == 200, bad.text
            await until("the edge to follow the bad version", lambda: (
                local_edge.configs.config.version > good_version), 30)  # fmt: skip
            bad_version = local_edge.configs.config.version
            fired_after = await until(f"{ALERT} firing", lambda: log.see() == "firing", 60)
            assert log.states[-2:] == ["pending", "firing"], log.states
            assert [a.labels["experiment"] for a in prometheus.alerts() if a.name == ALERT] == [
                "hero"
            ]

            # The runbook: which versions, roll back to the one before the bad one, verify.
            listed = (await run_shell_line(check, env)).check().stdout.splitlines()
            newest, previous = (line.split("\t") for line in listed[:2])
            assert int(newest[0]) == bad_version, listed
            assert int(previous[0]) == good_version, listed
            rolled = (await run_shell_line(roll_back, env | {"GOOD_VERSION": previous[0]})).check()
            assert f"rollback to {good_version}" in rolled.stdout, rolled.stdout
            shown = (await run_shell_line(verify, env)).check().stdout.strip()
            rolled_version = bad_version + 1
            assert shown == (
                f'{{"version":{rolled_version},"experiments":[{{"key":"hero","status":"running",'
                '"weights":{"control":0.5,"compact":0.5}}]}'
            ), shown

            recovered_at = time.monotonic()
            await until("the edge to serve the rolled-back version", lambda: (
                local_edge.configs.config.version == rolled_version), 30)  # fmt: skip
            resolved_after = await until(f"{ALERT} resolved", lambda: log.see() == "inactive", 60)
            assert _exposure_rates(prometheus).get("control", 0) > 0
    print(
        f"drill: {ALERT} firing {fired_after:.1f} s after the edge took version {bad_version} "
        f"(states {log.states}); resolved {resolved_after:.1f} s after the edge took the "
        f"rollback (version {rolled_version}, {time.monotonic() - recovered_at:.1f} s)"
    )
