"""A replication barrier: wait until the writes Redis acknowledged so far are on its replicas.

Redis replicates asynchronously: a master acknowledges a write before any replica has it, so a
master killed at that moment fails over to a replica without the write. A process that commits
something *after* its Redis writes (the invalidation consumer commits Kafka offsets) can call
`wait_for_replicas` between the two, and then a failover cannot lose what it committed for.

`WAIT n timeout` only covers the writes of the connection it runs on, and pooled clients spread
writes over many connections. The barrier therefore writes a marker (INCR of a key of its own)
and sends WAIT right after it on the same connection, on every master: a master's replication
stream is ordered, so once the marker is on `n` replicas, every write the master acknowledged
before it is too. It writes nothing else and reads no shelfedge data.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from origin.core import keys
from origin.core.redis_client import RedisLike
from origin.core.redis_errors import bounded
from origin.errors import StoreUnavailable


async def wait_for_replicas(redis: RedisLike, replicas: int, within: float) -> None:
    """Return once every master has `replicas` replicas holding its writes so far; raise
    StoreUnavailable if one does not within `within` seconds (a master without enough
    connected replicas, or a failover under way). `replicas` 0 returns at once."""
    if replicas <= 0:
        return
    timeout_ms = max(1, int(within * 1000))
    if isinstance(redis, Redis):
        async with redis.pipeline(transaction=False) as pipe:
            pipe.incr(keys.replication_barrier_key(0))
            pipe.execute_command("WAIT", replicas, timeout_ms)
            acked = await bounded(pipe.execute(), within + 1.0, "wait for replicas")
        _check({"redis": int(acked[1])}, replicas)
        return
    await _wait_cluster(redis, replicas, within, timeout_ms)


async def _wait_cluster(redis: RedisCluster, replicas: int, within: float, ms: int) -> None:
    await bounded(redis.initialize(), within, "discover the cluster")
    async with redis.pipeline(transaction=False) as pipe:
        masters = redis.get_primaries()
        for master in masters:
            pipe.incr(_key_on(redis, master.name))
            pipe.execute_command("WAIT", replicas, ms, target_nodes=master)
        replies = await bounded(pipe.execute(), within + 1.0, "wait for replicas")
    _check({m.name: int(replies[2 * i + 1]) for i, m in enumerate(masters)}, replicas)


def _key_on(redis: RedisCluster, node_name: str) -> str:
    """A barrier key whose slot the master `node_name` serves (a few tries: 3 masters)."""
    for n in range(100_000):
        key = keys.replication_barrier_key(n)
        node = redis.get_node_from_key(key)
        if node is not None and node.name == node_name:
            return key
    raise StoreUnavailable(f"no slot of the cluster is served by master {node_name}")


def _check(acked: dict[str, int], replicas: int) -> None:
    short = {node: n for node, n in acked.items() if n < replicas}
    if short:
        raise StoreUnavailable(
            f"writes not yet on {replicas} replica(s): {short} (a master without enough "
            "connected replicas, or a failover under way); retry"
        )
