"""Purgers: one small adapter per cache that can drop entries by tag.

Each implements `Purger` (a name, how many tags fit one request, and `purge(tags)`), translates
its HTTP client's outcomes into `PurgeFailed` subclasses through `base.send` (unavailable:
network errors, timeouts, 408/425/429 with their ``Retry-After``, 5xx; unusable: 401/403, 404/405;
rejected: any other 4xx), and knows nothing of queues, retries or rate limits
(`invalidation.purge_worker` decides those).
"""
