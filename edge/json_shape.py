"""Shape checks for parsed JSON the edge is handed (configs, vector documents, decision requests).

Each check returns the value with its type narrowed or raises `BadEdgeInput` naming ``where``
and what was expected. Pure: standard library and `edge.errors` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edge.errors import BadEdgeInput


def json_object(value: Any, where: str) -> dict[str, Any]:
    """``value`` if it is a JSON object."""
    if not isinstance(value, dict):
        raise BadEdgeInput(f"{where} must be a JSON object")
    return value


def json_string_map(value: Any, where: str) -> dict[str, str]:
    """``value`` if it is a JSON object of strings."""
    mapping = json_object(value, where)
    if not all(isinstance(v, str) for v in mapping.values()):
        raise BadEdgeInput(f"{where}: every value must be a string")
    return mapping


def json_string(raw: Mapping[str, Any], key: str, where: str) -> str:
    """The string member ``key`` of ``raw``."""
    value = raw.get(key)
    if not isinstance(value, str):
        raise BadEdgeInput(f"{where}: {key!r} must be a string")
    return value


def json_number(value: Any, where: str) -> float:
    """``value`` as a float if it is a JSON number (not a boolean)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadEdgeInput(f"{where}: expected a number, got {value!r}")
    return float(value)
