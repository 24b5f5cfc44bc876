"""An in-memory edge cache with a tag index: the local edge's store and the tests' reference.

Same interface as the Cloudflare adapter's store (get / put / purge by tag); entries keep their
tags so a purge of any tag removes exactly the entries that carry it.
"""

from __future__ import annotations

from collections.abc import Iterable

from edge.cache import CacheEntry


class MemoryCacheStore:
    """Bundles by cache key, and cache keys by tag."""

    def __init__(self) -> None:
        self._entries: dict[str, CacheEntry] = {}
        self._by_tag: dict[str, set[str]] = {}

    def get(self, cache_key: str) -> CacheEntry | None:
        return self._entries.get(cache_key)

    def put(self, entry: CacheEntry) -> None:
        cache_key = entry.bundle.key.cache_key
        self._drop(cache_key)
        self._entries[cache_key] = entry
        for tag in entry.bundle.tags:
            self._by_tag.setdefault(tag, set()).add(cache_key)

    def purge(self, tags: Iterable[str]) -> int:
        """Remove every entry carrying any of `tags`; return how many were removed."""
        doomed: set[str] = set()
        for tag in tags:
            doomed |= self._by_tag.get(tag, set())
        for cache_key in doomed:
            self._drop(cache_key)
        return len(doomed)

    def __len__(self) -> int:
        return len(self._entries)

    def _drop(self, cache_key: str) -> None:
        old = self._entries.pop(cache_key, None)
        if old is None:
            return
        for tag in old.bundle.tags:
            keys = self._by_tag.get(tag)
            if keys is not None:
                keys.discard(cache_key)
                if not keys:
                    del self._by_tag[tag]
