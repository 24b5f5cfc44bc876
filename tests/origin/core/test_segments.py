"""Segments as configuration: the file format, validation messages, add builds, remove retires."""

from __future__ import annotations

import pytest

from fragments.ids import FragmentKey
from fragments.slots import load_slots
from origin.core import keys
from origin.core.builder import BundleBuilder
from origin.core.catalog import Segment
from origin.core.demo_catalog import DEMO_SEGMENTS_HEADER, demo_segments
from origin.core.redis_client import RedisLike
from origin.core.redis_text import as_text
from origin.core.seed import seed_demo
from origin.core.segment_changes import SegmentEditor
from origin.core.segments_config import (
    DEMO_SEGMENTS_FILE,
    load_segments_file,
    parse_segments,
    segments_toml,
)
from origin.core.store import Store
from origin.errors import SegmentInvalid

GOOD = """
[segments.gamers]
name = "Gamers"
price_band = [1000, 90000]
[segments.gamers.category_affinity]
gaming = 2.0
"""


def test_demo_file_is_what_the_generator_writes_and_reads_back() -> None:
    assert DEMO_SEGMENTS_FILE.read_text() == segments_toml(demo_segments(), DEMO_SEGMENTS_HEADER)
    assert load_segments_file(DEMO_SEGMENTS_FILE) == list(demo_segments())


def test_json_has_the_same_shape() -> None:
    text = '{"segments": {"gamers": {"name": "Gamers", "price_band": [1, 2]}}}'
    assert parse_segments(text, "s.json", json_format=True) == [
        Segment("gamers", "Gamers", {}, (1, 2), 0.5)
    ]


@pytest.mark.parametrize(
    ("edit", "field", "reason"),
    [
        (('name = "Gamers"', 'name = ""'), "name", "non-empty"),
        (("[1000, 90000]", "[90000, 1000]"), "price_band", "low <= high"),
        (("[1000, 90000]", '"cheap"'), "price_band", "[low, high]"),
        (("gaming = 2.0", "gaming = -1"), "category_affinity.gaming", "0..100"),
        (("gaming = 2.0", 'gaming = "lots"'), "category_affinity.gaming", "not a number"),
        (("gaming = 2.0", "Gaming = 2.0"), "category_affinity.Gaming", "category id"),
        (('name = "Gamers"', 'name = "Gamers"\ncolour = 1'), "colour", "unknown field"),
    ],
)
def test_validation_names_source_segment_and_field(
    edit: tuple[str, str], field: str, reason: str
) -> None:
    with pytest.raises(SegmentInvalid) as caught:
        parse_segments(GOOD.replace(*edit), "segments.toml")
    error = caught.value
    assert (error.source, error.segment, error.field) == ("segments.toml", "gamers", field)
    assert reason in error.reason
    assert str(error).startswith(f"segments.toml: segment 'gamers': {field}: ")


async def test_adding_builds_bundles_removing_retires_and_purges(redis_client: RedisLike) -> None:
    store = Store(redis_client, 5.0)
    slots = load_slots()
    await seed_demo(store, slots, 42, 300)
    editor = SegmentEditor(store, BundleBuilder(slots), ["local-edge"])
    gamers = parse_segments(GOOD, "t")[0]

    added = await editor.put(gamers)
    per_segment = sum(s.anchor is None for s in slots.slots.values()) * len(slots.locales)
    assert added.added == ["gamers"]
    assert (added.bundles_built, added.bundles_changed) == (per_segment, per_segment)
    assert "gamers" in {s.id for s in await store.segments()}
    assert await store.get_envelope(FragmentKey("home-hero", "gamers")) is not None

    same = await editor.put(gamers)
    assert (same.unchanged, same.bundles_changed) == (["gamers"], 0)

    removed = await editor.delete("gamers")
    assert removed.removed == ["gamers"]
    assert removed.bundles_retired == per_segment
    assert "gamers" not in {s.id for s in await store.segments()}
    for slot in slots.slots:
        partition = f"{slot}/gamers"
        for locale in slots.locales:
            assert await store.get_envelope(FragmentKey(slot, "gamers", locale=locale)) is None
        assert not await redis_client.exists(
            keys.partition_hashes_key(partition),
            keys.partition_index_key(partition),
            keys.segment_list_key(partition),
        )
    first = next(iter(slots.slots))
    queue = await redis_client.zrange(keys.purge_queue_key(f"{first}/gamers", "local-edge"), 0, -1)
    assert "segment:gamers" in {as_text(t) for t in queue if isinstance(t, bytes | str)}
    # other segments are untouched
    assert await store.get_envelope(FragmentKey("home-hero", "tech-enthusiasts")) is not None
