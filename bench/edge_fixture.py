"""The edge benchmark's inputs: a 200-candidate bundle and a returning shopper's request.

The bundle is built the way the origin builds bundles (`origin.core.builder.BundleBuilder` over the
demo catalog, ranked by `origin.core.scoring.rank` for one segment), with the home-hero slot widened
to 200 candidates, the design load of the edge rerank. The request is a consenting, returning
shopper with a signed segment cookie, two cart items, five recently viewed categories with
prices and a German Accept-Language: every branch of context parsing and rerank does work.
Deterministic apart from the clock it is given. It must never perform I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from edge.config import DEFAULT_SEGMENT
from fragments.bundle import Bundle, encode_bundle
from fragments.ids import CONTROL_VARIANT, FragmentKey
from fragments.segment_cookie import DEV_SEGMENT_SECRET, sign_segment
from fragments.slots import SlotCatalog, load_slots
from origin.core.builder import BundleBuilder
from origin.core.demo_catalog import generate_catalog
from origin.core.scoring import rank
from origin.settings import Settings

SLOT = "home-hero"
SEGMENT = "tech-enthusiasts"
LOCALE = "de-DE"
CANDIDATES = 200
VISITOR_ID = "5e1fed9e" * 4
COOKIE_LIFETIME_S = 24 * 3600
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0 Safari/537.36"
)


@dataclass(frozen=True, slots=True)
class EdgeFixture:
    """A bundle and a request that must be a cache hit for it."""

    bundle: Bundle
    headers: dict[str, str]
    """Lower-cased request headers."""
    now: float
    secret: str
    locales: tuple[str, ...]

    def loop_payload(self, iterations: int, warmup: int) -> str:
        """The JSON `bench.edge_inner.run` takes."""
        doc: dict[str, Any] = {
            "bundle": encode_bundle(self.bundle).decode("utf-8"),
            "stored_at": self.now,
            "now": self.now,
            "secret": self.secret,
            "locales": list(self.locales),
            "default_segment": DEFAULT_SEGMENT,
            "headers": self.headers,
            "query": {},
            "iterations": iterations,
            "warmup": warmup,
        }
        return json.dumps(doc)


def build_fixture(now: float, secret: str = DEV_SEGMENT_SECRET) -> EdgeFixture:
    """The 200-candidate bundle for (home-hero, tech-enthusiasts, control, de-DE) and a request."""
    slots = load_slots()
    wide = replace(slots.slots[SLOT], candidates=CANDIDATES)
    catalog_slots = SlotCatalog(slots={SLOT: wide}, locales=slots.locales)
    settings = Settings()
    catalog = generate_catalog(settings.catalog_seed, settings.catalog_skus)
    segment = next(s for s in catalog.segments if s.id == SEGMENT)
    ranked = rank(catalog.products, segment, wide.scoring, CANDIDATES)
    key = FragmentKey(SLOT, SEGMENT, CONTROL_VARIANT, LOCALE)
    bundle = BundleBuilder(catalog_slots).build(key, ranked, version=1, now=now)
    if len(bundle.candidates) != CANDIDATES:
        raise ValueError(f"fixture bundle has {len(bundle.candidates)} candidates, not 200")
    return EdgeFixture(
        bundle=bundle,
        headers=shopper_headers(bundle, now, secret),
        now=now,
        secret=secret,
        locales=slots.locales,
    )


def shopper_headers(bundle: Bundle, now: float, secret: str) -> dict[str, str]:
    """A consenting returning shopper's headers, with a cart and recent views from the bundle."""
    candidates = bundle.candidates
    cart = "|".join(c.sku for c in candidates[3:5])
    recent = "|".join(f"{c.category}~{c.price_cents}" for c in candidates[20:70:10])
    segment_cookie = sign_segment(
        bundle.key.segment, int(now) + COOKIE_LIFETIME_S, secret, VISITOR_ID
    )
    cookie = (
        f"se_vid={VISITOR_ID}; se_seg={segment_cookie}; se_consent=1; "
        f"se_cart={cart}; se_rv={recent}"
    )
    return {
        "cookie": cookie,
        "accept-language": f"{bundle.key.locale},de;q=0.9,en;q=0.8",
        "user-agent": USER_AGENT,
        "cf-ipcountry": "DE",
        "sec-ch-ua-mobile": "?0",
    }
