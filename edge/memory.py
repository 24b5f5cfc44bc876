"""In-memory edge cache and transport: the local edge's store, the vector runner's and tests' world.

`MemoryCacheStore` holds entries by cache key with a tag index, so a purge of any tag removes
exactly the entries that carry it (or, soft, marks them stale: `invalidate`). `MemoryTransport`
is the in-memory `edge.transport.Transport`
(as httpx's ``MockTransport`` is for httpx): cache effects go to a `MemoryCacheStore`, origin
fetches to a handler the caller supplies, and every effect is logged with its reply.

Pure: standard library, `fragments` and the edge core only (it runs under Pyodide and WASI).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from edge.cache import CacheEntry
from edge.transport import CacheRead, CacheWrite, Effect, FetchResult, OriginFetch, Reply
from fragments.ids import FragmentKey

OriginHandler = Callable[[OriginFetch], FetchResult]
"""Answers an origin fetch (a scripted origin)."""


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

    def invalidate(self, tags: Iterable[str], now: float) -> int:
        """Mark every entry carrying any of `tags` stale (its age reaches max-age now, so it is
        served while revalidated with its ETag); return how many were marked."""
        marked: set[str] = set()
        for tag in tags:
            marked |= self._by_tag.get(tag, set())
        for cache_key in marked:
            entry = self._entries[cache_key]
            self._entries[cache_key] = entry.marked_stale(now)
        return len(marked)

    def snapshot(self) -> dict[str, CacheEntry]:
        """A copy of the entries by cache key."""
        return dict(self._entries)

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


@dataclass(slots=True)
class MemoryTransport:
    """A `Transport` over a `MemoryCacheStore` and an origin handler, logging every effect."""

    origin: OriginHandler
    store: MemoryCacheStore = field(default_factory=MemoryCacheStore)
    record: bool = True
    """Log effects (off for benchmarks, whose loops would grow the log without bound)."""
    log: list[tuple[Effect, Reply]] = field(default_factory=list)
    """Every effect carried out, with its reply, in order."""

    def cache_read(self, key: FragmentKey) -> CacheEntry | None:
        entry = self.store.get(key.cache_key)
        if self.record:
            self.log.append((CacheRead(key), entry))
        return entry

    def cache_write(self, entry: CacheEntry) -> None:
        self.store.put(entry)
        if self.record:
            self.log.append((CacheWrite(entry), None))

    def origin_fetch(self, fetch: OriginFetch) -> FetchResult:
        result = self.origin(fetch)
        if self.record:
            self.log.append((fetch, result))
        return result

    def effects(self) -> list[Effect]:
        """The effects carried out, in order."""
        return [effect for effect, _ in self.log]

    def described(self, start: int = 0) -> list[str]:
        """One line per effect from ``log[start]`` on (`Effect.describe`)."""
        return [effect.describe(reply) for effect, reply in self.log[start:]]
