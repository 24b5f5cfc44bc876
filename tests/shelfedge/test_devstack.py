"""`make run` end to end: `shelfedge dev` serves a personalized slot through the local edge
within 60 s; a sell-out produced to Kafka visibly changes it; Ctrl-C stops every process.
Once with one Redis, once with `--redis-cluster` (six local cluster nodes)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from shelfedge.devstack import _canary_text
from shelfedge.localstack import free_port

REPO = Path(__file__).resolve().parents[2]
SKU_IN_SLOT = re.compile(r'data-se-sku="([^"]+)"')


def _children_of(pid: int) -> set[int]:
    out: set[int] = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        match = re.search(r"^PPid:\s+(\d+)$", text, re.MULTILINE)
        if match and int(match.group(1)) == pid:
            child = int(status.parent.name)
            out |= {child} | _children_of(child)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("redis_cluster", [False, True], ids=["single", "cluster"])
def test_dev_stack_serves_slot_reflects_sell_out_and_stops_cleanly(
    tmp_path: Path, redis_cluster: bool
) -> None:
    origin_port, edge_port, metrics_port = free_port(), free_port(), free_port()
    canary_port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS")}
    env.update(
        SHELFEDGE_ORIGIN_PORT=str(origin_port),
        SHELFEDGE_EDGE_PORT=str(edge_port),
        SHELFEDGE_CONSUMER_METRICS_PORT=str(metrics_port),
        SHELFEDGE_CANARY_METRICS_PORT=str(canary_port),
        SHELFEDGE_CATALOG_SKUS="800",
        PYTHONUNBUFFERED="1",
        COLUMNS="120",
    )
    log = (tmp_path / "dev.log").open("wb")
    started = time.monotonic()
    dev = subprocess.Popen(
        [sys.executable, "-m", "shelfedge", "dev", *(["--redis-cluster"] if redis_cluster else [])],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=log,
    )
    try:
        edge = f"http://127.0.0.1:{edge_port}"
        html = ""
        while time.monotonic() - started < 60:
            try:
                response = httpx.get(edge + "/se/slot/home-hero", timeout=5)
                if response.status_code == 200 and SKU_IN_SLOT.search(response.text):
                    html = response.text
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        assert html, (
            "no slot from the local edge within 60 s:\n" + (tmp_path / "dev.log").read_text()
        )
        assert response.headers["x-shelfedge-cache"] in ("MISS", "HIT", "STALE", "REVALIDATED")
        page = httpx.get(edge + "/", timeout=5)
        assert page.status_code == 200
        assert 'data-se-slot="home-hero"' in page.text

        sku = SKU_IN_SLOT.search(html).group(1)  # type: ignore[union-attr]
        output = (tmp_path / "dev.log").read_text()
        redis_url = re.search(r"redis (redis(?:\+cluster)?://\S+)", output).group(1)  # type: ignore[union-attr]
        bootstrap = re.search(r"kafka (\S+:\d+)", output).group(1)  # type: ignore[union-attr]
        sell_env = dict(env, REDIS_URL=redis_url, KAFKA_BOOTSTRAP_SERVERS=bootstrap)
        subprocess.run(
            [sys.executable, "-m", "shelfedge", "sell-out", sku],
            cwd=REPO, env=sell_env, check=True, timeout=60, capture_output=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            shown = SKU_IN_SLOT.findall(httpx.get(edge + "/se/slot/home-hero", timeout=5).text)
            if sku not in shown:
                break
            time.sleep(0.3)
        else:
            pytest.fail(f"{sku} still shown 30 s after its sell-out event")

        canary_metrics = f"http://127.0.0.1:{canary_port}/metrics"
        deadline = time.monotonic() + 40
        seen = ""
        while time.monotonic() < deadline:
            try:
                seen = httpx.get(canary_metrics, timeout=5).text
            except httpx.HTTPError as exc:
                seen = repr(exc)
            if re.search(r"^shelfedge_canary_freshness_seconds_count [1-9]", seen, re.M):
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"the dev stack's freshness canary saw no round through in 40 s: {seen}")

        family = _children_of(dev.pid)
        assert len(family) >= 6 + 5 * redis_cluster, f"expected redis, broker, services: {family}"
        if redis_cluster:
            assert redis_url.startswith("redis+cluster://"), redis_url
    finally:
        dev.send_signal(signal.SIGINT)
        try:
            dev.wait(timeout=30)
        finally:
            log.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in family):
        time.sleep(0.2)
    assert not [pid for pid in family if _alive(pid)], "orphans left after Ctrl-C"


def test_the_status_view_shows_the_canary_once_it_has_a_round() -> None:
    assert _canary_text([]) == "-"
    now = time.time()
    samples: list[tuple[str, dict[str, str], float]] = [
        ("shelfedge_canary_freshness_seconds_count", {}, 2.0),
        ("shelfedge_canary_freshness_seconds_sum", {}, 0.5),
        ("shelfedge_canary_last_success_timestamp_seconds", {}, now - 3),
    ]
    assert _canary_text(samples).startswith("0.25s (3s ago)")
