"""Who acts on experiments: a principal's name and role, never its credential.

The web service authenticates a request to a `Principal` (`origin.web.auth`); the experiment
service records it in audit entries and checks its role. Pure values, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["viewer", "editor", "ingest"]
"""Viewers read; editors also write; ingest tokens (feed pipelines) only import catalog data."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request: the token's name and role (never the token)."""

    name: str
    role: Role
