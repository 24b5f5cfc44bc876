"""Purgers: one small adapter per cache that can drop entries by tag.

Each implements `Purger` (a name, how many tags fit one request, and `purge(tags)`), translates
its HTTP client's failures into `PurgeFailed` (retriable for network errors, 429 and 5xx) and
knows nothing of queues or rate limits (`invalidation.purge_worker` does that).
"""
