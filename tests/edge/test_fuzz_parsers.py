"""Fuzzing what the edge parses from the internet: cookies, headers, query strings, `/se/*` bodies,
bundles and the published config.

Each parser gets arbitrary input (text, bytes, JSON of any shape and depth, and mutations of
valid documents) and must either answer within its documented bound or raise its documented
error type; nothing else may escape. CI runs `SHELFEDGE_FUZZ_EXAMPLES` examples per parser
(default 300); the long run is::

    SHELFEDGE_FUZZ_EXAMPLES=100000 pytest tests/edge/test_fuzz_parsers.py -p no:cacheprovider

Every crash found here is fixed in the parser, and its input is pinned below as an explicit
`@example` so it stays fixed.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from edge.browser_events import MAX_BROWSER_EVENTS, attribute
from edge.config import parse_config
from edge.context import (
    MAX_CART_ITEMS,
    MAX_COOKIE_HEADER,
    MAX_COOKIE_VALUE,
    MAX_RECENT_ITEMS,
    parse_cookies,
    read_context,
)
from edge.errors import BadEdgeInput, BadSeRequest
from edge.router import MAX_STICKY_ENTRIES, parse_sticky
from edge.surface import (
    MAX_BEACON_BODY,
    MAX_PURGE_BODY,
    MAX_QUERY_STRING,
    declared_length_fits,
    match_route,
    parse_beacon_body,
    parse_purge_body,
    parse_query,
)
from fragments.bundle import Bundle, Candidate, RerankSettings, decode_bundle, encode_bundle
from fragments.errors import BundleFormatError, FragmentsError
from fragments.experiment_codec import config_from_json
from fragments.experiments import EdgeExperimentConfig
from fragments.ids import FragmentKey, is_id
from fragments.segment_cookie import sign_segment, verify_segment
from fragments.slots import CachePolicy
from fragments.sticky_cookie import sign_sticky

EXAMPLES = int(os.environ.get("SHELFEDGE_FUZZ_EXAMPLES", "300"))
pytestmark = pytest.mark.timeout(max(120, EXAMPLES // 5))
"""The suite's 120 s per test, stretched for long runs (about 5 ms an example, worst case)."""
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SECRET = "fuzz-secret-0123456789abcdef"
NOW = 1_800_000_000.0
VISITOR = "0123456789abcdef0123456789abcdef"

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=12), inner, max_size=6)
    ),
    max_leaves=40,
)
cookie_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=400)
cookie_pairs = st.lists(
    st.tuples(
        st.sampled_from(["se_vid", "se_seg", "se_consent", "se_cart", "se_rv", "se_exp", "x"]),
        st.text(alphabet='0123456789abcdef-_.|~ABZ"= ;²', max_size=80),
    ),
    max_size=8,
)


def _deep(depth: int, opener: str = "[", closer: str = "]") -> bytes:
    return (opener * depth + closer * depth).encode()


@FUZZ
@given(cookie_text | st.builds("; ".join, st.lists(st.text(max_size=30), max_size=20)))
@example("a=" + "x" * (MAX_COOKIE_VALUE + 1))
@example("=;=;;" * 10)
def test_parse_cookies_never_raises_and_keeps_values_bounded(header: str) -> None:
    cookies = parse_cookies(header)

    assert len(cookies) <= header.count(";") + 1
    assert all(len(v) <= MAX_COOKIE_VALUE for v in cookies.values())
    assert all(name and "=" not in name and ";" not in name for name in cookies)
    if len(header) > MAX_COOKIE_HEADER:
        assert cookies == {}


@FUZZ
@given(
    pairs=cookie_pairs,
    headers=st.dictionaries(
        st.sampled_from(["cf-ipcountry", "user-agent", "sec-ch-ua-mobile", "accept-language"]),
        st.text(max_size=200),
    ),
)
def test_read_context_never_raises_and_bounds_what_it_keeps(
    pairs: list[tuple[str, str]], headers: dict[str, str]
) -> None:
    cookie = "; ".join(f"{name}={value}" for name, value in pairs)
    context = read_context(
        {**headers, "cookie": cookie},
        now=NOW,
        secret=SECRET,
        default_segment="default",
        fresh_visitor_id=VISITOR,
    )

    assert len(context.cart_skus) <= MAX_CART_ITEMS
    assert len(context.recent_categories) <= MAX_RECENT_ITEMS
    assert context.segment == "default" or is_id(context.segment)
    assert context.country is None or (len(context.country) == 2 and context.country.isupper())
    assert context.device in ("mobile", "desktop")
    assert len(context.visitor_id) == 32


