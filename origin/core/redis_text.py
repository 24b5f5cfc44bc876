"""Decode what redis-py returns (bytes, or str with decode_responses) into text, one way."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def as_text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def as_bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def decode_map(fields: Mapping[Any, Any]) -> dict[str, str]:
    return {as_text(k): as_text(v) for k, v in fields.items()}
