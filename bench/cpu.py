"""CPU time a benchmark phase cost, per record: this process (the consumer) and the Redis server.

Wall-clock rates say how fast; CPU per record says where the time went. On a 2-core machine a
pipeline whose Redis server and consumer process together spend more CPU per record than the
raw consumer's whole budget cannot reach a throughput ratio, however it is arranged.
Process time comes from `time.process_time`; Redis's from its own ``INFO cpu`` counters.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from redis.asyncio import Redis

from bench.errors import BenchRunError


@dataclass(frozen=True, slots=True)
class CpuPerRecord:
    process_us: float
    """CPU time of this process per record (consumer, pipeline, client libraries)."""
    redis_us: float
    """CPU time of the Redis server per record."""

    def __str__(self) -> str:
        return (
            f"CPU per record: this process {self.process_us:.1f} us, Redis {self.redis_us:.1f} us"
        )


class CpuMeter:
    """Measures one phase at a time: `start`, then `stop(records)`."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._started: tuple[float, float] | None = None

    async def start(self) -> None:
        self._started = (time.process_time(), await redis_cpu_seconds(self.redis))

    async def stop(self, records: int) -> CpuPerRecord:
        if self._started is None:
            raise BenchRunError("CpuMeter.stop without start")
        if records <= 0:
            raise BenchRunError("CpuMeter.stop: no records to divide the CPU time by")
        process0, redis0 = self._started
        self._started = None
        process_s = time.process_time() - process0
        redis_s = await redis_cpu_seconds(self.redis) - redis0
        return CpuPerRecord(process_s / records * 1e6, redis_s / records * 1e6)


async def redis_cpu_seconds(redis: Redis) -> float:
    """User + system CPU seconds the Redis server has used since it started."""
    info = await redis.info("cpu")
    try:
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BenchRunError(f"Redis INFO cpu lacks used_cpu_user/used_cpu_sys: {info!r}") from exc