@FUZZ
@given(st.text(max_size=200) | st.none())
@example("seg.99999999999999999999.0123456789abcdef0123456789abcdef")
@example("seg.\uff11\uff12.0123456789abcdef0123456789abcdef")  # full-width digits
def test_verify_segment_answers_a_valid_id_or_none(value: str | None) -> None:
    segment = verify_segment(value, NOW, SECRET, VISITOR)

    assert segment is None or is_id(segment)


@FUZZ
@given(
    st.from_regex(r"[a-z0-9][a-z0-9_-]{0,20}", fullmatch=True), st.integers(0, 10**12), st.data()
)
def test_a_tampered_segment_cookie_is_refused(
    segment: str, expires: int, data: st.DataObject
) -> None:
    value = sign_segment(segment, expires, SECRET, VISITOR)
    position = data.draw(st.integers(0, len(value) - 1))
    replacement = data.draw(st.characters(codec="utf-8").filter(lambda c: c != value[position]))
    tampered = value[:position] + replacement + value[position + 1 :]

    assert verify_segment(tampered, 0, SECRET, VISITOR) in (None, segment)
    if position >= value.index(f".{segment}.") + len(segment) + 1:  # expiry or signature
        assert verify_segment(tampered, 0, SECRET, VISITOR) is None
    assert verify_segment(value, 0, SECRET, "0" * 32) is None  # bound to its visitor


@FUZZ
@given(st.text(max_size=1200) | st.none())
def test_parse_sticky_is_bounded(raw: str | None) -> None:
    sticky = parse_sticky(raw)

    assert len(sticky) <= MAX_STICKY_ENTRIES
    assert all(0 < len(key) <= 64 for key in sticky)
    assert all(i >= 0 and v >= 0 for i, v in sticky.values())


@FUZZ
@given(st.text(max_size=6000))
@example("a=%ff%fe&b=%" * 400)
def test_parse_query_reads_at_most_its_limit(query: str) -> None:
    params = parse_query(query)

    assert sum(len(k) + len(v) for k, v in params.items()) <= MAX_QUERY_STRING


@FUZZ
@given(st.text(max_size=300))
@example("/se/slot/")
@example("/se/slot/a/b")
def test_match_route_never_raises(path: str) -> None:
    route = match_route(path)

    assert route is None or route.allow
    if route is not None and route.slot:
        assert "/" not in route.slot


@FUZZ
@given(st.text(max_size=40) | st.none())
@example("٣٣٣")
@example("²")  # str.isdigit() accepts it, int() does not (found by this test)
@example("99999999999999999999999999")
def test_declared_length_refuses_only_with_413(content_length: str | None) -> None:
    assert _refusal(declared_length_fits, content_length, 1000) in (None, 413)


def _refusal(parse: Any, *args: Any) -> int | None:
    """The status of the BadSeRequest `parse` raises, None when it answers."""
    try:
        parse(*args)
    except BadSeRequest as exc:
        return exc.status
    return None


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


bodies = (
    st.binary(max_size=600)
    | json_values.map(_json_bytes)
    | st.builds(lambda tags: _json_bytes({"tags": tags}), json_values)
    | st.builds(lambda events: _json_bytes({"events": events}), json_values)
    | st.integers(1, 20_000).map(_deep)
    | st.integers(1, 20_000).map(lambda n: _deep(n, '{"a":', "}")[:-n] + b"1" + b"}" * n)
)


@FUZZ
@given(bodies)
@example(_deep(100_000))
@example(b'{"tags": ' + _deep(50_000) + b"}")
@example(b"\xff\xfe")
def test_parse_purge_body_answers_tags_or_a_400_or_413(body: bytes) -> None:
    status = _refusal(parse_purge_body, body)
    assert status in (None, 400, 413)
    if status is not None:
        return
    tags = parse_purge_body(body)
    assert len(body) <= MAX_PURGE_BODY
    assert all(isinstance(t, str) for t in tags)
    assert len(tags) <= len(body)


@FUZZ
@given(bodies)
@example(_deep(100_000))
def test_parse_beacon_body_answers_json_or_a_400_or_413(body: bytes) -> None:
    status = _refusal(parse_beacon_body, body)
    assert status in (None, 400, 413)
    assert status is not None or len(body) <= MAX_BEACON_BODY


