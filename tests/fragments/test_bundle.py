"""The bundle wire format: encode/decode round trip, the content hash, and decode errors."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fragments.bundle import (
    WIRE_VERSION,
    Bundle,
    Candidate,
    RerankSettings,
    content_hash,
    decode_bundle,
    encode_bundle,
)
from fragments.errors import BundleFormatError
from fragments.ids import FragmentKey
from fragments.slots import CachePolicy, RankAdjustment
from fragments.tags import bundle_tags

KEY = FragmentKey("home-hero", "everyone", "b", "de-DE")
CANDIDATES = (
    Candidate("SKU-1", 0.912346, "audio", "Nordicline", 12_999, "in_stock", ("sale",),
              '<article data-sku="SKU-1">Köpfhörer &amp; „Bass“ — 129,99\u00a0€</article>'),
    Candidate("SKU-2", 0.5, "books", "Oakmill", 1_999, "low_stock", ("low-stock", "promo"),
              "<article>日本語 😀 <script>alert(1)</script>\n\t\"quoted\" \\ back</article>"),
    Candidate("SKU-3", 0.0, "toys", "Pineport", 0, "sold_out", ("sold-out",), ""),
)  # fmt: skip
RERANK = RerankSettings(
    shown=2,
    max_per_category=1,
    pin=("SKU-2",),
    adjustments=(RankAdjustment(1.5, "audio", None), RankAdjustment(0.5, None, "Oakmill")),
)


def make_bundle(**changes: Any) -> Bundle:
    head = '<section data-slot="home-hero" lang="de-DE"><h2>Für dich ausgewählt</h2><div>'
    tail = "</div></section>\u2028"
    bundle = Bundle(
        key=KEY,
        candidates=CANDIDATES,
        head_html=head,
        tail_html=tail,
        rerank=RERANK,
        fallback_html="<p>Bestseller</p>",
        policy=CachePolicy(60, 300, 86400),
        tags=bundle_tags(KEY, [c.sku for c in CANDIDATES]),
        version=7,
        content_hash=content_hash(KEY, CANDIDATES, head, tail, RERANK, "<p>Bestseller</p>"),
        built_at=1_700_000_000.25,
    )
    return replace(bundle, **changes)


def whole_document_hash(bundle: Bundle) -> str:
    """The content hash as first specified: one JSON encoding of the whole sorted document."""
    doc = {
        "key": bundle.key.cache_key,
        "c": [_row(c) for c in bundle.candidates],
        "h": bundle.head_html,
        "t": bundle.tail_html,
        "r": {
            "shown": bundle.rerank.shown,
            "max_per_category": bundle.rerank.max_per_category,
            "pin": list(bundle.rerank.pin),
            "adj": [[a.factor, a.category, a.brand] for a in bundle.rerank.adjustments],
        },
        "f": bundle.fallback_html,
    }
    raw = json.dumps(doc, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


def _row(c: Candidate) -> list[Any]:
    return [c.sku, round(c.score, 6), c.category, c.brand, c.price_cents, c.stock_state,
            list(c.badges), c.card_html]  # fmt: skip


_text = st.text(max_size=40)
_candidates = st.builds(
    Candidate,
    sku=_text,
    score=st.floats(0.0, 1e6, allow_nan=False),
    category=_text,
    brand=_text,
    price_cents=st.integers(0, 10**11),
    stock_state=st.sampled_from(["in_stock", "low_stock", "sold_out"]),
    badges=st.lists(_text, max_size=3).map(tuple),
    card_html=st.text(max_size=200),
)


@given(
    candidates=st.lists(_candidates, max_size=6).map(tuple),
    head=_text,
    tail=_text,
    fallback=_text,
    built_at=st.floats(0.0, 2e9, allow_nan=False),
)
def test_hash_and_wire_equal_encoding_the_whole_document_at_once(
    candidates: tuple[Candidate, ...], head: str, tail: str, fallback: str, built_at: float
) -> None:
    """Both are joined from memoised row texts: byte for byte the one-pass encodings."""
    bundle = make_bundle(candidates=candidates, head_html=head, tail_html=tail,
                         fallback_html=fallback, built_at=built_at)  # fmt: skip
    hashed = content_hash(KEY, candidates, head, tail, RERANK, fallback)
    assert hashed == whole_document_hash(bundle)
    bundle = replace(bundle, content_hash=hashed)
    doc = {
        "v": WIRE_VERSION, "key": [KEY.slot, KEY.segment, KEY.variant, KEY.locale],
        "c": [_row(c) for c in candidates], "h": head, "t": tail,
        "r": json.loads(encode_bundle(make_bundle()))["r"], "f": fallback,
        "p": [60, 300, 86400], "tags": list(bundle.tags), "ver": 7, "hash": hashed,
        "at": built_at,
    }  # fmt: skip
    one_pass = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    assert encode_bundle(bundle) == one_pass


def test_round_trip_preserves_every_field_including_unicode_and_html() -> None:
    bundle = make_bundle()

    wire = encode_bundle(bundle)

    assert decode_bundle(wire) == bundle
    assert decode_bundle(wire.decode("utf-8")) == bundle
    assert encode_bundle(decode_bundle(wire)) == wire


def test_wire_format_is_compact_utf8_json_of_version_1() -> None:
    wire = encode_bundle(make_bundle())

    doc = json.loads(wire)
    assert doc["v"] == WIRE_VERSION == 1
    assert doc["key"] == ["home-hero", "everyone", "b", "de-DE"]
    assert doc["c"][0][:2] == ["SKU-1", 0.912346]  # scores carried to 6 decimals
    assert b", " not in wire.split(b'"c"')[0]  # compact separators
    assert "Köpfhörer".encode() in wire  # not \u-escaped


def test_scores_travel_rounded_to_six_decimals() -> None:
    precise = make_bundle(candidates=(replace(CANDIDATES[0], score=0.912345678), *CANDIDATES[1:]))

    decoded = decode_bundle(encode_bundle(precise))

    assert decoded.candidates[0].score == 0.912346
    assert decoded.content_hash == precise.content_hash


def test_empty_bundle_round_trips() -> None:
    bundle = make_bundle(candidates=(), tags=bundle_tags(KEY, []))
    assert decode_bundle(encode_bundle(bundle)) == bundle
    assert bundle.skus == ()


def test_etag_is_the_strong_quoted_content_hash() -> None:
    bundle = make_bundle()
    assert bundle.etag == f'"{bundle.content_hash}"'
    assert len(bundle.content_hash) == 32
    assert bundle.skus == ("SKU-1", "SKU-2", "SKU-3")


def test_content_hash_covers_what_shoppers_see_and_nothing_else() -> None:
    base = content_hash(KEY, CANDIDATES, "h", "t", RERANK, "f")
    other_card = (replace(CANDIDATES[0], card_html="<article>changed</article>"), *CANDIDATES[1:])
    other_state = (replace(CANDIDATES[0], stock_state="low_stock"), *CANDIDATES[1:])

    assert content_hash(KEY, CANDIDATES, "h", "t", RERANK, "f") == base
    assert content_hash(KEY, other_card, "h", "t", RERANK, "f") != base
    assert content_hash(KEY, other_state, "h", "t", RERANK, "f") != base
    assert content_hash(KEY, CANDIDATES[::-1], "h", "t", RERANK, "f") != base
    assert content_hash(KEY, CANDIDATES, "H", "t", RERANK, "f") != base
    assert content_hash(KEY, CANDIDATES, "h", "t", replace(RERANK, shown=3), "f") != base
    assert content_hash(KEY, CANDIDATES, "h", "t", RERANK, "F") != base
    assert content_hash(replace(KEY, locale="en-US"), CANDIDATES, "h", "t", RERANK, "f") != base
    # Version, build time and tags are not part of it (they change without visible change).
    bundle = make_bundle()
    assert make_bundle(version=8, built_at=1.0, tags=()).content_hash == bundle.content_hash


def _wire_doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(encode_bundle(make_bundle()))
    return doc


def _mutated(path: tuple[Any, ...], value: Any) -> bytes:
    doc = _wire_doc()
    target: Any = doc
    for step in path[:-1]:
        target = target[step]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return json.dumps(doc).encode()


_DELETE = object()

BAD_WIRE = [
    pytest.param(b"", "not JSON", id="empty"),
    pytest.param(b"\xff\xfe", "not JSON", id="not-utf8"),
    pytest.param(b"{", "not JSON", id="truncated"),
    pytest.param(b"[]", "must be a JSON object", id="array"),
    pytest.param(b'"bundle"', "must be a JSON object", id="string"),
    pytest.param(_mutated(("v",), 2), "unsupported bundle wire version 2", id="version-2"),
    pytest.param(_mutated(("v",), _DELETE), "unsupported bundle wire version None", id="no-ver"),
    pytest.param(_mutated(("v",), "1"), "unsupported bundle wire version '1'", id="ver-str"),
    pytest.param(_mutated(("key",), ["home-hero", "everyone"]), "malformed", id="short-key"),
    pytest.param(
        _mutated(("key",), ["Home", "everyone", "b", "de-DE"]), "invalid slot", id="bad-slot"
    ),
    pytest.param(_mutated(("c",), _DELETE), "'c'", id="no-candidates"),
    pytest.param(_mutated(("c", 0), ["SKU-1"]), "array of 8 fields", id="short-candidate"),
    pytest.param(_mutated(("c", 0, 5), "gone"), "unknown stock_state 'gone'", id="bad-stock"),
    pytest.param(_mutated(("c", 0, 4), "12.99"), "expected int, got str", id="price-str"),
    pytest.param(_mutated(("c", 0, 4), True), "expected int, got bool", id="price-bool"),
    pytest.param(_mutated(("c", 0, 4), 12.5), "expected int, got float", id="price-float"),
    pytest.param(_mutated(("c", 0, 1), "high"), "malformed", id="score-str"),
    pytest.param(_mutated(("c",), "SKU-1"), "c: expected array, got str", id="candidates-str"),
    pytest.param(_mutated(("c", 0, 6), "sale"), "badges: expected array, got str", id="badges-str"),
    pytest.param(_mutated(("r", "pin"), "SKU-2"), "r.pin: expected array", id="pin-str"),
    pytest.param(_mutated(("tags",), "shelfedge"), "tags: expected array", id="tags-str"),
    pytest.param(
        _mutated(("r", "adj"), [["1.5", "audio", None]]), "expected number", id="adj-factor-str"
    ),
    pytest.param(
        _mutated(("r", "adj"), [[True, "audio", None]]), "expected number", id="adj-factor-bool"
    ),
    pytest.param(_mutated(("r", "adj"), [[1.5, 7, None]]), "expected str", id="adj-category-int"),
    pytest.param(_mutated(("r",), _DELETE), "'r'", id="no-rerank"),
    pytest.param(_mutated(("c", 0, 7), None), "expected str, got NoneType", id="card-null"),
    pytest.param(_mutated(("h",), 1), "expected str, got int", id="head-int"),
    pytest.param(_mutated(("r", "shown"), "2"), "expected int", id="shown-str"),
    pytest.param(_mutated(("r", "adj"), [[1.5, "audio"]]), "malformed", id="adj-short"),
    pytest.param(_mutated(("r", "adj"), "x"), "r.adj: expected array", id="adj-str"),
    pytest.param(_mutated(("p",), [60, 300]), "malformed", id="policy-short"),
    pytest.param(_mutated(("p",), [60, 300, "x"]), "expected int", id="policy-str"),
    pytest.param(_mutated(("tags",), [1]), "expected str", id="tag-int"),
    pytest.param(_mutated(("ver",), 1.5), "expected int", id="version-float"),
    pytest.param(_mutated(("hash",), None), "expected str", id="hash-null"),
    pytest.param(_mutated(("at",), "yesterday"), "malformed", id="built-at-str"),
]


@pytest.mark.parametrize(("wire", "reason"), BAD_WIRE)
def test_decode_errors_say_what_is_wrong(wire: bytes, reason: str) -> None:
    with pytest.raises(BundleFormatError) as caught:
        decode_bundle(wire)

    assert reason in str(caught.value)
