"""The Redis Cluster fixture against real nodes, driven by redis-py's asyncio cluster client.

Six `redis-server --cluster-enabled yes` nodes (`shelfedge.localstack.RedisCluster`): three masters
with a synced replica each; a cluster client reaches every slot while a plain client on one
node is redirected; a multi-key command must keep its keys in one slot (hash tags); a master
killed with SIGKILL fails over to its replica with its acknowledged writes, and comes back as a
replica.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode as ClientNode
from redis.asyncio.cluster import RedisCluster as ClusterClient
from redis.exceptions import MovedError, RedisClusterException, ResponseError

from shelfedge.localstack import RedisCluster
from shelfedge.localstack.redis_cluster import cluster_problems, parse_cluster_nodes

NODES_REPLY = """\
07c3 127.0.0.1:30004@31004 slave e7d1 0 1426238317239 4 connected
67ed 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922
e7d1 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460
6ec2 127.0.0.1:30003@31003 master,fail - 1426238317741 1426238317741 3 connected
824f :0@0 master,noaddr - 1426238317741 0 0 disconnected
"""


def test_cluster_nodes_replies_are_parsed() -> None:
    nodes = {n.port: n for n in parse_cluster_nodes(NODES_REPLY)}
    assert sorted(nodes) == [30001, 30002, 30003, 30004]
    assert nodes[30004].role == "slave"
    assert nodes[30004].master_id == "e7d1"
    assert nodes[30001].role == "master"
    assert nodes[30001].has_slots
    assert nodes[30003].failed
    assert not nodes[30003].has_slots


def test_cluster_problems_name_what_is_missing() -> None:
    nodes = parse_cluster_nodes(NODES_REPLY)
    problems = cluster_problems(nodes, [30001, 30002, 30003, 30004, 30005])
    assert "nodes [30005] not in the view" in problems
    assert "2 masters with slots, not 3" in problems
    assert "master on port 30002 has no connected replica" in problems
    assert not any("30001" in p for p in problems)


def owner_port(client: ClusterClient, key: str) -> int:
    """The port of the master that serves `key`'s slot, as the client's slot table says."""
    node = client.get_node_from_key(key)
    assert node is not None, f"the client has no node for {key!r}: not initialized?"
    return int(node.port)


def client_on(cluster: RedisCluster) -> ClusterClient:
    return ClusterClient(
        startup_nodes=[ClientNode(host, port) for host, port in cluster.startup_nodes],
        decode_responses=True,
    )


async def test_three_masters_each_with_a_synced_replica(redis_cluster: RedisCluster) -> None:
    view = redis_cluster.view()
    assert cluster_problems(view, redis_cluster.ports) == []
    masters = redis_cluster.masters()
    assert len(masters) == 3
    replicas = [n for n in view if n.role == "slave"]
    assert sorted(n.master_id or "" for n in replicas) == sorted(m.node_id for m in masters)


async def test_a_cluster_client_reaches_every_slot_and_one_node_redirects(
    redis_cluster: RedisCluster,
) -> None:
    prefix = uuid.uuid4().hex[:8]
    keys = [f"{prefix}:{n}" for n in range(300)]
    client = client_on(redis_cluster)
    try:
        for key in keys:
            await client.set(key, key)
        assert [await client.get(key) for key in keys] == keys
        owners = {owner_port(client, key) for key in keys}
        assert owners == {m.port for m in redis_cluster.masters()}
        # Keys in one slot (a hash tag) may go together; keys in several may not.
        await client.mset({f"{{{prefix}}}:a": "1", f"{{{prefix}}}:b": "2"})
        assert await client.mget(f"{{{prefix}}}:a", f"{{{prefix}}}:b") == ["1", "2"]
        with pytest.raises((RedisClusterException, ResponseError), match=r"(?i)slot"):
            await client.execute_command("MSET", keys[0], "x", keys[1], "y", keys[2], "z")
    finally:
        await client.aclose()
    first = redis_cluster.masters()[0]
    plain = Redis(host="127.0.0.1", port=first.port, decode_responses=True)
    try:
        elsewhere = next(k for k in keys if owner_port(client, k) != first.port)
        with pytest.raises(MovedError) as moved:
            await plain.get(elsewhere)
        assert str(moved.value).endswith(f"127.0.0.1:{owner_port(client, elsewhere)}")
    finally:
        await plain.aclose()


@pytest.mark.timeout(90)
async def test_a_killed_master_fails_over_with_its_acknowledged_writes(
    redis_cluster: RedisCluster,
) -> None:
    client = client_on(redis_cluster)
    try:
        await client.initialize()
        victim = redis_cluster.masters()[0]
        prefix = uuid.uuid4().hex[:8]
        keys = [
            key
            for key in (f"{prefix}:{n}" for n in range(600))
            if owner_port(client, key) == victim.port
        ]
        assert len(keys) > 100
        # Written on the victim itself, and WAIT until its replica acknowledged them.
        direct = Redis(host="127.0.0.1", port=victim.port, decode_responses=True)
        try:
            for key in keys:
                await direct.set(key, key)
            acknowledged = await direct.execute_command("WAIT", 1, 5000)  # type: ignore[no-untyped-call]
            assert acknowledged == 1
        finally:
            await direct.aclose()

        killed = redis_cluster.kill_master(0)
        assert killed.node.node_id == victim.node_id
        promoted = await asyncio.to_thread(redis_cluster.wait_for_failover, killed, 30.0)
        assert promoted.node_id in killed.replica_ids

        # The same client finds the new master and reads every acknowledged write there.
        async with asyncio.timeout(30):
            while True:
                try:
                    values = [await client.get(key) for key in keys]
                    break
                except (ConnectionError, OSError, RedisClusterException):
                    await asyncio.sleep(0.2)
        assert values == keys
        assert owner_port(client, keys[0]) == promoted.port
        await client.set(keys[0], "after the failover")
        assert await client.get(keys[0]) == "after the failover"
    finally:
        await client.aclose()

    redis_cluster.restart(killed.node.port)
    await asyncio.to_thread(redis_cluster.wait_until_healthy, 30.0)
    back = next(n for n in redis_cluster.view() if n.port == killed.node.port)
    assert back.role == "slave"
    assert back.master_id == promoted.node_id