CONFIG = config_from_json(
    json.dumps(
        {
            "version": 3,
            "experiments": [
                {
                    "key": "hero",
                    "name": "Hero",
                    "status": "running",
                    "slots": ["home-hero"],
                    "variants": [
                        {"id": "control", "weight": 0.5},
                        {"id": "compact", "weight": 0.5},
                    ],
                }
            ],
        }
    )
)


@FUZZ
@given(body=json_values | st.builds(lambda e: {"events": e}, st.lists(json_values, max_size=80)),
       sticky=st.text(max_size=60))  # fmt: skip
def test_attribute_never_raises_and_reports_at_most_its_bound(body: Any, sticky: str) -> None:
    signed = sign_sticky("hero.1.0", VISITOR, SECRET)
    cookies = {"se_vid": VISITOR, "se_consent": "1", "se_exp": sticky or signed}
    ids = iter(range(10**6))
    out = attribute(body, CONFIG, cookies, NOW, lambda: f"event-{next(ids):08d}", SECRET)

    assert len(out.events) <= MAX_BROWSER_EVENTS * max(1, len(CONFIG.experiments))
    assert all(e.experiment == "hero" and e.visitor == VISITOR for e in out.events)
    assert all(count > 0 for count in out.skipped.values())


def _valid_bundle() -> bytes:
    bundle = Bundle(
        key=FragmentKey("home-hero", "default"),
        candidates=(
            Candidate("SKU-1", 1.0, "shoes", "acme", 1999, "in_stock", ("new",), "<li>1</li>"),
        ),
        head_html="<ul>",
        tail_html="</ul>",
        rerank=RerankSettings(shown=4, max_per_category=2, pin=(), adjustments=()),
        fallback_html="",
        policy=CachePolicy(60, 300, 3600),
        tags=("slot:home-hero",),
        version=1,
        content_hash="abc",
        built_at=NOW,
    )
    return encode_bundle(bundle)


VALID_BUNDLE = json.loads(_valid_bundle())


@st.composite
def mutated_bundles(draw: st.DrawFn) -> bytes:
    """The valid bundle with one member (or one candidate field) replaced by any JSON value."""
    doc = json.loads(json.dumps(VALID_BUNDLE))
    if draw(st.booleans()):
        doc[draw(st.sampled_from(sorted(doc)))] = draw(json_values)
    else:
        row = doc["c"][0]
        row[draw(st.integers(0, len(row) - 1))] = draw(json_values)
    return json.dumps(doc).encode()


@FUZZ
@given(st.binary(max_size=400) | json_values.map(_json_bytes) | mutated_bundles()
       | st.integers(1, 20_000).map(_deep))  # fmt: skip
@example(_deep(100_000))
@example(json.dumps({**VALID_BUNDLE, "at": 10**400}).encode())
@example(json.dumps({**VALID_BUNDLE, "c": [[*VALID_BUNDLE["c"][0][:1], 10**400,
                                             *VALID_BUNDLE["c"][0][2:]]]}).encode())  # fmt: skip
def test_decode_bundle_answers_a_bundle_or_a_bundle_format_error(data: bytes) -> None:
    try:
        bundle = decode_bundle(data)
    except BundleFormatError:
        return
    assert isinstance(bundle, Bundle)
    assert len(bundle.candidates) <= len(data)


def test_the_valid_bundle_used_for_mutations_decodes() -> None:
    assert decode_bundle(_valid_bundle()).key.slot == "home-hero"


@FUZZ
@given(
    json_values | st.builds(lambda v, e: {"version": v, "experiments": e}, json_values, json_values)
)
@example(
    {"version": 1, "experiments": [{"key": "k", "variants": [{"id": "control", "weight": 1e400}]}]}
)
@example({"version": float("inf"), "experiments": []})
@example({"version": 1, "experiments": [{"key": "k", "hash_version": float("nan")}]})
def test_config_from_json_answers_a_config_or_a_fragments_error(doc: Any) -> None:
    try:
        config = config_from_json(json.dumps(doc))
    except (FragmentsError, KeyError, TypeError, ValueError):
        return  # the set `edge.config.parse_config` translates into BadEdgeInput
    assert isinstance(config, EdgeExperimentConfig)


@FUZZ
@given(st.dictionaries(st.sampled_from(["fallbacks", "locales", "experiments", "segment_secret",
                                         "default_segment"]), json_values))  # fmt: skip
def test_parse_config_answers_a_config_or_bad_edge_input(raw: dict[str, Any]) -> None:
    try:
        parse_config(raw)
    except BadEdgeInput:
        return
