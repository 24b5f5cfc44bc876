"""Build a fragment bundle from ranked products: the one place bundles are rendered.

Pure (no I/O): given a key, its ranked products and the previous version (and, for an experiment
variant, its template overrides), it returns the Bundle.
Card HTML is memoised per (template, locale, card view), so recomputing a bundle after one SKU
changed re-renders one card, not a hundred; whole candidates are memoised per (card template,
locale, product, score), so the unchanged ones of a recomputed bundle cost a cache lookup.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import lru_cache

from fragments.bundle import Bundle, Candidate, RerankSettings, content_hash
from fragments.cards import CardView
from fragments.ids import FragmentKey
from fragments.render import Renderer
from fragments.slots import SlotCatalog
from fragments.tags import bundle_tags
from origin.core.catalog import Product
from origin.errors import UnknownEntity

CARD_CACHE_SIZE = 50_000


class BundleBuilder:
    """Renders bundles for the slots of one slot catalog."""

    def __init__(self, slots: SlotCatalog, renderer: Renderer | None = None) -> None:
        self.slots = slots
        self.renderer = renderer or Renderer()
        self._card = lru_cache(maxsize=CARD_CACHE_SIZE)(self._render_card)
        self._candidate = lru_cache(maxsize=CARD_CACHE_SIZE)(self._make_candidate)
        self._wrapper = lru_cache(maxsize=1024)(self._render_wrapper)

    def build(
        self,
        key: FragmentKey,
        ranked: Sequence[tuple[Product, float]],
        version: int,
        now: float | None = None,
        *,
        wrapper_template: str | None = None,
        card_template: str | None = None,
    ) -> Bundle:
        """The bundle for `key` showing `ranked` (best first).

        An experiment variant may render with other wrapper / card templates (None keeps the
        slot's).
        """
        slot = self.slots.get(key.slot)
        if slot is None:
            raise UnknownEntity("slot", key.slot)
        card = card_template or slot.card_template
        candidates = tuple(
            self._candidate(card, key.locale, product, value)
            for product, value in ranked[: slot.candidates]
        )
        head, tail = self._wrapper(wrapper_template or slot.wrapper_template, key, slot.title)
        rerank = RerankSettings.from_slot(slot)
        return Bundle(
            key=key,
            candidates=candidates,
            head_html=head,
            tail_html=tail,
            rerank=rerank,
            fallback_html=slot.fallback_html,
            policy=slot.policy,
            tags=bundle_tags(key, [c.sku for c in candidates]),
            version=version,
            content_hash=content_hash(key, candidates, head, tail, rerank, slot.fallback_html),
            built_at=time.time() if now is None else now,
        )

    def _make_candidate(
        self, template: str, locale: str, product: Product, value: float
    ) -> Candidate:
        view = product.card()
        return Candidate(
            sku=product.sku,
            score=value,
            category=product.category,
            brand=product.brand,
            price_cents=product.price_cents,
            stock_state=view.stock_state,
            badges=view.badges,
            card_html=self._card(template, locale, view),
        )

    def _render_card(self, template: str, locale: str, view: CardView) -> str:
        return self.renderer.card(template, view, locale)

    def _render_wrapper(self, template: str, key: FragmentKey, title: str) -> tuple[str, str]:
        return self.renderer.wrapper(template, key, title)
