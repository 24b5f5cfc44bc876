"""Importers: a retailer's own data (Merchant Center product feeds) into the catalog core.

`catalog_feed` reads TSV, RSS/Atom XML and JSON Lines feeds as streams; `feed_fields` turns a
raw item into a validated `FeedItem` or a rejection with a reason; `catalog_import` stages a
whole feed, checks the reject threshold, then applies it and recomputes (and purges) only the
bundles whose content changed. Never imports the web service, the consumer or the entry point.
"""
