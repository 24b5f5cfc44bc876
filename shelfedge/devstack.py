"""``shelfedge dev`` (``make run``): the whole local stack, one Ctrl-C to stop it all.

Starts Redis (one `redis-server`, or with ``--redis-cluster`` a six-node Redis Cluster: three
masters, three replicas) and the Kafka-protocol broker (unless REDIS_URL /
KAFKA_BOOTSTRAP_SERVERS point at running ones), creates the topics, loads the demo catalog,
then runs the origin, the local edge, the invalidation consumer, the experiment event
aggregator, a gentle demo event stream and the freshness canary (``shelfedge canary``,
metrics on port 8602) as child processes (each in its own process group,
killed with the supervisor), prints the URLs to open and shows a live status view: events/s,
consumer lag, edge cache hit ratio, purges, and the canary's mean freshness and when it last
saw its change at the edge.

Without SHELFEDGE_ADMIN_TOKENS it makes a random editor token for this run (named ``dev``),
hands it to the children and prints it once: the admin API's bearer token for local use.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.live import Live
from rich.table import Table

from fragments import topics
from invalidation.settings import InvalidationSettings
from origin.errors import SettingsError
from origin.settings import Settings
from origin.web.serve import seed_command
from shelfedge.canary_command import metrics_port_of
from shelfedge.localstack import KafkaBroker, RedisCluster, RedisServer, ensure_topics
from shelfedge.localstack.process import ServiceProcess, log_tail, spawn

READY_TIMEOUT = 45.0
DEMO_EVENT_RATE = 20.0
CANARY_INTERVAL_S = 15.0
"""The freshness canary's round interval in the dev stack (its metrics: port 8602)."""


@dataclass(slots=True)
class _Child:
    name: str
    process: ServiceProcess
    log: Path


def _dev_admin_token(settings: Settings) -> str | None:
    """A fresh editor token when none is configured (None: the configured ones apply)."""
    return None if settings.admin_tokens else secrets.token_urlsafe(24)


