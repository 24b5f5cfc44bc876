"""JSON from untrusted clients: strict numbers and a bounded depth.

`loads` is `json.loads` that refuses ``NaN``, ``Infinity`` and ``-Infinity`` (Python accepts
them; they are not JSON, and a value holding one is later published as invalid JSON) and
documents nested deeper than `max_depth` (deep nesting otherwise ends in a RecursionError, a
500). Every endpoint that reads a JSON body uses it; it raises `JsonRejected` (a ValueError)
whose message says what was wrong. Stdlib only: it imports under Pyodide and WASI.
"""

from __future__ import annotations

import json
from typing import Any

from fragments.errors import JsonRejected

MAX_DEPTH = 32
"""Deepest nesting of arrays and objects accepted (shelfedge's documents need fewer than 8)."""


def _refuse_constant(name: str) -> Any:
    raise JsonRejected(f"{name} is not a JSON number; send a finite number")


def loads(data: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """The parsed document, or JsonRejected (not JSON, a non-finite number, or too deep)."""
    try:
        doc = json.loads(data, parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise JsonRejected(f"nested deeper than {max_depth} levels") from exc
    except UnicodeDecodeError as exc:
        raise JsonRejected(f"not UTF-8: {exc.reason}") from exc
    except JsonRejected:
        raise
    except ValueError as exc:
        raise JsonRejected(f"not JSON: {exc}") from exc
    if depth_exceeds(doc, max_depth):
        raise JsonRejected(f"nested deeper than {max_depth} levels")
    return doc


def depth_exceeds(doc: Any, max_depth: int) -> bool:
    """True when arrays/objects in `doc` nest deeper than `max_depth` (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(doc, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth + 1 > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
