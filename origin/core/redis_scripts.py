"""Queue a registered Lua script in a pipeline, on one node or on a Redis Cluster.

On one node, redis-py's pipeline loads every script it queued (SCRIPT EXISTS / SCRIPT LOAD)
before it sends the batch, then calls it by SHA. A cluster pipeline does neither: it splits the
batch per node and would send EVALSHA to a master that may never have seen the script (a node
started after the others, or a replica just promoted by a failover: the script cache is neither
persisted nor replicated), failing with NOSCRIPT mid-batch. So in a cluster pipeline the script
goes as EVAL with its body: the node compiles it once and caches it; the extra bytes are the
script text per call. Every script shelfedge runs keeps its keys in one hash slot.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline
from redis.commands.core import AsyncScript
from redis.typing import EncodableT, KeyT

AnyPipeline = Pipeline | ClusterPipeline
"""A pipeline of either topology (`origin.core.redis_client.RedisLike.pipeline()`)."""


async def queue_script(
    script: AsyncScript,
    pipe: AnyPipeline,
    keys: Sequence[KeyT],
    args: Sequence[EncodableT],
) -> None:
    """Add one call of `script` to `pipe` (replies come back with `pipe.execute()`)."""
    if isinstance(pipe, ClusterPipeline):
        body = script.script
        pipe.eval(body if isinstance(body, str) else bytes(body).decode(), len(keys), *keys, *args)
        return
    await script(keys=keys, args=args, client=pipe)
