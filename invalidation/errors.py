"""The exception tree of `invalidation` (drawn in the package docstring)."""

from __future__ import annotations


class InvalidationError(Exception):
    """Base class; `retriable` tells the pipeline whether to retry or dead-letter."""

    retriable: bool = False


class BadEvent(InvalidationError):
    """An event that can never be applied: it goes to the dead-letter topic with `reason`."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class PurgeFailed(InvalidationError):
    """A purge request failed; retriable unless the API rejected the request itself."""

    def __init__(self, purger: str, detail: str, *, retriable: bool, status: int | None = None):
        self.purger = purger
        self.status = status
        self.retriable = retriable
        super().__init__(f"{purger} purge failed: {detail}")
