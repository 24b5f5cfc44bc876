"""The ``/se/*`` surface every adapter serves: routes, limits and body parsing, table-driven."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from edge.errors import BadSeRequest
from edge.surface import (
    MAX_BEACON_BODY,
    MAX_PURGE_BODY,
    MAX_QUERY_STRING,
    Endpoint,
    declared_length_fits,
    match_route,
    parse_beacon_body,
    parse_purge_body,
    parse_query,
    purge_authorized,
    read_bounded,
)

ROUTES = [
    ("/se/slot/home-hero", Endpoint.SLOT, "home-hero"),
    ("/se/purge", Endpoint.PURGE, ""),
    ("/se/events", Endpoint.EVENTS, ""),
    ("/se/metrics", Endpoint.METRICS, ""),
]


@pytest.mark.parametrize(("path", "endpoint", "slot"), ROUTES)
def test_edge_paths_route_to_their_endpoint(path: str, endpoint: Endpoint, slot: str) -> None:
    route = match_route(path)
    assert route is not None
    assert (route.endpoint, route.slot) == (endpoint, slot)


@pytest.mark.parametrize(
    "path", ["/", "/se/slot/", "/se/slot/a/b", "/se/other", "/se/purge/", "/v1/events", "/se"]
)
def test_other_paths_are_not_the_edges_own(path: str) -> None:
    assert match_route(path) is None


@pytest.mark.parametrize(
    ("path", "allowed", "refused", "allow"),
    [
        ("/se/slot/x", ("GET", "HEAD", "get"), ("POST", "PUT"), "GET, HEAD"),
        ("/se/purge", ("POST",), ("GET", "HEAD"), "POST"),
        ("/se/events", ("POST",), ("GET", "DELETE"), "POST"),
        ("/se/metrics", ("GET", "HEAD"), ("POST",), "GET, HEAD"),
    ],
)
def test_methods(path: str, allowed: tuple[str, ...], refused: tuple[str, ...], allow: str) -> None:
    route = match_route(path)
    assert route is not None
    assert all(route.allows(m) for m in allowed)
    assert not any(route.allows(m) for m in refused)
    assert route.allow == allow


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"", 400),
        (b"{", 400),
        (b'{"tag": ["x"]}', 400),
        (b'{"tags": "x"}', 400),
        (b'{"tags": [1]}', 400),
        (b"[]", 400),
        (b'{"tags": ["' + b"a" * MAX_PURGE_BODY + b'"]}', 413),
    ],
)
def test_purge_bodies_are_refused_with_their_status(body: bytes, status: int) -> None:
    with pytest.raises(BadSeRequest) as caught:
        parse_purge_body(body)
    assert caught.value.status == status


def test_purge_body_gives_its_tags() -> None:
    assert parse_purge_body(b'{"tags": ["sku:A", "slot:home-hero"]}') == ("sku:A", "slot:home-hero")


def test_beacon_bodies() -> None:
    assert parse_beacon_body(b'{"events": []}') == {"events": []}
    with pytest.raises(BadSeRequest) as malformed:
        parse_beacon_body(b"not json")
    with pytest.raises(BadSeRequest) as large:
        parse_beacon_body(json.dumps({"events": ["x" * MAX_BEACON_BODY]}).encode())
    assert (malformed.value.status, large.value.status) == (400, 413)
    assert "events" in str(malformed.value)


async def chunks(parts: list[bytes], read: list[int]) -> AsyncIterator[bytes]:
    for part in parts:
        read.append(len(part))
        yield part


async def test_reads_stop_once_over_the_limit() -> None:
    read: list[int] = []
    with pytest.raises(BadSeRequest) as caught:
        await read_bounded(chunks([b"a" * 60, b"b" * 60, b"c" * 60, b"d" * 60], read), 100)
    assert caught.value.status == 413
    assert read == [60, 60]  # the third chunk is never pulled
    assert await read_bounded(chunks([b"ab", b"cd"], []), 4) == b"abcd"


@pytest.mark.parametrize(("declared", "refused"), [(None, False), ("10", False), ("11", True)])
def test_declared_length(declared: str | None, refused: bool) -> None:
    if refused:
        with pytest.raises(BadSeRequest):
            declared_length_fits(declared, 10)
    else:
        declared_length_fits(declared, 10)


@pytest.mark.parametrize(
    ("required", "header", "ok"),
    [
        (None, None, True),
        ("", "Bearer ", False),
        ("", None, False),
        ("t0k", "Bearer t0k", True),
        ("t0k", "Bearer t0K", False),
        ("t0k", None, False),
    ],
)
def test_purge_authorization(required: str | None, header: str | None, ok: bool) -> None:
    assert purge_authorized(required, header) is ok


def test_query_keeps_blank_values_and_is_read_up_to_the_limit() -> None:
    assert parse_query("locale=&sx_hero=b&sx_hero=c") == {"locale": "", "sx_hero": "c"}
    assert parse_query("a=1&" + "b" * MAX_QUERY_STRING + "&locale=de-DE") == {
        "a": "1",
        "b" * (MAX_QUERY_STRING - 4): "",
    }
