"""The catalog core: what the origin service and the invalidation consumer share.

It owns the catalog values (`catalog`), the demo catalog (`demo_catalog`, `seed`), scoring
(`scoring`), list and bundle building (`builder`, `variants`), recomputation (`recompute`), the
Redis key layout (`keys`), the store and its Lua (`store`), the published experiment
configurations the bundles are built for (`config_store`), the whole purge queue, enqueue and
drain (`purge_queue`), imported recommendation lists (`lists`, `list_store`, `list_import`,
`list_candidates`), segments as configuration (`segments_config`, `segment_changes`), the HTTP
envelope of a stored bundle (`envelope`), the settings parsers (`env`), and the Redis client and
its error translation (`redis_client`, `redis_errors`, `redis_packing`, `redis_text`).

It never imports the web service (`origin.web`), the experiment or event services, the
invalidation consumer or the entry point (`shelfedge`); a contract in `make test` keeps it so.
Its exceptions are `origin.errors`' (``StoreUnavailable`` for a Redis that does not answer in
time, ``UnknownEntity``).
"""

from __future__ import annotations
