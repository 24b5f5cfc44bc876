"""shelfedge origin: the context service.

Three rooms (docs/architecture.md):

- `origin.core`, the catalog core, shared with the invalidation consumer: catalog values,
  scoring, list and bundle building, recomputation, the store and its Lua, the purge queue, the
  Redis key layout and client;
- `origin.ingest`, the importers of a retailer's product feeds (over the core);
- `origin.experiments` and `origin.events`, the experiment and event services (definitions,
  publishing, results and statistics; aggregation);
- `origin.web`, the Starlette service over them (bundles, fragments, products, the config and
  event APIs, the admin UI).

`origin.settings` is the origin processes' configuration; `origin.errors` holds the exception
tree, drawn in its docstring. The ``shelfedge`` command line is the `shelfedge` package.
"""

from __future__ import annotations
