"""Ids and tags: identifier validation, the cache key round trip, tag names."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from fragments.bundle import decode_bundle, encode_bundle
from fragments.errors import InvalidIdentifier
from fragments.ids import ANCHORED_SEGMENT, SKU_PATTERN, FragmentKey, anchored, check_id, check_sku
from fragments.tags import bundle_tag, bundle_tags, coarse_tags, key_of_bundle_tag
from tests.edge.bundles import candidate, small_bundle

VALID_KEYS = [
    FragmentKey("home-hero", "everyone"),
    FragmentKey("pdp-cross-sell", "tech-enthusiasts", "b", "de-DE"),
    FragmentKey("a", "0", "v_2", "fr"),
    FragmentKey("x" * 64, "y" * 64, "z" * 64, "deu-DE"),
]


@pytest.mark.parametrize("key", VALID_KEYS, ids=lambda k: k.cache_key[:40])
def test_cache_key_round_trips(key: FragmentKey) -> None:
    assert FragmentKey.from_cache_key(key.cache_key) == key
    assert key.cache_key == f"bundle/{key.slot}/{key.segment}/{key.variant}/{key.locale}"


def test_defaults_are_control_and_en_us() -> None:
    key = FragmentKey("home-hero", "everyone")
    assert (key.variant, key.locale) == ("control", "en-US")
    assert key.partition == "home-hero/everyone"
    assert (
        key.bundle_path() == "/v1/bundles/home-hero?segment=everyone&variant=control&locale=en-US"
    )
    assert key.fragment_path().startswith("/v1/fragments/home-hero?segment=everyone&")


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        (("Home", "everyone", "control", "en-US"), "slot"),
        (("", "everyone", "control", "en-US"), "slot"),
        (("-hero", "everyone", "control", "en-US"), "slot"),
        (("x" * 65, "everyone", "control", "en-US"), "slot"),
        (("hero/x", "everyone", "control", "en-US"), "slot"),
        (("hero", "every one", "control", "en-US"), "segment"),
        (("hero", "{b:x}", "control", "en-US"), "segment"),
        (("hero", "everyone", "B", "en-US"), "variant"),
        (("hero", "everyone", "control", "en_US"), "locale"),
        (("hero", "everyone", "control", "EN-us"), "locale"),
        (("hero", "everyone", "control", "en-USA"), "locale"),
        (("hero", "everyone", "control", ""), "locale"),
    ],
)
def test_invalid_identifiers_are_rejected_naming_the_field(
    fields: tuple[str, str, str, str], kind: str
) -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        FragmentKey(*fields)

    assert caught.value.kind == kind
    assert f"invalid {kind}" in str(caught.value)


@pytest.mark.parametrize(
    "cache_key",
    [
        "bundle/home-hero/everyone/control",
        "bundle/home-hero/everyone/control/en-US/x",
        "bndl/home-hero/everyone/control/en-US",
        "bundle/home-hero/Every/control/en-US",
        "",
    ],
)
def test_from_cache_key_rejects_malformed_keys(cache_key: str) -> None:
    with pytest.raises(InvalidIdentifier):
        FragmentKey.from_cache_key(cache_key)


@pytest.mark.parametrize(
    ("sku", "valid"),
    [
        ("SKU-00001", True),
        ("a.b_c-D", True),
        ("9" * 64, True),
        ("9" * 65, False),
        ("-SKU", False),
        ("SKU 1", False),
        ("SKU,1", False),
        ("SKU{1}", False),
        ("", False),
    ],
)
def test_check_sku(sku: str, valid: bool) -> None:
    if valid:
        assert check_sku(sku) == sku
    else:
        with pytest.raises(InvalidIdentifier, match="invalid sku"):
            check_sku(sku)


def test_invalid_identifier_message_is_bounded() -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        check_id("segment", "!" * 10_000)
    assert len(str(caught.value)) < 200


def test_tags_coarse_first_then_one_per_sku_in_order_without_repeats() -> None:
    key = FragmentKey("home-hero", "everyone", "b", "de-DE")

    tags = bundle_tags(key, ["SKU-2", "SKU-1", "SKU-2"])

    assert tags == (
        "shelfedge",
        "slot:home-hero",
        "segment:everyone",
        "slotseg:home-hero/everyone",
        "bundle:home-hero/everyone/b/de-DE",
        "sku:SKU-2",
        "sku:SKU-1",
    )
    assert coarse_tags(key) == tags[:5]
    assert all(" " not in t and "," not in t for t in tags)


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("bundle:home-hero/everyone/control/en-US", FragmentKey("home-hero", "everyone")),
        ("bundle:a/b/c/de-DE", FragmentKey("a", "b", "c", "de-DE")),
        ("sku:SKU-1", None),
        ("bundle:too/few/parts", None),
        ("bundle:BAD!/b/c/en-US", None),
    ],
)
def test_key_of_bundle_tag_inverts_bundle_tag(tag: str, expected: FragmentKey | None) -> None:
    assert key_of_bundle_tag(tag) == expected
    if expected is not None:
        assert bundle_tag(expected) == tag


@pytest.mark.parametrize("value", ["SKU-1\n", "SKU-1\n\n", "\nSKU-1", "SKU 1", ""])
def test_anchored_patterns_refuse_what_fullmatch_refuses(value: str) -> None:
    """msgspec and JSON Schema validators use re.search / ECMA-262 with the anchored pattern:
    it must agree with fullmatch, a trailing newline included."""
    assert re.search(anchored(SKU_PATTERN), value) is None
    assert re.search(anchored(SKU_PATTERN), "SKU-1") is not None


def test_anchored_key_round_trips_and_names_no_segment() -> None:
    key = FragmentKey.anchored("product-cross-sell", "SKU-1.b", "v2", "de-DE")
    assert key.segment == ANCHORED_SEGMENT
    assert key.cache_key == "bundle/product-cross-sell/@SKU-1.b/v2/de-DE"
    assert key.partition == "product-cross-sell/@SKU-1.b"
    assert key.bundle_path() == (
        "/v1/bundles/product-cross-sell?anchor=SKU-1.b&variant=v2&locale=de-DE"
    )
    assert FragmentKey.from_cache_key(key.cache_key) == key
    assert key_of_bundle_tag(bundle_tag(key)) == key
    assert bundle_tags(key, ["X"]) == (
        "shelfedge", "slot:product-cross-sell", "sku:SKU-1.b", bundle_tag(key), "sku:X",
    )  # fmt: skip
    bundle = small_bundle([candidate("X", 1.0)], key=key)
    assert decode_bundle(encode_bundle(bundle)).key == key
    plain = small_bundle([candidate("X", 1.0)])
    assert b'"key":["home-hero","everyone","control","en-US"]' in encode_bundle(plain)


@pytest.mark.parametrize(
    "make",
    [
        lambda: FragmentKey("s", "everyone", anchor="SKU-1"),
        lambda: FragmentKey.anchored("s", "bad sku"),
        lambda: FragmentKey.from_cache_key("bundle/s/@/control/en-US"),
    ],
)
def test_anchored_key_rejects_bad_parts(make: Callable[[], FragmentKey]) -> None:
    with pytest.raises(InvalidIdentifier):
        make()
