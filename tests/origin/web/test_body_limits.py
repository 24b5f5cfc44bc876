"""A Content-Length of digits `int()` cannot read ('²' is a digit to `str.isdigit()`) is not
a 500: the declared length is checked as ASCII digits (found by tests/edge/test_fuzz_parsers.py)."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from origin.web.errors import BadRequest
from origin.web.experiments.http import read_json


def _request(content_length: str, body: bytes) -> Request:
    sent = False

    async def receive() -> dict[str, object]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/experiments",
        "headers": [(b"content-length", content_length.encode("latin-1"))],
    }
    return Request(scope, receive)


@pytest.mark.parametrize("declared", ["\u00b2", "\u00b3", "12x"])
async def test_an_unreadable_declared_length_is_ignored_and_the_body_read(declared: str) -> None:
    assert await read_json(_request(declared, b'{"a": 1}')) == {"a": 1}


async def test_a_declared_length_over_the_limit_is_413() -> None:
    with pytest.raises(BadRequest) as caught:
        await read_json(_request("999999999", b"{}"), max_bytes=10)
    assert caught.value.response.status_code == 413
