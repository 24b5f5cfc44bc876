"""What a catalog import did: counts, the rejected items with their reasons, and timings."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Literal

ImportMode = Literal["full", "delta"]
Unit = Literal["line", "item"]
"""How a rejection's position counts: ``line`` for TSV and JSON Lines, ``item`` for XML."""
MAX_REJECTIONS_KEPT = 1000
"""Rejections listed in a report (all are counted)."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """One item an import refused: where it is, which field, and why."""

    position: int
    unit: Unit
    """``line`` for TSV and JSON Lines (1-based, the header is line 1), ``item`` for XML."""
    sku: str
    field: str
    reason: str

    def __str__(self) -> str:
        sku = f" (id {self.sku!r})" if self.sku else ""
        return f"{self.unit} {self.position}{sku}: {self.field}: {self.reason}"


@dataclass(slots=True)
class ImportReport:
    """The final report of one import (printed by the CLI, returned by the HTTP API)."""

    source: str
    format: str
    mode: ImportMode
    reject_threshold: float
    read: int = 0
    created: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    applied: bool = False
    """False when the import aborted (threshold) and changed nothing."""
    bundles_recomputed: int = 0
    bundles_changed: int = 0
    purges_enqueued: int = 0
    judged_in_workers: int = 0
    """Items validated in worker processes (`origin.ingest.judging`), not in the importer's."""
    seconds_staging: float = 0.0
    """Reading, validating and staging the whole feed (nothing visible changes meanwhile)."""
    seconds_applying: float = 0.0
    """Writing product documents and removing products (bundles still show the old feed)."""
    seconds_propagating: float = 0.0
    """Rescoring, then recomputing (and purging) each changed bundle in one write."""

    def reject(self, rejection: Rejection) -> None:
        self.rejected += 1
        if len(self.rejections) < MAX_REJECTIONS_KEPT:
            self.rejections.append(rejection)

    @property
    def reject_ratio(self) -> float:
        return self.rejected / self.read if self.read else 0.0

    @property
    def seconds(self) -> float:
        return self.seconds_staging + self.seconds_applying + self.seconds_propagating

    def summary(self) -> str:
        state = "applied" if self.applied else "ABORTED, nothing applied"
        return (
            f"{self.mode} import of {self.source} ({self.format}): {state}. read {self.read}, "
            f"created {self.created}, changed {self.changed}, unchanged {self.unchanged}, "
            f"removed {self.removed}, rejected {self.rejected}; bundles changed "
            f"{self.bundles_changed} of {self.bundles_recomputed} recomputed, purges "
            f"{self.purges_enqueued}; {self.seconds:.2f}s"
        )

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["seconds"] = round(self.seconds, 3)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)