def _child_env(
    settings: Settings, consumer_metrics_port: int, admin_token: str | None = None
) -> dict[str, str]:
    env = dict(os.environ)
    if admin_token is not None:
        env["SHELFEDGE_ADMIN_TOKENS"] = f"dev={admin_token}:editor"
    env.update(
        {
            "REDIS_URL": settings.redis_url or "",
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap or "",
            "SHELFEDGE_ORIGIN_PORT": str(settings.origin_port),
            "SHELFEDGE_EDGE_PORT": str(settings.edge_port),
            "SHELFEDGE_CONSUMER_METRICS_PORT": str(consumer_metrics_port),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _wait_http(url: str, child: _Child, deadline: float) -> None:
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise RuntimeError(f"{child.name} exited while starting:\n{log_tail(child.log)}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{child.name} did not answer {url} in time:\n{log_tail(child.log)}")


@contextmanager
def _services(settings: Settings, workdir: Path, redis_cluster: bool) -> Iterator[Settings]:
    with ExitStack() as stack:
        if redis_cluster:
            cluster = stack.enter_context(RedisCluster())  # its __enter__ starts it
            settings = replace(settings, redis_url=cluster.url)
        elif settings.redis_url is None:
            redis = stack.enter_context(RedisServer(workdir=workdir / "redis").start())
            settings = replace(settings, redis_url=redis.url)
        if settings.kafka_bootstrap is None:
            broker = stack.enter_context(KafkaBroker(workdir=workdir / "kafka").start())
            settings = replace(settings, kafka_bootstrap=broker.bootstrap)
        yield settings


def run_dev_stack(
    settings: Settings, consumer: InvalidationSettings, *, redis_cluster: bool = False
) -> int:
    """Run the stack until Ctrl-C; `redis_cluster` starts a local Redis Cluster for it."""
    if redis_cluster and settings.redis_url is not None:
        raise SettingsError(
            "REDIS_URL",
            "unset with --redis-cluster (which starts a local cluster; to use a cluster of "
            "your own, set REDIS_URL=redis+cluster://host:port,... without the flag)",
            "<set>",
        )
    console = Console()
    workdir = Path(tempfile.mkdtemp(prefix="shelfedge-dev-"))
    children: list[_Child] = []
    try:
        with _services(settings, workdir, redis_cluster) as live_settings:
            console.print(f"[green]✓[/] redis {live_settings.redis_url}")
            console.print(f"[green]✓[/] kafka {live_settings.kafka_bootstrap}")
            asyncio.run(ensure_topics(live_settings.kafka_bootstrap or "", topics.ALL_TOPICS))
            asyncio.run(seed_command(live_settings, None))
            admin_token = _dev_admin_token(live_settings)
            env = _child_env(live_settings, consumer.consumer_metrics_port, admin_token)
            python = sys.executable
            for name, args in (
                ("origin", ["origin"]),
                ("edge", ["edge"]),
                ("consumer", ["consume"]),
                ("aggregator", ["aggregate"]),
                ("events", ["events", "--rate", str(DEMO_EVENT_RATE), "--duration", "0"]),
                ("canary", ["canary", "--interval", str(CANARY_INTERVAL_S)]),
            ):
                log = workdir / f"{name}.log"
                children.append(
                    _Child(
                        name, spawn([python, "-m", "shelfedge", *args], log_path=log, env=env), log
                    )
                )
            deadline = time.monotonic() + READY_TIMEOUT
            origin_url = f"http://127.0.0.1:{live_settings.origin_port}"
            edge_url = f"http://127.0.0.1:{live_settings.edge_port}"
            _wait_http(origin_url + "/readyz", children[0], deadline)
            _wait_http(edge_url + "/se/metrics", children[1], deadline)
            console.print(f"\n[bold]Storefront (through the edge):[/] {edge_url}/")
            console.print(f"[bold]Admin UI (experiments):[/] {origin_url}/admin")
            console.print(f"[bold]Origin API:[/] {origin_url}/openapi.json")
            if admin_token is not None:
                console.print(
                    f"[bold]Admin API token (editor, this run only):[/] {admin_token}\n"
                    f'  curl -H "Authorization: Bearer {admin_token}" {origin_url}/v1/experiments'
                )
            else:
                console.print("[bold]Admin API tokens:[/] from SHELFEDGE_ADMIN_TOKENS")
            console.print(f"[bold]Logs:[/] {workdir}\n[dim]Ctrl-C stops everything.[/]\n")
            _status_loop(console, live_settings, consumer.consumer_metrics_port, children)
    except KeyboardInterrupt:
        console.print("\n[yellow]stopping…[/]")
    finally:
        for child in reversed(children):
            child.process.terminate(grace=5.0)
    console.print("[green]stopped[/]")
    return 0


def _scrape(url: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample (name, labels, value) of a Prometheus endpoint; empty if it is down."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            text = response.read().decode()
    except OSError:
        return []
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def _total(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    return sum(
        value
        for sample_name, sample_labels, value in samples
        if sample_name == name and all(sample_labels.get(k) == v for k, v in labels.items())
    )


def _canary_text(samples: list[tuple[str, dict[str, str], float]]) -> str:
    """The canary's mean freshness and last success age (``-`` before its first round)."""
    rounds = _total(samples, "shelfedge_canary_freshness_seconds_count")
    last = _total(samples, "shelfedge_canary_last_success_timestamp_seconds")
    if not rounds or not last:
        return "-"
    mean = _total(samples, "shelfedge_canary_freshness_seconds_sum") / rounds
    return f"{mean:.2f}s ({time.time() - last:.0f}s ago)"


def _status_loop(
    console: Console, settings: Settings, consumer_metrics_port: int, children: list[_Child]
) -> None:
    consumer_url = f"http://127.0.0.1:{consumer_metrics_port}/metrics"
    canary_url = f"http://127.0.0.1:{metrics_port_of(None)}/metrics"
    edge_url = f"http://127.0.0.1:{settings.edge_port}/se/metrics"
    previous_events = 0.0
    previous_at = time.monotonic()
    with Live(console=console, auto_refresh=False, transient=False) as live:
        while True:
            time.sleep(1.0)
            for child in children:
                if child.process.poll() is not None:
                    raise RuntimeError(f"{child.name} exited:\n{log_tail(child.log)}")
            c = _scrape(consumer_url)
            e = _scrape(edge_url)
            k = _scrape(canary_url)
            now = time.monotonic()
            consumed = _total(c, "shelfedge_events_total", outcome="consumed")
            rate = (consumed - previous_events) / max(now - previous_at, 1e-6)
            previous_events, previous_at = consumed, now
            hits = _total(e, "shelfedge_edge_requests_total", cache="HIT") + _total(
                e, "shelfedge_edge_requests_total", cache="STALE"
            )
            total = _total(e, "shelfedge_edge_requests_total")
            table = Table(title="shelfedge dev stack", show_header=True)
            for column in (
                "events/s",
                "events",
                "lag",
                "hit ratio",
                "slot requests",
                "purges",
                "purge queue",
                "canary",
            ):
                table.add_column(column, justify="right")
            table.add_row(
                f"{rate:.1f}",
                f"{consumed:.0f}",
                f"{_total(c, 'shelfedge_consumer_lag'):.0f}",
                f"{(hits / total * 100) if total else 0.0:.1f}%",
                f"{total:.0f}",
                f"{_total(c, 'shelfedge_purge_requests_total', outcome='ok'):.0f}",
                f"{_total(c, 'shelfedge_purge_queue_depth'):.0f}",
                _canary_text(k),
            )
            live.update(table, refresh=True)
