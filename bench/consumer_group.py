"""One `shelfedge consume` process against two in one group, on the same backlog and broker.

Each run starts from a freshly seeded catalog and a group placed at the log end before the
backlog is produced; the processes are the real CLI (``python -m shelfedge consume``, no
purgers). The rate is measured from the moment the group is stable with all its members (so a
member joining late is not counted as idle time) to the moment the group has committed the whole
backlog: records committed after that moment / seconds (when the group became stable only after
most of the backlog was consumed, as Apache Kafka's rebalance can make it, the run is repeated
with twice the backlog, `run_growing`). CPU per record is the consumer
processes' own (``wait4`` rusage, start-up included) and the Redis server's (``INFO cpu``).

It must never use a broker or Redis it did not start, nor leave a process running.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from redis.asyncio import Redis

from bench.cpu import redis_cpu_seconds
from bench.errors import BenchRunError
from bench.event_source import StreamSpec, produce_backlog
from bench.kafka_tools import start_group_at_end
from bench.processes import REPO_ROOT, child_env, python_module_argv
from bench.seeding import seed_catalog
from fragments import topics

SOURCE_TOPICS = (topics.INVENTORY, topics.PRICE)
POLL_S = 0.05
GROW_ATTEMPTS = 3
"""Runs of one count of processes, the backlog doubling each time the group became stable too
late (`BacklogTooSmall`)."""


class BacklogTooSmall(BenchRunError):
    """The group became stable only after most of the backlog was consumed: nothing left to
    measure (a broker that is slow to settle a group, e.g. Apache Kafka's rebalance, meets a
    fast consumer)."""


@dataclass(frozen=True, slots=True)
class GroupRun:
    processes: int
    records: int
    """Records committed after the group was stable (what the rate counts)."""
    seconds: float
    consumer_us: float
    """CPU of the consumer processes per backlog record (start-up included)."""
    redis_us: float

    @property
    def rate(self) -> float:
        return self.records / self.seconds


class _Group:
    """Reads a group's state (admin API) and committed offsets (a consumer that never joins:
    Tansu 0.6 drops the admin client's offset fetch)."""

    def __init__(self, bootstrap: str, group_id: str) -> None:
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self.reader = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False
        )
        self.group_id = group_id
        self.partitions = [
            TopicPartition(t.name, p) for t in SOURCE_TOPICS for p in range(t.partitions)
        ]

    async def start(self) -> None:
        await self.admin.start()
        await self.reader.start()

    async def close(self) -> None:
        await self.admin.close()
        await self.reader.stop()

    async def members(self) -> int:
        """Members of the group when it is Stable, else 0."""
        try:
            [response] = await self.admin.describe_consumer_groups([self.group_id])
        except KafkaError as exc:
            if exc.retriable:
                return 0
            raise
        group = response.groups[0]
        return len(group[5]) if group[2] == "Stable" else 0

    async def committed(self) -> int:
        total = 0
        for tp in self.partitions:
            offset = await self.reader.committed(tp)
            total += offset if offset is not None and offset > 0 else 0
        return total


def _start(count: int, env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen(
            python_module_argv("shelfedge", ["consume"]),
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]


def _stop(procs: list[subprocess.Popen[bytes]]) -> float:
    """SIGTERM every process, reap it, and return their CPU seconds (user + system)."""
    cpu = 0.0
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    for proc in procs:
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                cpu += usage.ru_utime + usage.ru_stime
                break
            if time.monotonic() > deadline:
                proc.kill()
                deadline = time.monotonic() + 10
            time.sleep(0.05)
    return cpu


async def run_group(
    bootstrap: str,
    redis: Redis,
    redis_url: str,
    *,
    processes: int,
    backlog: int,
    spec: StreamSpec,
    window_ms: int,
    timeout: float,  # noqa: ASYNC109 - the deadline is the point
) -> GroupRun:
    """Seed afresh, produce `backlog` events of `spec`, consume them with `processes`."""
    group_id = f"bench-group-{processes}-{spec.id_prefix}"
    await seed_catalog(redis_url, flush=True)
    base = await start_group_at_end(bootstrap, group_id, SOURCE_TOPICS)
    await produce_backlog(bootstrap, spec, backlog)
    target = base + backlog
    env = child_env(
        {
            "REDIS_URL": redis_url,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "SHELFEDGE_CONSUMER_GROUP": group_id,
            "SHELFEDGE_PURGERS": "",
            "SHELFEDGE_CONSUMER_METRICS_PORT": "0",
            "SHELFEDGE_COALESCE_MS": str(window_ms),
            "SHELFEDGE_CONSUMER_SESSION_TIMEOUT_MS": "6000",
        }
    )
    group = _Group(bootstrap, group_id)
    await group.start()
    redis0 = await redis_cpu_seconds(redis)
    procs = _start(processes, env)
    cpu = 0.0
    try:
        deadline = time.monotonic() + timeout
        while await group.members() < processes:
            _check(procs, deadline, "the group to be stable with all members")
            await asyncio.sleep(POLL_S)
        stable_at = time.monotonic()
        committed_at_stable = await group.committed()
        while (committed := await group.committed()) < target:
            _check(procs, deadline, f"the group to commit the backlog ({committed}/{target})")
            await asyncio.sleep(POLL_S)
        finished = time.monotonic()
    finally:
        cpu = _stop(procs)
        await group.close()
    redis_s = await redis_cpu_seconds(redis) - redis0
    records = target - committed_at_stable
    if records <= backlog // 4:
        raise BacklogTooSmall(
            f"{processes} process(es): only {records} of {backlog} records were left when the"
            " group became stable"
        )
    return GroupRun(
        processes, records, finished - stable_at, cpu / backlog * 1e6, redis_s / backlog * 1e6
    )


async def run_growing(
    run: Callable[[int], Awaitable[GroupRun]],
    backlog: int,
    say: Callable[[str], None],
    attempts: int = GROW_ATTEMPTS,
) -> GroupRun:
    """`run(backlog)`; while it finds too little left once the group is stable, again with
    twice the backlog, at most `attempts` runs in all (then the last `BacklogTooSmall`)."""
    for attempt in range(attempts):
        try:
            return await run(backlog)
        except BacklogTooSmall as exc:
            if attempt + 1 >= attempts:
                raise
            say(f"    {exc}: again with {2 * backlog}")
            backlog *= 2
    raise ValueError(f"attempts must be at least 1, got {attempts}")


def _check(procs: list[subprocess.Popen[bytes]], deadline: float, waiting_for: str) -> None:
    for proc in procs:
        if proc.poll() is not None:
            raise BenchRunError(f"shelfedge consume exited with {proc.returncode}")
    if time.monotonic() > deadline:
        raise BenchRunError(f"timed out waiting for {waiting_for}")
