"""Imported recommendation lists in Redis: versioned, replaced whole, read whole.

Each list is one HASH in its own hash slot (`origin.core.keys.imported_list_key`). One script
compares versions and replaces the list's fields together, so a reader (HMGET) sees the old
list or the new one, never a mix, and a list event delivered twice or out of order changes
nothing (a version not above the stored one is stale). The list's id is added to the listing
SET before the list is written (a stored list is always listed).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from origin.core import keys
from origin.core.lists import ImportedList, RankedItem, items_from_json
from origin.core.redis_client import RedisLike
from origin.core.redis_errors import bounded
from origin.core.redis_scripts import queue_script
from origin.core.redis_text import as_text

_PUT_LIST = """
-- KEYS[1] the list's hash. ARGV: version, items JSON, updated ms.
-- Returns {status, previous version}: status 'c' created, 'r' replaced with other items,
-- 'u' replaced with the same items (version moved), 's' stale (version not above the stored).
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if tonumber(ARGV[1]) <= current then return {'s', current} end
local before = redis.call('HGET', KEYS[1], 'items')
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'items', ARGV[2], 'updated_ms', ARGV[3])
if not before then return {'c', current} end
if before == ARGV[2] then return {'u', current} end
return {'r', current}
"""

PutStatus = Literal["created", "replaced", "unchanged", "stale"]
_STATUSES: dict[str, PutStatus] = {
    "c": "created",
    "r": "replaced",
    "u": "unchanged",
    "s": "stale",
}


@dataclass(frozen=True, slots=True)
class StoredList:
    """A list as stored: its version and items."""

    version: int
    items: tuple[RankedItem, ...]


@dataclass(frozen=True, slots=True)
class PutListOutcome:
    status: PutStatus
    previous_version: int


class ListStore:
    """Reads and replaces imported lists."""

    def __init__(self, redis: RedisLike, timeout: float = 2.0) -> None:
        self.redis = redis
        self.timeout = timeout
        self._put = redis.register_script(_PUT_LIST)

    async def put_many(self, lists: Sequence[ImportedList]) -> list[PutListOutcome]:
        """Replace each list if its version is newer (each replacement atomic, one slot each)."""
        if not lists:
            return []
        now = str(int(time.time() * 1000))
        await bounded(
            self.redis.sadd(keys.IMPORTED_LISTS_KEY, *{lst.id for lst in lists}),
            self.timeout,
            "index lists",
        )
        async with self.redis.pipeline(transaction=False) as pipe:
            for lst in lists:
                await queue_script(
                    self._put,
                    pipe,
                    [keys.imported_list_key(lst.id)],
                    [str(lst.version), lst.items_json(), now],
                )
            rows: list[Any] = await bounded(pipe.execute(), max(self.timeout, 5.0), "put lists")
        return [PutListOutcome(_STATUSES[as_text(status)], int(prev)) for status, prev in rows]

    async def get_many(self, list_ids: Sequence[str]) -> dict[str, StoredList]:
        """The stored lists among `list_ids` (missing ones are absent); one pipeline."""
        if not list_ids:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for list_id in list_ids:
                pipe.hmget(keys.imported_list_key(list_id), ["version", "items"])
            rows: list[Any] = await bounded(pipe.execute(), max(self.timeout, 2.0), "read lists")
        return {
            list_id: StoredList(int(version), items_from_json(items))
            for list_id, (version, items) in zip(list_ids, rows, strict=True)
            if version is not None and items is not None
        }

    async def get(self, list_id: str) -> StoredList | None:
        return (await self.get_many([list_id])).get(list_id)

    async def ids(self) -> list[str]:
        members = await bounded(
            self.redis.smembers(keys.IMPORTED_LISTS_KEY), max(self.timeout, 5.0), "list lists"
        )
        return sorted(as_text(m) for m in members)

    async def unknown_skus(self, skus: Sequence[str]) -> list[str]:
        """Those of `skus` that are not in the catalog (SMISMEMBER on the catalog's SKU set)."""
        if not skus:
            return []
        found: list[Any] = await bounded(
            self.redis.smismember(keys.CATALOG_SKUS_KEY, list(skus)),
            max(self.timeout, 5.0),
            "check skus",
        )
        return [sku for sku, present in zip(skus, found, strict=True) if not present]
