"""The Cloudflare Python Worker entry for shelfedge's edge (for now: a smoke-test worker).

It proves, under real workerd, that the assembled worker imports our packages (`fragments`) and
the vendored Jinja2, and that the `CONFIG` KV binding and the Cache API work:
`/` renders a line naming the Kafka topics and the configured `ORIGIN_URL`,
`/_smoke/kv` writes then reads a `CONFIG` key, `/_smoke/cache` puts then matches a cache entry.
The real adapter will replace this body; `build/worker/src/entry.py` re-exports `Default`.

It runs only inside workerd (`workers` and `js` exist nowhere else): it must never be imported
by the edge core, by tests outside workerd, or by any other package.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import jinja2
from js import caches  # type: ignore[import-not-found]
from workers import Request, Response, WorkerEntrypoint  # type: ignore[import-not-found]

from fragments.topics import ALL_TOPICS

_PAGE = jinja2.Environment(
    autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True
).from_string("shelfedge edge: topics={{ topics | join(',') }} origin={{ origin }}\n")
_CACHE_TTL_SECONDS = 60


class Default(WorkerEntrypoint):  # type: ignore[misc]
    """The Worker's default entrypoint: routes the smoke paths."""

    async def fetch(self, request: Request) -> Response:
        """Answer one request."""
        url = urlsplit(request.url)
        if url.path == "/":
            return self._render_home()
        if url.path == "/_smoke/kv":
            return await self._kv_round_trip(url.query or "smoke")
        if url.path == "/_smoke/cache":
            return await self._cache_round_trip(f"{url.scheme}://{url.netloc}", url.query)
        return Response("not found\n", status=404)

    def _render_home(self) -> Response:
        origin = getattr(self.env, "ORIGIN_URL", None) or "(unset)"
        body = _PAGE.render(topics=[topic.name for topic in ALL_TOPICS], origin=origin)
        return Response(body, headers={"content-type": "text/plain; charset=utf-8"})

    async def _kv_round_trip(self, value: str) -> Response:
        await self.env.CONFIG.put("smoke:kv", value)
        stored = await self.env.CONFIG.get("smoke:kv")
        return Response(f"kv={stored}\n")

    async def _cache_round_trip(self, origin: str, token: str) -> Response:
        key = f"{origin}/_smoke/cache-entry?{token}"
        entry = Response(
            f"cached:{token}",
            headers={"cache-control": f"public, max-age={_CACHE_TTL_SECONDS}"},
        )
        await caches.default.put(key, entry.js_object)
        matched = await caches.default.match(key)
        if matched is None:
            return Response("cache=miss\n", status=500)
        return Response(f"cache=hit body={await matched.text()}\n")
