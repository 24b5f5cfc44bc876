"""Catalog imports against the real Redis: reports, rejects, threshold, removals, purges.

Every test starts from an empty Redis, imports a synthetic feed (every bundle built from it),
then checks what a second import changed and which bundle tags were queued for purging.
"""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis

from fragments.tags import bundle_tag
from origin.core import keys
from origin.ingest import catalog_import
from origin.ingest.apply_feed import PRINTS_SLICE, FeedApplier
from origin.ingest.errors import ImportAborted
from origin.ingest.synthetic_feed import item_id, jsonl_lines, rss_chunks, synthetic_items
from tests.origin.ingest.support import Shop, make_shop, tsv, tsv_with_rejects

N = 400


@pytest.fixture
async def shop(redis_client: Redis) -> Shop:
    return await make_shop(redis_client)


async def test_a_fresh_tsv_import_creates_every_product_and_builds_bundles(shop: Shop) -> None:
    report = await shop.load(tsv(N))
    assert (report.read, report.created, report.changed, report.rejected) == (N, N, 0, 0)
    assert report.applied
    assert report.bundles_changed == len(shop.recomputer.all_keys())
    product = await shop.store.product(item_id(3))
    assert product is not None
    assert product.link == f"https://shop.example/products/{item_id(3)}"
    assert product.image_link == f"https://cdn.shop.example/img/{item_id(3)}.jpg"
    assert product.description == "A outdoor item & more. Item 3."  # HTML reduced to text
    assert product.category == "outdoor"
    assert product.category_path == "Shop > Outdoor"
    assert product.labels[1] == "summer"
    shown = await shop.shown()
    assert all(skus for skus in shown.values())
    bundle = await shop.bundle(next(iter(shown)))
    card = bundle.candidates[0].card_html
    assert 'href="https://shop.example/products/' in card
    assert 'loading="lazy"' in card


async def test_reimporting_the_same_feed_changes_and_purges_nothing(shop: Shop) -> None:
    await shop.load(tsv(N))
    await shop.queued_tags()
    report = await shop.load(tsv(N))
    assert (report.unchanged, report.created, report.changed, report.removed) == (N, 0, 0, 0)
    assert report.bundles_recomputed == 0
    assert report.purges_enqueued == 0
    assert await shop.queued_tags() == set()


async def test_one_percent_of_prices_changed_purges_only_bundles_showing_them(
    shop: Shop,
) -> None:
    await shop.load(tsv(N))
    await shop.queued_tags()
    before = await shop.shown()
    repriced = set(range(0, N, 100))  # 1 %
    report = await shop.load(tsv(N, repriced=repriced))
    assert (report.changed, report.unchanged) == (len(repriced), N - len(repriced))
    skus = {item_id(i) for i in repriced}
    showing = {key for key, shown in before.items() if shown & skus}
    purged = await shop.queued_tags()
    assert purged
    assert purged <= {bundle_tag(k) for k in showing}
    for key in set(before) - showing:
        assert bundle_tag(key) not in purged


async def test_a_full_feed_removes_products_it_no_longer_contains(shop: Shop) -> None:
    await shop.load(tsv(N))
    await shop.queued_tags()
    report = await shop.load(tsv(N - 50))
    assert report.removed == 50
    gone = {item_id(i) for i in range(N - 50, N)}
    assert await shop.store.product(item_id(N - 1)) is None
    assert not set(await shop.store.all_skus()) & gone
    for shown in (await shop.shown()).values():
        assert not shown & gone  # they left every bundle
    for partition in shop.recomputer.partitions:
        listed: list[Any] = await shop.redis.zrange(keys.segment_list_key(partition), 0, -1)
        assert not {s.decode() for s in listed} & gone  # and every ranked list


