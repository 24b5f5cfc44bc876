"""Errors of the importers.

IngestError (origin.errors.OriginError)
├── FeedUnreadable      the feed cannot be read at all (format, encoding, hostile XML)
├── ImportAborted       too many items were rejected: nothing was applied
├── ImportBusy          another import of the same catalog is running
└── Rejected            one item cannot be imported (its field and reason; counted, never fatal)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from origin.errors import OriginError

if TYPE_CHECKING:
    from origin.ingest.report import ImportReport


class IngestError(OriginError):
    """Base of the importers' errors."""


class FeedUnreadable(IngestError):
    """The feed as a whole cannot be read (its items are never judged one by one)."""


class ImportAborted(IngestError):
    """The reject threshold was exceeded; the catalog is unchanged. `report` lists the
    rejected items."""

    def __init__(self, message: str, report: ImportReport) -> None:
        super().__init__(message)
        self.report = report


class ImportBusy(IngestError):
    """Another catalog import holds the import lock (retry when it is done)."""

    retriable = True


class Rejected(IngestError):
    """Why one item cannot be imported: the field and the reason."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(field, reason)
        self.field = field
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"
