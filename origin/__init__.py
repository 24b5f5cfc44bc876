"""shelfedge origin: the context service.

Precomputes per-segment product lists, renders fragment bundles, serves them with correct cache
headers and tags, hosts the experiment config API and admin UI, collects events, and ships the
``shelfedge`` command line (dev stack, demo data, replay).

Exceptions::

    OriginError
     ├── SettingsError     an environment variable has a bad value (names it and what's expected)
     ├── StoreUnavailable  Redis cannot be reached in time (retriable; HTTP 503 + Retry-After)
     └── UnknownEntity     a slot, segment, variant, locale or product that doesn't exist (404)
"""

from __future__ import annotations