async def test_removals_are_looked_for_only_when_the_catalog_holds_more_than_the_feed_named(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full feed's removals. When the catalog holds exactly the products the feed named, and
    those it created, nothing is read back; otherwise the catalog is scanned against the ids the
    feed named. Products created by the same feed, a repeated id, and a product the catalog got
    some other way are each counted right."""
    scans = 0
    sscan = shop.redis.sscan

    async def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal scans
        scans += 1
        return await sscan(*args, **kwargs)

    monkeypatch.setattr(shop.redis, "sscan", counted)
    monkeypatch.setattr(catalog_import, "STAGE_CHUNK", 50)  # several chunks, staged and
    monkeypatch.setattr(catalog_import, "APPLY_CHUNK", 20)  # applied concurrently
    header, *rows = tsv(N + 30).splitlines(keepends=True)
    await shop.load(header + "".join(rows[:N]))
    assert (await shop.load(header + "".join(rows[:N]))).removed == 0
    assert scans == 0  # an unchanged assortment: counted, not scanned

    report = await shop.load(header + "".join(rows[30:]))  # 30 gone, 30 new
    assert (report.created, report.removed, scans > 0) == (30, 30, True)
    assert set(await shop.store.all_skus()) == {item_id(i) for i in range(30, N + 30)}

    # The last product dropped, the first named twice: the repeat must not stand in for it.
    report = await shop.load(header + "".join(rows[30 : N + 29]) + rows[30])
    assert (report.rejected, report.removed) == (1, 1)
    assert await shop.store.product(item_id(N + 29)) is None

    await shop.redis.sadd(keys.CATALOG_SKUS_KEY, "ELSEWHERE-1")  # not from a feed
    scans = 0
    report = await shop.load(header + "".join(rows[30 : N + 29]))
    assert (report.removed, scans > 0) == (1, True)
    assert "ELSEWHERE-1" not in set(await shop.store.all_skus())


async def test_a_delta_feed_updates_what_it_carries_and_removes_nothing(shop: Shop) -> None:
    await shop.load(tsv(N))
    report = await shop.load(tsv(10, repriced={0, 1}), mode="delta")
    assert (report.read, report.changed, report.removed) == (10, 2, 0)
    assert len(await shop.store.all_skus()) == N


async def test_rejected_rows_name_their_line_field_and_reason(shop: Shop) -> None:
    bad = (
        "BAD-1\tNo price\t\thttps://x.example/p\thttps://x.example/i.jpg\t\t\tin_stock\n"
        "BAD-2\tEuro\t\thttps://x.example/p\thttps://x.example/i.jpg\t9.99 EUR\t\tin_stock\n"
        "BAD-3\tScript\t\tjavascript:alert(1)\thttps://x.example/i.jpg\t9.99 USD\t\tin_stock\n"
        "BAD 4\tSpace id\t\thttps://x.example/p\thttps://x.example/i.jpg\t9.99 USD\t\tin_stock\n"
        "BAD-5\tOdd\t\thttps://x.example/p\thttps://x.example/i.jpg\t9.99 USD\t\tsometimes\n"
    )
    report = await shop.load(tsv(N, extra=bad), reject_threshold=0.05)
    assert report.applied
    assert report.created == N
    assert report.rejected == 5
    reasons = {r.sku: (r.position, r.field, r.reason) for r in report.rejections}
    assert reasons["BAD-1"][:2] == (N + 2, "price")  # line N + 2: header is line 1
    assert reasons["BAD-2"][1:] == ("price", "currency EUR is not the catalog's (USD)")
    assert reasons["BAD-3"][1] == "link"
    assert "http(s)" in reasons["BAD-3"][2]
    assert reasons["BAD 4"][1] == "id"
    assert reasons["BAD-5"][1] == "availability"
    assert await shop.store.product("BAD-2") is None


async def test_too_many_rejects_abort_the_import_and_apply_nothing(shop: Shop) -> None:
    await shop.load(tsv(N))
    await shop.queued_tags()
    snapshot = await shop.shown()
    broken = "\n".join(f"X-{i}\tBroken" for i in range(10))  # 10 of 410 > 1 %
    with pytest.raises(ImportAborted) as aborted:
        await shop.load(tsv(N, repriced=range(N)) + broken + "\n")
    assert aborted.value.report.rejected == 10
    assert not aborted.value.report.applied
    assert "nothing applied" in str(aborted.value)
    assert await shop.shown() == snapshot
    product = await shop.store.product(item_id(5))
    first = next(synthetic_items(1, start=5))
    assert product is not None
    assert f"{product.price_cents}" in first["price"].replace(".", "")
    assert await shop.queued_tags() == set()


async def test_jsonl_and_rss_feeds_import_the_same_catalog_as_tsv(redis_client: Redis) -> None:
    shop = await make_shop(redis_client)
    await shop.load(tsv(60))
    from_tsv = await shop.shown()
    for text in (
        "".join(jsonl_lines(synthetic_items(60))),
        "".join(rss_chunks(synthetic_items(60))),
    ):
        await redis_client.flushall()
        shop = await make_shop(redis_client)
        report = await shop.load(text)
        assert (report.created, report.rejected) == (60, 0), report.rejections
        assert await shop.shown() == from_tsv


SALE_FEED = (
    "id\ttitle\tlink\timage_link\tprice\tsale_price\tsale_price_effective_date\tavailability\t"
    "product_type\n"
    + "".join(
        f"SALE-{n}\tTent {n}\thttps://shop.example/p/{n}\thttps://cdn.shop.example/{n}.jpg\t"
        f"{100 + n}.00 USD\t"
        + ("50.00 USD\t2026-11-27T00:00-05:00/2026-11-30T23:59-05:00" if n == 0 else "\t")
        + "\tin_stock\tShop > Outdoor\n"
        for n in range(5)
    )
)
OPEN = 1_795_755_600.0  # 2026-11-27T05:00Z: the sale has just started


async def test_a_sale_window_is_judged_at_each_import(redis_client: Redis) -> None:
    shop = await make_shop(redis_client)
    now = [OPEN - 60.0]
    shop.importer.clock = lambda: now[0]
    await shop.load(SALE_FEED)
    before = await shop.store.product("SALE-0")
    assert before is not None
    assert (before.price_cents, before.compare_at_cents) == (10000, None)  # not yet on sale
    await shop.queued_tags()

    now[0] = OPEN + 60.0  # the same feed, once the sale has started
    report = await shop.load(SALE_FEED)
    assert (report.changed, report.unchanged) == (1, 4)  # unchanged rows, one sale opened
    during = await shop.store.product("SALE-0")
    assert during is not None
    assert (during.price_cents, during.compare_at_cents) == (5000, 10000)
    assert report.bundles_changed > 0
    shown = {key for key, skus in (await shop.shown()).items() if "SALE-0" in skus}
    assert {bundle_tag(key) for key in shown} <= await shop.queued_tags()

    now[0] = OPEN + 5 * 86400.0  # after it
    after = await shop.load(SALE_FEED)
    assert (after.changed, after.unchanged) == (1, 4)
    product = await shop.store.product("SALE-0")
    assert product is not None
    assert (product.price_cents, product.compare_at_cents) == (10000, None)


async def test_a_feed_of_only_the_required_fields_imports_and_builds_every_bundle(
    shop: Shop,
) -> None:
    """No brand, description, category, gtin, mpn or labels: optional in the spec, so empty
    on the product, and every bundle showing it still builds."""
    rows = "".join(
        f"MIN-{n}\tItem {n}\thttps://shop.example/p/{n}\thttps://cdn.shop.example/{n}.jpg\t"
        f"{10 + n}.00 USD\tin_stock\n"
        for n in range(30)
    )
    report = await shop.load("id\ttitle\tlink\timage_link\tprice\tavailability\n" + rows)
    assert (report.created, report.rejected) == (30, 0), report.rejections
    assert report.bundles_changed == len(shop.recomputer.all_keys())
    product = await shop.store.product("MIN-3")
    assert product is not None
    assert (product.brand, product.description, product.category_path) == ("", "", "")
    assert any("MIN-3" in skus for skus in (await shop.shown()).values())


async def test_fingerprints_are_compared_in_redis_per_bucket(redis_client: Redis) -> None:
    """`FeedApplier.changed_prints`: positions ascending, a missing or different fingerprint is
    a change; more SKUs of one bucket than the script reads in one slice are all compared."""
    applier = FeedApplier(redis_client)
    wanted = PRINTS_SLICE * 2 + 5
    names = [f"C-{n}" for n in range(wanted * keys.SKU_BUCKETS * 5 // 4)]
    crowded = [s for s, b in zip(names, keys.sku_buckets(names), strict=True) if b == 7][:wanted]
    assert len(crowded) == wanted
    others = [f"O-{n}" for n in range(len(crowded))]
    skus = [s for pair in zip(crowded, others, strict=True) for s in pair]
    prints = [f"p{n:015d}".encode() for n in range(len(skus))]
    assert await applier.changed_prints(skus, prints) == list(range(len(skus)))
    by_bucket: dict[str, dict[str, bytes]] = {}
    for sku, print_ in zip(skus, prints, strict=True):
        by_bucket.setdefault(keys.feed_prints_key(sku), {})[sku] = print_
    for key, mapping in by_bucket.items():
        await redis_client.hset(key, mapping=mapping)  # type: ignore[arg-type]
    assert await applier.changed_prints(skus, prints) == []
    moved = {3, PRINTS_SLICE * 2 + 2, len(skus) - 1}  # two of the crowded bucket, one not
    again = [b"x" * len(p) if n in moved else p for n, p in enumerate(prints)]
    assert await applier.changed_prints(skus, again) == sorted(moved)
    await redis_client.delete(keys.feed_prints_key(crowded[0]))  # a bucket never imported
    in_bucket = {n for n, sku in enumerate(skus) if keys.sku_bucket(sku) == 7}
    assert await applier.changed_prints(skus, again) == sorted(moved | in_bucket)
    assert await applier.changed_prints([], []) == []
    with pytest.raises(ValueError, match="16 bytes"):
        await applier.changed_prints(skus[:1], [b"short"])


async def test_rejections_are_reported_in_feed_order_across_chunks_in_flight(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk is judged while the next one's fingerprints are compared in Redis: rejections
    found when an item is read (a repeated id) and when it is validated (a bad price) are still
    reported in feed order, and every good item is applied once."""
    monkeypatch.setattr(catalog_import, "STAGE_CHUNK", 7)
    report = await shop.load(tsv_with_rejects(120), reject_threshold=0.5)
    positions = [r.position for r in report.rejections]
    assert len(positions) == report.rejected == 12 + 8
    assert positions == sorted(positions)
    assert {r.field for r in report.rejections} == {"id", "price"}
    assert report.created == 120 - 12


@pytest.mark.parametrize("chunk", [50, 20_000])
async def test_a_repeated_id_is_rejected_naming_its_first_line(
    shop: Shop, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """Within a staging chunk and across chunks (small chunks here), whether the chunk's other
    items are taken in bulk or one at a time: the first row of an id is applied, a repeat is
    rejected naming the line of the first, and a chunk without repeats is taken whole."""
    monkeypatch.setattr(catalog_import, "STAGE_CHUNK", chunk)
    rows = tsv(N).splitlines()
    header, items = rows[0], rows[1:]
    repeats = [items[3], items[300], items[5]]  # after line N + 1: past several small chunks
    report = await shop.load("\n".join([header, *items, *repeats]) + "\n")
    assert (report.read, report.created, report.rejected) == (N + 3, N, 3)
    reasons = sorted((r.position, r.sku, r.field, r.reason) for r in report.rejections)
    assert reasons == [
        (N + 2 + n, item_id(at), "id", f"duplicate id: the same id is at line {at + 2}")
        for n, at in enumerate((3, 300, 5))
    ]
    # A repeat found after the ids are indexed, of an id named in bulk after that.
    again = await shop.load(
        "\n".join([header, *items[:60], items[10], *items[60:], items[350]]) + "\n"
    )
    assert (again.unchanged, again.rejected) == (N, 2)
    assert [(r.position, r.reason) for r in again.rejections] == [
        (62, "duplicate id: the same id is at line 12"),
        (N + 3, "duplicate id: the same id is at line 353"),
    ]
