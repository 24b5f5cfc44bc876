"""Importers: a retailer's own data (Merchant Center product feeds) into the catalog core.

`catalog_feed` reads TSV, RSS/Atom XML and JSON Lines feeds as streams; `feed_fields` turns a
raw item into a validated `FeedItem` or a rejection with a reason; `catalog_import` stages a
whole feed (`spool`), checks the reject threshold, then applies it (`apply_feed`, Lua per SKU
bucket) and recomputes (and purges) only the bundles whose content changed; `report` is what it
answers; `service` builds an importer over a store; `synthetic_feed` generates feeds for demos,
tests and the benchmark. Never imports the web service, the consumer or the entry point (an
import-linter contract).
"""
