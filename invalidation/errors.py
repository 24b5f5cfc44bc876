"""The exception tree of `invalidation`: one root, and `retriable` drives the decision.

::

    InvalidationError            retriable: may the same call succeed later?
     ├── BadEvent                malformed, unknown-schema or oversized event -> dead-letter (final)
     ├── ReplayError             the requested range could not be read (retriable)
     ├── DeadLetterError         a dead letter that cannot be found, read or re-driven
     └── PurgeFailed             a purge request was not accepted (purger, status, detail)
          ├── PurgeUnavailable   429, 408, 5xx, timeout, connection error, unconfirmed answer
          │                      (retriable: the worker backs off, honouring Retry-After)
          └── PurgeRefused       the API refused the request (final: never retried as is)
               ├── PurgeRejected      other 4xx: the request's tags -> bisect, park refused
               └── PurgerUnusable     the purger itself -> stop this purger, keep its queue
                    └── PurgeUnauthorized  401/403: the credential

Code that catches a `PurgeFailed` reads `retriable` first (retry with backoff, or set aside)
and only then which refusal it was (park the refused tags, or stop the purger). Purgers raise
these from their HTTP client's exceptions with ``raise ... from exc``; nothing outside
`invalidation.purgers` sees an httpx exception.
"""

from __future__ import annotations


class InvalidationError(Exception):
    """Base class; `retriable` tells the code that catches it whether to retry or set aside."""

    retriable: bool = False


class BadEvent(InvalidationError):
    """An event that can never be applied: it goes to the dead-letter topic with `reason`."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class PurgeFailed(InvalidationError):
    """A purge request was not accepted by `purger`'s API (`status` None: no HTTP answer)."""

    def __init__(self, purger: str, detail: str, *, status: int | None = None) -> None:
        self.purger = purger
        self.status = status
        self.detail = detail
        super().__init__(f"{purger} purge failed: {detail}")

    @property
    def reason(self) -> str:
        """A short, low-cardinality label for metrics: ``http_<status>`` or ``network``."""
        return "network" if self.status is None else f"http_{self.status}"


class PurgeUnavailable(PurgeFailed):
    """Throttled (429), a server or network failure: the same purge may succeed later.

    `retry_after` is the API's ``Retry-After`` in seconds when it sent one.
    """

    retriable = True

    def __init__(
        self,
        purger: str,
        detail: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(purger, detail, status=status)


class PurgeRefused(PurgeFailed):
    """The API refused the request; sending it again unchanged would be refused again."""

    retriable = False


class PurgeRejected(PurgeRefused):
    """The API refused what the request carried (a 4xx that names neither the credential nor
    the endpoint): some of its tags, or their number. The worker splits the batch to find the
    tags it refuses and parks them."""


class PurgerUnusable(PurgeRefused):
    """The API refused the purger itself, whatever the tags: its endpoint does not exist
    (404, 405: a wrong zone, service or base URL). No request of this purger can succeed until
    an operator fixes its configuration: the worker stops it and leaves its queue untouched
    (splitting would only park every tag)."""


class PurgeUnauthorized(PurgerUnusable):
    """The API refused the credential (401/403)."""


class ReplayError(InvalidationError):
    """The requested range could not be read (retriable: the broker may be slow or down)."""

    retriable = True


class DeadLetterError(InvalidationError):
    """A dead letter that cannot be found, read or re-driven (the message says which)."""
