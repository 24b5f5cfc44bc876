"""Keys and tags: identifier validation, the cache key round trip, tag names, Redis hash tags."""

from __future__ import annotations

import re
import zlib
from collections import Counter

import pytest
from redis.crc import key_slot

from fragments import keys
from fragments.errors import InvalidIdentifier
from fragments.keys import FragmentKey, bundle_tag, key_of_bundle_tag

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
        assert keys.check_sku(sku) == sku
    else:
        with pytest.raises(InvalidIdentifier, match="invalid sku"):
            keys.check_sku(sku)


def test_invalid_identifier_message_is_bounded() -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        keys.check_id("segment", "!" * 10_000)
    assert len(str(caught.value)) < 200


def test_tags_coarse_first_then_one_per_sku_in_order_without_repeats() -> None:
    key = FragmentKey("home-hero", "everyone", "b", "de-DE")

    tags = keys.bundle_tags(key, ["SKU-2", "SKU-1", "SKU-2"])

    assert tags == (
        "shelfedge",
        "slot:home-hero",
        "segment:everyone",
        "slotseg:home-hero/everyone",
        "bundle:home-hero/everyone/b/de-DE",
        "sku:SKU-2",
        "sku:SKU-1",
    )
    assert keys.coarse_tags(key) == tags[:5]
    assert all(" " not in t and "," not in t for t in tags)


def _hash_tag(redis_key: str) -> str:
    match = re.search(r"\{([^}]*)\}", redis_key)
    assert match is not None, f"{redis_key} carries no hash tag"
    return match.group(1)


def test_every_redis_key_is_namespaced_and_carries_exactly_one_hash_tag() -> None:
    key = FragmentKey("home-hero", "everyone", "b", "de-DE")
    per_key = [
        keys.product_key("SKU-1"),
        keys.event_seen_key("SKU-1"),
        keys.bundle_key(key),
        keys.partition_index_key(key.partition),
        keys.partition_bundles_key(key.partition),
        keys.partition_hashes_key(key.partition),
        keys.segment_list_key(key.partition),
        keys.purge_queue_key(key.partition, "varnish"),
        keys.purge_generation_key(key.partition, "varnish"),
    ]
    for redis_key in per_key:
        assert redis_key.startswith(keys.NAMESPACE + ":")
        assert redis_key.count("{") == redis_key.count("}") == 1


def test_keys_of_one_sku_share_a_cluster_slot_with_its_bucket() -> None:
    group = [keys.product_key("SKU-00042"), keys.event_seen_key("SKU-00042")]
    assert {_hash_tag(k) for k in group} == {f"p:{keys.sku_bucket('SKU-00042')}"}
    assert len({key_slot(k.encode()) for k in group}) == 1
    assert keys.product_key("SKU-00042") != keys.product_key("SKU-00043")


def test_sku_buckets_are_stable_and_spread() -> None:
    """The bucket is part of every stored product key: it must never depend on the process
    (Python's hash() is salted), and the demo catalog must spread over (nearly) all buckets."""
    assert keys.sku_bucket("SKU-00042") == zlib.crc32(b"SKU-00042") % keys.SKU_BUCKETS
    sizes = Counter(keys.sku_bucket(f"SKU-{n:05d}") for n in range(5000))
    assert len(sizes) == keys.SKU_BUCKETS
    assert max(sizes.values()) < 2 * 5000 / keys.SKU_BUCKETS


def test_keys_of_one_partition_share_a_cluster_slot_across_variants_and_locales() -> None:
    keys_of_partition = [
        FragmentKey("home-hero", "everyone", variant, locale)
        for variant in ("control", "b")
        for locale in ("en-US", "de-DE")
    ]
    partition = keys_of_partition[0].partition
    group = [keys.bundle_key(k) for k in keys_of_partition] + [
        keys.partition_index_key(partition),
        keys.partition_bundles_key(partition),
        keys.partition_hashes_key(partition),
        keys.segment_list_key(partition),
        keys.purge_queue_key(partition, "local-edge"),
        keys.purge_generation_key(partition, "cloudflare"),
    ]
    assert {_hash_tag(k) for k in group} == {"b:home-hero/everyone"}
    assert len({key_slot(k.encode()) for k in group}) == 1
    assert len(set(group)) == len(group)


def test_different_partitions_do_not_share_a_hash_tag() -> None:
    a = keys.bundle_key(FragmentKey("home-hero", "everyone"))
    b = keys.bundle_key(FragmentKey("home-hero", "bargain-hunters"))
    assert _hash_tag(a) != _hash_tag(b)


def test_a_scoring_variants_list_lives_in_its_partitions_slot() -> None:
    control = keys.segment_list_key(keys.list_id("home-hero", "everyone"))
    variant = keys.segment_list_key(keys.list_id("home-hero", "everyone", "b"))

    assert control == keys.segment_list_key("home-hero/everyone")
    assert variant != control
    assert _hash_tag(variant) == _hash_tag(control) == "b:home-hero/everyone"


def test_experiment_keys_group_by_their_hash_tags() -> None:
    config_group = [
        keys.EXPERIMENTS_KEY,
        keys.experiment_audit_key("hero-test"),
        keys.EDGE_CONFIG_VERSIONS_KEY,
        keys.EDGE_CONFIG_CURRENT_KEY,
        keys.EDGE_CONFIG_META_KEY,
        keys.PREVIEW_TOKEN_KEY,
    ]
    aggregate_group = [
        keys.experiment_counts_key("hero-test"),
        keys.experiment_visitors_key("hero-test", "exposure", "b", "2026010112"),
        keys.experiment_hours_key("hero-test"),
        keys.experiment_event_ids_key("hero-test", "2026010112"),
    ]
    assert {_hash_tag(k) for k in config_group} == {"x"}
    assert {_hash_tag(k) for k in aggregate_group} == {"e:hero-test"}
    assert len({key_slot(k.encode()) for k in aggregate_group}) == 1


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
