"""Assembly: chosen cards joined into the wrapper with tracking attributes; fallback when empty."""

from __future__ import annotations

import re

from edge.assemble import assemble
from fragments.ids import FragmentKey
from tests.edge.bundles import candidate, catalog_bundle, small_bundle


def test_cards_are_wrapped_with_position_sku_slot_and_variant() -> None:
    a, b = candidate("A", 1.0), candidate("B", 0.5)
    bundle = small_bundle([a, b])

    html = assemble(bundle, [b, a], "treatment")

    assert html == (
        '<ul data-slot="home-hero">'
        '<div class="se-item" data-se-slot="home-hero" data-se-pos="0" data-se-sku="B" '
        'data-se-variant="treatment"><i>B</i></div>'
        '<div class="se-item" data-se-slot="home-hero" data-se-pos="1" data-se-sku="A" '
        'data-se-variant="treatment"><i>A</i></div>'
        "</ul>"
    )


def test_nothing_chosen_serves_the_bundles_fallback() -> None:
    bundle = small_bundle([candidate("A", 1.0)], fallback_html="<p>bestsellers</p>")
    assert assemble(bundle, [], "control") == "<p>bestsellers</p>"
    assert assemble(small_bundle([], fallback_html=""), [], "control") == ""


def test_attribute_values_are_escaped_again() -> None:
    bundle = small_bundle([candidate("A", 1.0)], key=FragmentKey("home-hero", "everyone"))
    html = assemble(bundle, [candidate('X"><script>', 1.0)], '"><b>')
    assert "<script>" not in html.split("<i>")[0]
    assert 'data-se-sku="X&quot;&gt;&lt;script&gt;"' in html
    assert 'data-se-variant="&quot;&gt;&lt;b&gt;"' in html


def test_a_real_bundle_assembles_into_its_wrapper() -> None:
    bundle = catalog_bundle("home-hero")
    chosen = list(bundle.candidates[:12])

    html = assemble(bundle, chosen, "control")

    assert html.startswith(bundle.head_html)
    assert html.endswith(bundle.tail_html)
    assert re.findall(r'data-se-sku="([^"]+)"', html) == [c.sku for c in chosen]
    assert re.findall(r'data-se-pos="(\d+)"', html) == [str(i) for i in range(12)]
    for c in chosen:
        assert c.card_html in html
