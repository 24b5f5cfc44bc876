"""Strict JSON for client bodies: non-finite numbers and deep nesting are refused (never a
RecursionError), ordinary documents parse as json.loads would."""

from __future__ import annotations

import pytest

from fragments.errors import JsonRejected
from fragments.strict_json import MAX_DEPTH, loads


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"a": NaN}', "NaN"),
        ("[Infinity]", "Infinity"),
        ("[-Infinity]", "-Infinity"),
        ("[" * 100_000 + "]" * 100_000, "deeper"),
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "deeper"),
        ('{"a": ' * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1), "deeper"),
        ("{", "not JSON"),
        (b"\xff", "not"),
    ],
)
def test_refused(text: str | bytes, says: str) -> None:
    with pytest.raises(JsonRejected, match=says):
        loads(text)


def test_accepted_as_json_loads_would() -> None:
    deep = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert loads('{"a": [1, 2.5, "x", null, true]}') == {"a": [1, 2.5, "x", None, True]}
    assert loads(deep) is not None
    assert loads("1e308") == 1e308
