"""Builders shared by the event tests: events, signed batches, the experiment they are about."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx

from fragments.batch_signing import SigningKeys, sign_batch
from fragments.experiment_codec import experiment_from_dict, experiment_to_dict
from origin.core import keys
from origin.core.redis_client import RedisLike
from origin.settings import Settings
from tests.origin.experiments.support import hero_experiment, origin_settings

EVENT_KEYS = SigningKeys.parse(
    "edge-old=old-event-key-0123456789abcdef0123456789,"
    "edge-new=new-event-key-0123456789abcdef0123456789"
)
"""Two keys, as during a rotation: the collector accepts both, `signed` signs with the newest."""


def event(kind: str = "exposure", **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "type": kind,
        "experiment": "hero",
        "variant": "control",
        "visitor": "v" + uuid.uuid4().hex[:16],
        "at": time.time(),
        "slot": "home-hero",
    }
    doc.update(fields)
    return doc


def events_settings(redis_url: str, kafka: str | None, **overrides: Any) -> Settings:
    return origin_settings(redis_url, kafka_bootstrap=kafka, event_keys=EVENT_KEYS, **overrides)


def signed(
    body: dict[str, Any] | bytes, keys: SigningKeys = EVENT_KEYS, at: float | None = None
) -> dict[str, Any]:
    """httpx keyword arguments of a POST whose body is signed like the edge signs it."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = sign_batch(keys, raw, time.time() if at is None else at)
    return {"content": raw, "headers": {**headers, "content-type": "application/json"}}


async def post_signed(
    client: httpx.AsyncClient, body: dict[str, Any] | bytes, **kwargs: Any
) -> httpx.Response:
    return await client.post("/v1/events", **signed(body, **kwargs))


async def put_hero(redis: RedisLike) -> None:
    """Store the ``hero`` experiment (variants control and compact) as the admin API would."""
    doc = experiment_to_dict(experiment_from_dict(hero_experiment()))
    await redis.hset(keys.EXPERIMENTS_KEY, "hero", json.dumps(doc))
