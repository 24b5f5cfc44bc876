"""The edge's transport: the one interface between the decision core and I/O.

In the spirit of httpx's ``BaseTransport``: the decision (`edge.flow`) is a generator that
*yields* effects and is sent their replies; a transport carries the effects out. There are three
effects, each with its typed reply:

    CacheRead(key)                         -> CacheEntry | None     the edge cache's entry
    OriginFetch(key, path, if_none_match)  -> FetchResult           the origin's answer
    CacheWrite(entry)                      -> None                  store it, with its tags

`Transport` is the synchronous interface and `AsyncTransport` the asynchronous one; each effect
knows which method carries it out (`Effect.via`, `Effect.via_async`), so the drivers in
`edge.flow` are the only code that runs effects and no adapter dispatches on effect types.
`edge.memory.MemoryTransport` is the in-memory implementation (vector runner, tests);
`SyncAsAsync` lets the async driver run a synchronous transport. Adapters implement one of
the two interfaces over their platform's I/O and translate its errors into replies (an origin
that does not answer is ``FetchResult(0, error=...)``), never into exceptions through the core.

Pure: standard library, `fragments` and the edge core only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from edge.cache import CacheEntry
from edge.errors import EffectReplyError
from fragments.ids import FragmentKey


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What the origin answered; status 0 means no answer (network error or timeout)."""

    status: int
    body: bytes = b""
    error: str = ""


Reply = CacheEntry | FetchResult | None
"""Whatever a transport sends back into the flow (each effect narrows it with `reply`)."""


class Transport(Protocol):
    """Synchronous I/O for the edge decision."""

    def cache_read(self, key: FragmentKey) -> CacheEntry | None:
        """The edge cache's entry for ``key``, or None (a miss, or an unusable entry)."""
        ...

    def cache_write(self, entry: CacheEntry) -> None:
        """Store ``entry`` under its bundle's key, with its tags (for purges)."""
        ...

    def origin_fetch(self, fetch: OriginFetch) -> FetchResult:
        """GET ``fetch.path`` from the origin; a failure is ``FetchResult(0, error=...)``."""
        ...


class AsyncTransport(Protocol):
    """Asynchronous I/O for the edge decision (same contract as `Transport`)."""

    async def cache_read(self, key: FragmentKey) -> CacheEntry | None: ...

    async def cache_write(self, entry: CacheEntry) -> None: ...

    async def origin_fetch(self, fetch: OriginFetch) -> FetchResult: ...


@dataclass(frozen=True, slots=True)
class CacheRead:
    """Effect: look the key up in the edge cache; the reply is `CacheEntry | None`."""

    key: FragmentKey

    def via(self, transport: Transport) -> CacheEntry | None:
        return transport.cache_read(self.key)

    async def via_async(self, transport: AsyncTransport) -> CacheEntry | None:
        return await transport.cache_read(self.key)

    def reply(self, value: Reply) -> CacheEntry | None:
        """The reply sent into the flow, checked."""
        if value is None or isinstance(value, CacheEntry):
            return value
        raise EffectReplyError(f"{self} needs CacheEntry | None, the transport sent {value!r}")

    def describe(self, reply: Reply) -> str:
        """One line: the effect and its reply (effect logs, the golden vectors' ``effects``)."""
        return f"read {self.key.cache_key}: {'hit' if reply else 'miss'}"


@dataclass(frozen=True, slots=True)
class OriginFetch:
    """Effect: GET the bundle from the origin; the reply is a `FetchResult`."""

    key: FragmentKey
    path: str
    if_none_match: str | None

    def via(self, transport: Transport) -> FetchResult:
        return transport.origin_fetch(self)

    async def via_async(self, transport: AsyncTransport) -> FetchResult:
        return await transport.origin_fetch(self)

    def reply(self, value: Reply) -> FetchResult:
        """The reply sent into the flow, checked."""
        if isinstance(value, FetchResult):
            return value
        raise EffectReplyError(f"{self} needs a FetchResult, the transport sent {value!r}")

    def describe(self, reply: Reply) -> str:
        """One line: the effect and its reply (effect logs, the golden vectors' ``effects``)."""
        status = self.reply(reply).status
        return f"fetch {self.path} if-none-match={self.if_none_match or '-'}: {status}"


@dataclass(frozen=True, slots=True)
class CacheWrite:
    """Effect: store the entry (with its tags, for purges); the reply is None."""

    entry: CacheEntry

    def via(self, transport: Transport) -> None:
        transport.cache_write(self.entry)

    async def via_async(self, transport: AsyncTransport) -> None:
        await transport.cache_write(self.entry)

    def reply(self, value: Reply) -> None:
        """The reply sent into the flow, checked."""
        if value is not None:
            raise EffectReplyError(f"{self} needs None, the transport sent {value!r}")

    def describe(self, reply: Reply) -> str:
        """One line: the effect (effect logs, the golden vectors' ``effects``)."""
        bundle = self.entry.bundle
        return f"write {bundle.key.cache_key}: version {bundle.version} {bundle.content_hash}"


Effect = CacheRead | OriginFetch | CacheWrite


class SyncAsAsync:
    """An `AsyncTransport` over a synchronous `Transport` (for the async driver in tests)."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    async def cache_read(self, key: FragmentKey) -> CacheEntry | None:
        return self.transport.cache_read(key)

    async def cache_write(self, entry: CacheEntry) -> None:
        self.transport.cache_write(entry)

    async def origin_fetch(self, fetch: OriginFetch) -> FetchResult:
        return self.transport.origin_fetch(fetch)
