"""Smoke tests of the assembled Python Worker under real workerd (`wrangler dev --local`, offline).

One Worker per module: it is built into a temporary folder (`prepare_worker`) and served on a
free loopback port with the `test` environment of wrangler.toml and an `ORIGIN_URL` override.
The Worker never contacts that origin; requests go to loopback only.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fragments.topics import ALL_TOPICS
from tests.support.workerd import LOOPBACK, DevSettings, WranglerDev, free_port, prepare_worker

ORIGIN_URL = "http://127.0.0.1:9/shelfedge-origin"
"""Handed to the Worker as a variable; only echoed, never requested."""


@pytest.fixture(scope="module")
def worker_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A freshly assembled Worker folder (the dev bundle is built first when stale)."""
    return prepare_worker(tmp_path_factory.mktemp("workerd") / "worker")


@pytest.fixture(scope="module")
def edge_worker(
    worker_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WranglerDev]:
    """The Worker served by wrangler dev for this module's tests."""
    settings = DevSettings(
        worker_dir=worker_dir,
        state_dir=tmp_path_factory.mktemp("wrangler-state"),
        variables={"ORIGIN_URL": ORIGIN_URL},
    )
    with WranglerDev(settings) as dev:
        yield dev


@pytest.fixture
def client(edge_worker: WranglerDev) -> Iterator[httpx.Client]:
    """An HTTP client for the Worker that ignores proxy settings (loopback only)."""
    with httpx.Client(base_url=edge_worker.base_url, timeout=30.0, trust_env=False) as http:
        yield http


def test_home_renders_with_our_packages_and_vendored_jinja2(client: httpx.Client) -> None:
    response = client.get("/")

    assert response.status_code == 200
    topics = ",".join(topic.name for topic in ALL_TOPICS)
    assert response.text == f"shelfedge edge: topics={topics} origin={ORIGIN_URL}\n"


def test_config_kv_binding_round_trips_a_value(client: httpx.Client) -> None:
    value = uuid.uuid4().hex

    response = client.get(f"/_smoke/kv?{value}")

    assert response.status_code == 200
    assert response.text == f"kv={value}\n"


def test_cache_api_matches_what_it_put(client: httpx.Client) -> None:
    token = uuid.uuid4().hex

    response = client.get(f"/_smoke/cache?{token}")

    assert response.status_code == 200
    assert response.text == f"cache=hit body=cached:{token}\n"


def test_unknown_path_is_not_found(client: httpx.Client) -> None:
    assert client.get("/no-such-path").status_code == 404


def test_stop_ends_wrangler_and_every_workerd(worker_dir: Path, tmp_path: Path) -> None:
    settings = DevSettings(worker_dir=worker_dir, state_dir=tmp_path / "state", port=free_port())
    dev = WranglerDev(settings)
    dev.start()
    try:
        running = dev.process_commands()
        workerd_pids = [pid for pid, command in running.items() if "workerd" in command]
        assert workerd_pids, f"no workerd in wrangler's process group: {running}"
        with httpx.Client(timeout=30.0, trust_env=False) as http:
            assert http.get(f"{dev.base_url}/").status_code == 200
    finally:
        dev.stop()

    survivors = [pid for pid in running if Path(f"/proc/{pid}").exists()]
    assert survivors == []
    deadline = time.monotonic() + 5.0
    while _port_accepts(settings.port) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _port_accepts(settings.port)


def _port_accepts(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False
