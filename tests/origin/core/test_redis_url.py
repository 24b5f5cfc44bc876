"""The Redis URL grammar (origin.core.redis_url), REDIS_URL parsing, and the replica barrier."""

from __future__ import annotations

import pytest

from origin.core.env import env_redis_url
from origin.core.redis_client import RedisLike
from origin.core.redis_replication import wait_for_replicas
from origin.core.redis_url import as_cluster_url, cluster_target, is_cluster_url
from origin.errors import RedisUrlError, SettingsError, StoreUnavailable
from tests.support.redis_topology import CLUSTER


@pytest.mark.parametrize(
    ("url", "seeds", "node_url"),
    [
        ("redis+cluster://a:7000", (("a", 7000),), "redis://a:7000"),
        (
            "rediss+cluster://u:p%40w@a:7000, b:7001/?ssl_cert_reqs=none",
            (("a", 7000), ("b", 7001)),
            "rediss://u:p%40w@a:7000/?ssl_cert_reqs=none",
        ),
        ("redis+cluster://[::1]:7000,10.0.0.2:7001/0", (("::1", 7000), ("10.0.0.2", 7001)),
         "redis://[::1]:7000/0"),
    ],
)  # fmt: skip
def test_cluster_urls_name_their_seeds(
    url: str, seeds: tuple[tuple[str, int], ...], node_url: str
) -> None:
    assert is_cluster_url(url)
    target = cluster_target(url)
    assert (target.seeds, target.node_url) == (seeds, node_url)


@pytest.mark.parametrize("url", ["redis+cluster://a", "redis+cluster://a:7000,b", "redis://a:1"])
def test_bad_cluster_urls_say_what_is_wrong(url: str) -> None:
    with pytest.raises(RedisUrlError, match="cluster"):
        cluster_target(url)


def test_env_chooses_the_topology_and_never_echoes_a_password() -> None:
    assert env_redis_url({"REDIS_URL": "redis://h:1/0"}) == "redis://h:1/0"
    assert env_redis_url({"REDIS_URL": "rediss://h:1", "SHELFEDGE_REDIS_CLUSTER": "1"}) == (
        "rediss+cluster://h:1"
    )
    assert as_cluster_url("redis+cluster://h:1") == "redis+cluster://h:1"
    assert env_redis_url({}) is None
    with pytest.raises(SettingsError, match="SHELFEDGE_REDIS_CLUSTER") as bad_flag:
        env_redis_url({"REDIS_URL": "redis://h:1", "SHELFEDGE_REDIS_CLUSTER": "maybe"})
    assert "maybe" in str(bad_flag.value)
    for env in (
        {"REDIS_URL": "redis+cluster://user:hunter2@h"},
        {"REDIS_URL": "unix:///s.sock", "SHELFEDGE_REDIS_CLUSTER": "1"},
        {"REDIS_URL": "http://user:hunter2@h:1"},
    ):
        with pytest.raises(SettingsError, match="REDIS_URL") as caught:
            env_redis_url(env)
        assert "hunter2" not in str(caught.value)


async def test_the_replica_barrier_waits_on_the_cluster_and_refuses_without_replicas(
    redis_client: RedisLike, redis_topology: str
) -> None:
    await redis_client.set("{barrier-test}:a", "1")
    await wait_for_replicas(redis_client, 0, 0.1)  # 0: no wait, no I/O
    if redis_topology == CLUSTER:
        await wait_for_replicas(redis_client, 1, 5.0)  # every master has one synced replica
        with pytest.raises(StoreUnavailable, match="replica"):
            await wait_for_replicas(redis_client, 2, 0.2)
    else:
        with pytest.raises(StoreUnavailable, match="not yet on 1 replica"):
            await wait_for_replicas(redis_client, 1, 0.2)
