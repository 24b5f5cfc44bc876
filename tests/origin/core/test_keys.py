"""The Redis key layout: namespacing and Redis Cluster hash tags."""

from __future__ import annotations

import re
import zlib
from collections import Counter

from redis.crc import key_slot

from fragments.ids import FragmentKey
from origin.core import keys


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


def test_product_keys_in_bulk_are_the_product_keys() -> None:
    skus = [f"SKU-{n:05d}" for n in range(300)] + ["ünï-çødé", ""]
    assert keys.product_keys(skus) == [keys.product_key(s) for s in skus]


def test_sku_buckets_are_stable_and_spread() -> None:
    """The bucket is part of every stored product key: it must never depend on the process
    (Python's hash() is salted), and the demo catalog must spread over (nearly) all buckets."""
    assert keys.sku_bucket("SKU-00042") == zlib.crc32(b"SKU-00042") % keys.SKU_BUCKETS
    mixed = ["SKU-00042", "", "été-☃", "a" * 64, "x"]
    assert keys.sku_buckets(mixed) == [
        zlib.crc32(s.encode()) % keys.SKU_BUCKETS for s in mixed
    ]  # in bulk, the same
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
