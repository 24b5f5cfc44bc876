"""Cache headers: every dialect present, explicit seconds, tag joins, degradation, If-None-Match."""

from __future__ import annotations

import pytest

from fragments.headers import (
    CLOUDFLARE_CACHE_TAG_LIMIT,
    MAX_TAG_LENGTH,
    VARNISH_XKEY_LIMIT,
    cache_headers,
    etag_matches,
    fit_tags,
)
from fragments.ids import FragmentKey
from fragments.slots import CachePolicy
from fragments.tags import bundle_tags, coarse_tags

KEY = FragmentKey("home-hero", "everyone", "control", "en-US")
POLICY = CachePolicy(max_age=60, stale_while_revalidate=300, stale_if_error=86400)
HASH = "0123456789abcdef0123456789abcdef"


def _skus(n: int, width: int = 5) -> list[str]:
    return [f"SKU-{i:0{width}d}" for i in range(n)]


def test_all_headers_present_with_explicit_seconds() -> None:
    tags = bundle_tags(KEY, ["SKU-1", "SKU-2"])

    headers = dict(cache_headers(KEY, POLICY, tags, HASH))

    assert list(headers) == [
        "Cache-Control", "CDN-Cache-Control", "Surrogate-Control", "Cache-Tag", "Surrogate-Key",
        "xkey", "ETag", "Vary",
    ]  # fmt: skip
    assert headers["Cache-Control"] == (
        "public, max-age=0, s-maxage=60, stale-while-revalidate=300, stale-if-error=86400"
    )
    shared = "max-age=60, stale-while-revalidate=300, stale-if-error=86400"
    assert headers["CDN-Cache-Control"] == shared
    assert headers["Surrogate-Control"] == shared
    assert headers["ETag"] == f'"{HASH}"'
    assert not headers["ETag"].startswith("W/")
    assert headers["Vary"] == "Accept-Encoding"


def test_zero_seconds_are_spelled_out() -> None:
    headers = dict(cache_headers(KEY, CachePolicy(0, 0, 0), coarse_tags(KEY), HASH))
    assert headers["CDN-Cache-Control"] == "max-age=0, stale-while-revalidate=0, stale-if-error=0"
    assert "s-maxage=0" in headers["Cache-Control"]


def test_tags_comma_joined_for_cloudflare_and_space_joined_for_fastly_and_xkey() -> None:
    tags = bundle_tags(KEY, ["SKU-1", "SKU-2"])

    headers = dict(cache_headers(KEY, POLICY, tags, HASH))

    assert headers["Cache-Tag"] == ",".join(tags)
    assert headers["Surrogate-Key"] == " ".join(tags)
    assert headers["xkey"] == " ".join(tags)
    assert "sku:SKU-2" in headers["Cache-Tag"].split(",")


def test_fit_tags_keeps_full_sets_when_they_fit() -> None:
    tags = bundle_tags(KEY, _skus(100))

    fitted = fit_tags(KEY, tags)

    assert not fitted.degraded
    assert fitted.cache_tag.split(",") == list(tags)
    assert fitted.surrogate_key.split(" ") == list(tags)
    assert fitted.xkey.split(" ") == list(tags)


def test_a_set_too_long_for_xkey_only_degrades_xkey_to_coarse_tags_never_truncates() -> None:
    tags = bundle_tags(KEY, _skus(500, width=20))
    assert len(" ".join(tags)) > VARNISH_XKEY_LIMIT
    assert len(",".join(tags)) <= CLOUDFLARE_CACHE_TAG_LIMIT

    fitted = fit_tags(KEY, tags)

    assert fitted.degraded
    assert fitted.cache_tag.split(",") == list(tags)
    assert fitted.surrogate_key.split(" ") == list(tags)
    assert fitted.xkey.split(" ") == list(coarse_tags(KEY))


def test_a_set_too_long_for_every_header_degrades_all_to_coarse_tags() -> None:
    tags = bundle_tags(KEY, _skus(500, width=40))
    assert len(",".join(tags)) > CLOUDFLARE_CACHE_TAG_LIMIT

    fitted = fit_tags(KEY, tags)

    assert fitted.degraded
    assert fitted.cache_tag == ",".join(coarse_tags(KEY))
    assert fitted.surrogate_key == " ".join(coarse_tags(KEY))
    assert fitted.xkey == " ".join(coarse_tags(KEY))


@pytest.mark.parametrize(
    "bad_tag",
    ["sku:a,b", "sku:a b", "", "x" * (MAX_TAG_LENGTH + 1)],
    ids=["comma", "space", "empty", "over-long"],
)
def test_an_unusable_tag_degrades_every_header_rather_than_dropping_it(bad_tag: str) -> None:
    tags = (*bundle_tags(KEY, ["SKU-1"]), bad_tag)

    fitted = fit_tags(KEY, tags)

    assert fitted.degraded
    coarse = coarse_tags(KEY)
    assert fitted.cache_tag.split(",") == list(coarse)
    assert fitted.surrogate_key.split(" ") == list(coarse)
    assert fitted.xkey.split(" ") == list(coarse)


def test_unicode_tags_are_measured_in_bytes() -> None:
    wide = tuple(f"sku:{'é' * 100}{i}" for i in range(50))  # ~5.1k chars, ~10.2k bytes
    tags = (*coarse_tags(KEY), *wide)
    assert len(" ".join(tags)) < VARNISH_XKEY_LIMIT < len(" ".join(tags).encode())

    fitted = fit_tags(KEY, tags)

    assert fitted.xkey == " ".join(coarse_tags(KEY))
    assert fitted.cache_tag == ",".join(tags)


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ("", False),
        (f'"{HASH}"', True),
        (f'W/"{HASH}"', True),
        (f' W/"{HASH}" ', True),
        (f'"other", "{HASH}"', True),
        (f'"a","b",W/"{HASH}"', True),
        ("*", True),
        (" * ", True),
        ('"other"', False),
        (HASH, False),
        (f'"{HASH[:-1]}"', False),
        (f'"{HASH}x"', False),
        (f"'{HASH}'", False),
        ('"a", "b"', False),
    ],
)
def test_if_none_match(header: str | None, matches: bool) -> None:
    assert etag_matches(header, HASH) is matches
