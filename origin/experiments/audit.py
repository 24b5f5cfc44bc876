"""Audit entries: who changed an experiment, when, how, and which fields changed.

Pure value objects and the field diff; the store appends them in the same transaction as the
change they describe. An entry names the actor by the token's name and role, never the token.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fragments.experiment_codec import experiment_to_dict
from fragments.experiments import Experiment

_NOT_DIFFED = ("version",)
"""Fields every change bumps: recorded as the entry's version, not as a changed field."""


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One top-level field's value before and after (None before = the field was created)."""

    before: Any
    after: Any


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One change to one experiment."""

    at: float
    """Unix time of the change (server clock)."""
    who: str
    """The token's name (never the token itself)."""
    role: str
    action: str
    """create, update, start, pause, stop, publish, rollback, rotate-preview."""
    version: int
    """The experiment version the change produced."""
    changes: Mapping[str, FieldChange] = field(default_factory=dict)
    config_version: int | None = None
    """The edge config version published with this change, if any."""

    def to_json(self) -> str:
        return json.dumps(
            {
                "at": self.at,
                "who": self.who,
                "role": self.role,
                "action": self.action,
                "version": self.version,
                "changes": {k: {"from": c.before, "to": c.after} for k, c in self.changes.items()},
                "config_version": self.config_version,
            },
            separators=(",", ":"),
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> AuditEntry:
        doc = json.loads(text)
        return cls(
            at=float(doc["at"]),
            who=str(doc["who"]),
            role=str(doc["role"]),
            action=str(doc["action"]),
            version=int(doc["version"]),
            changes={k: FieldChange(v.get("from"), v.get("to")) for k, v in doc["changes"].items()},
            config_version=doc.get("config_version"),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self.to_json())
        return out


def diff(before: Experiment | None, after: Experiment) -> dict[str, FieldChange]:
    """Top-level fields whose JSON value differs (every field when `before` is None)."""
    old = {} if before is None else experiment_to_dict(before)
    new = experiment_to_dict(after)
    return {
        name: FieldChange(old.get(name), value)
        for name, value in new.items()
        if name not in _NOT_DIFFED and old.get(name) != value
    }
