"""Bundles for the edge tests: small hand-made ones, and real ones built from the demo catalog.

The catalog-built bundles come from `origin.core.builder.BundleBuilder` over
`origin.core.demo_catalog.generate_catalog(CATALOG_SEED, CATALOG_SKUS)` with a fixed build time, so
they are identical on every run (the golden vectors depend on that). The slot catalog is the
shipped `slots.toml` plus two test slots: `big-grid` (200 candidates, the rerank design load)
and `promo-row` (pins, a boost and a bury). Never performs I/O beyond reading slots.toml.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import cache

from edge.config import EdgeConfig
from fragments.bundle import Bundle, Candidate, RerankSettings, StockState, content_hash
from fragments.ids import FragmentKey
from fragments.slots import (
    DEFAULT_SLOTS_FILE,
    CachePolicy,
    RankAdjustment,
    SlotCatalog,
    parse_slots,
)
from fragments.tags import bundle_tags
from origin.core.anchored import similar_products
from origin.core.builder import BundleBuilder
from origin.core.catalog import Product
from origin.core.demo_catalog import DemoCatalog, generate_catalog
from origin.core.scoring import rank

CATALOG_SEED = 42
CATALOG_SKUS = 400
BUILT_AT = 1_700_000_000.0
"""Build time of every catalog bundle (and the vectors' reference clock)."""
SECRET = "edge-test-secret-0123456789"
POLICY = CachePolicy(max_age=60, stale_while_revalidate=300, stale_if_error=86400)

# --- hand-made bundles -----------------------------------------------------------------------


def candidate(
    sku: str,
    score: float,
    category: str = "misc",
    *,
    brand: str = "Acme",
    price: int = 1000,
    stock: StockState = "in_stock",
) -> Candidate:
    """A candidate whose card is a short marker element."""
    return Candidate(sku, score, category, brand, price, stock, (), f"<i>{sku}</i>")


def settings(
    shown: int = 3,
    max_per_category: int = 0,
    pin: Sequence[str] = (),
    adjustments: Sequence[RankAdjustment] = (),
) -> RerankSettings:
    return RerankSettings(shown, max_per_category, tuple(pin), tuple(adjustments))


def small_bundle(
    candidates: Sequence[Candidate],
    *,
    key: FragmentKey | None = None,
    rerank: RerankSettings | None = None,
    policy: CachePolicy = POLICY,
    fallback_html: str = "<p>fallback</p>",
    version: int = 1,
) -> Bundle:
    """A bundle around hand-made candidates with a `<ul>` wrapper."""
    key = key or FragmentKey("home-hero", "everyone")
    rerank = rerank or settings()
    cands = tuple(candidates)
    head, tail = f'<ul data-slot="{key.slot}">', "</ul>"
    return Bundle(
        key=key,
        candidates=cands,
        head_html=head,
        tail_html=tail,
        rerank=rerank,
        fallback_html=fallback_html,
        policy=policy,
        tags=bundle_tags(key, [c.sku for c in cands]),
        version=version,
        content_hash=content_hash(key, cands, head, tail, rerank, fallback_html),
        built_at=BUILT_AT,
    )


# --- catalog-built bundles -------------------------------------------------------------------


@cache
def demo_catalog() -> DemoCatalog:
    return generate_catalog(CATALOG_SEED, CATALOG_SKUS)


def _ranked(slot: str, segment: str, slots: SlotCatalog) -> list[tuple[Product, float]]:
    seg = next(s for s in demo_catalog().segments if s.id == segment)
    config = slots.slots[slot]
    return rank(demo_catalog().products, seg, config.scoring, config.candidates)


def _test_slots_toml(base: SlotCatalog) -> str:
    """`big-grid` and `promo-row`; promo-row pins SKUs taken from its own ranking."""
    ranked = [p for p, _ in _ranked("pdp-cross-sell", "everyone", base)]
    pins = [ranked[20].sku, ranked[35].sku, "SKU-99999"]  # the last one is not a candidate
    buried_brand = ranked[0].brand
    boosted_category = ranked[10].category
    return f"""
[slots.big-grid]
title = "Everything for you"
wrapper = "grid_wrapper.html.j2"
card = "card_compact.html.j2"
candidates = 200
shown = 24
max_per_category = 4
fallback_html = '<section class="se-slot se-slot--empty" data-slot="big-grid"></section>'
[slots.big-grid.policy]
max_age = 30
stale_while_revalidate = 60
stale_if_error = 600

[slots.promo-row]
title = "This week's picks"
wrapper = "row_wrapper.html.j2"
card = "card_compact.html.j2"
candidates = 60
shown = 6
max_per_category = 0
fallback_html = "<aside>Picks are on their way.</aside>"
[slots.promo-row.policy]
max_age = 60
stale_while_revalidate = 300
stale_if_error = 3600
[slots.promo-row.scoring]
affinity = 1.5
popularity = 0.5
margin = 0.5
[slots.promo-row.rules]
pin = {pins!r}
boost = [{{category = "{boosted_category}", factor = 2.5}}]
bury = [{{brand = "{buried_brand}", factor = 0.2}}]
"""


@cache
def slot_catalog() -> SlotCatalog:
    """The shipped slots plus `big-grid` and `promo-row`."""
    shipped = DEFAULT_SLOTS_FILE.read_text(encoding="utf-8")
    base = parse_slots(shipped, DEFAULT_SLOTS_FILE.name)
    return parse_slots(shipped + _test_slots_toml(base), f"{DEFAULT_SLOTS_FILE.name} + tests")


@cache
def builder() -> BundleBuilder:
    return BundleBuilder(slot_catalog())


def edge_config() -> EdgeConfig:
    return EdgeConfig.from_slots(slot_catalog(), SECRET)


def catalog_bundle(
    slot: str,
    segment: str = "everyone",
    locale: str = "en-US",
    *,
    variant: str = "control",
    sold_out: int = 0,
    version: int = 1,
) -> Bundle:
    """The bundle the origin would build for (slot, segment, variant, locale).

    `sold_out` > 0 marks that many of the top-ranked products sold out *after* they were
    ranked (the state a bundle is in between a sell-out and the list's rescore), so the bundle
    carries sold-out candidates the edge must drop.
    """
    slots = slot_catalog()
    ranked = _ranked(slot, segment, slots)
    ranked = [
        (replace(p, stock=0) if i < sold_out else p, value) for i, (p, value) in enumerate(ranked)
    ]
    return builder().build(FragmentKey(slot, segment, variant, locale), ranked, version, BUILT_AT)


def anchored_bundle(slot: str, anchor_rank: int, locale: str = "en-US") -> Bundle:
    """The anchored bundle the origin would build for the `anchor_rank`-th catalog product
    (similarity fallback: no list is imported in the demo catalog)."""
    slots = slot_catalog()
    anchor = demo_catalog().products[anchor_rank]
    ranked = similar_products(anchor, demo_catalog().products, slots.slots[slot].candidates)
    key = FragmentKey.anchored(slot, anchor.sku, locale=locale)
    return builder().build(key, ranked, 1, BUILT_AT)
