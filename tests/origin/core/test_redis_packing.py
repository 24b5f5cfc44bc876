"""`origin.core.redis_packing`: hiredis packing sends the RESP bytes redis-py's packer sends."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import DataError

from origin.core.redis_client import redis_client
from origin.core.redis_packing import HiredisPacking, with_hiredis_packing

PACKED = with_hiredis_packing(Connection)


def both(*args: Any) -> tuple[bytes, bytes]:
    ours = b"".join(PACKED().pack_command(*args))
    theirs = b"".join(Connection().pack_command(*args))
    return ours, theirs


@pytest.mark.parametrize(
    "args",
    [
        ("SET", "key", "value"),
        ("EVALSHA", b"abc", 2, "k1", "k2", -7, 0, 2**53 - 1, 1.5, "", b"", "café ☕"),
        ("CONFIG GET", "maxmemory"),
        (b"CLIENT SETNAME", b"name"),
        ("SET", "k", memoryview(b"view"), bytearray(b"array")),
    ],
    ids=["plain", "mixed-types", "two-word-command", "two-word-bytes", "buffers"],
)
def test_same_bytes_as_redis_py(args: tuple[Any, ...]) -> None:
    ours, theirs = both(*args)
    assert ours == theirs


def test_pack_commands_concatenates_in_order() -> None:
    commands = [("SET", "a", 1), ("GET", "a"), ("DEL", "a", "b")]
    ours = b"".join(PACKED().pack_commands(commands))
    assert ours == b"".join(Connection().pack_commands(commands))


@pytest.mark.parametrize("bad", [None, True, object()], ids=["none", "bool", "object"])
def test_unencodable_argument_is_a_data_error(bad: Any) -> None:
    with pytest.raises(DataError):
        PACKED().pack_command("SET", "k", bad)


def test_each_connection_class_gets_one_packing_subclass() -> None:
    for base in (Connection, UnixDomainSocketConnection, SSLConnection):
        packed = with_hiredis_packing(base)
        assert issubclass(packed, base)
        assert issubclass(packed, HiredisPacking)
        assert with_hiredis_packing(base) is packed
        assert with_hiredis_packing(packed) is packed


@pytest.mark.parametrize(
    ("url", "base"),
    [("redis://127.0.0.1:1/0", Connection), ("unix:///tmp/none.sock", UnixDomainSocketConnection)],
)
def test_redis_client_packs_with_hiredis_for_every_scheme(url: str, base: type) -> None:
    client = redis_client(url, timeout_ms=250)
    assert isinstance(client, Redis)
    cls = client.connection_pool.connection_class
    assert issubclass(cls, HiredisPacking)
    assert issubclass(cls, base)


async def test_round_trip_against_real_redis(redis_url: str) -> None:
    client = redis_client(redis_url, timeout_ms=250)
    try:
        await client.set("{packing}:test", "café ☕")
        assert await client.get("{packing}:test") == "café ☕".encode()
        async with client.pipeline(transaction=False) as pipe:
            pipe.rpush("{packing}:list", *range(1000))
            pipe.lrange("{packing}:list", 998, -1)
            pipe.delete("{packing}:list", "{packing}:test")
            replies = await pipe.execute()
        assert replies == [1000, [b"998", b"999"], 2]
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("redis+cluster://127.0.0.1:1,127.0.0.1:2", Connection),
        ("rediss+cluster://user:pw@127.0.0.1:1,127.0.0.1:2/?ssl_cert_reqs=none", SSLConnection),
    ],
)
def test_a_cluster_client_packs_with_hiredis_on_every_node(url: str, base: type) -> None:
    client = redis_client(url, timeout_ms=250)
    assert isinstance(client, RedisCluster)
    classes = [client.connection_kwargs["connection_class"]]
    classes += [node.connection_class for node in client.nodes_manager.startup_nodes.values()]
    assert sorted(client.nodes_manager.startup_nodes) == ["127.0.0.1:1", "127.0.0.1:2"]
    for cls in classes:
        assert issubclass(cls, HiredisPacking)
        assert issubclass(cls, base)
