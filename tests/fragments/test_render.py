"""Sandboxed rendering: attribute access blocked, autoescape, strict undefined, money formatting."""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2.exceptions import SecurityError, UndefinedError

from fragments.cards import CardView
from fragments.errors import RenderError
from fragments.ids import FragmentKey
from fragments.render import CARDS_MARKER, Renderer, format_money


def card(**changes: object) -> CardView:
    fields: dict[str, object] = {
        "sku": "SKU-00001",
        "title": "Trail Boot",
        "brand": "Pineport",
        "category": "footwear",
        "price_cents": 129_900,
        "compare_at_cents": 159_999,
        "currency": "USD",
        "promo": None,
        "stock_state": "low_stock",
        "badges": ("low-stock", "sale"),
        "url": "/products/SKU-00001",
        "image_url": "/static/img/footwear.svg",
    }
    fields.update(changes)
    return CardView(**fields)  # type: ignore[arg-type]


@pytest.fixture
def custom(tmp_path: Path) -> Renderer:
    """A renderer over a folder of hostile and broken templates."""
    templates = {
        "dunder.j2": "{{ product.__class__.__mro__ }}",
        "globals.j2": "{{ product.title.__class__.__init__.__globals__ }}",
        "mutate.j2": "{% set xs = [1] %}{{ xs.append(2) }}{{ xs }}",
        "format.j2": "{{ '{0.__class__}'.format(product) }}",
        "undefined.j2": "{{ product.no_such_field }}",
        "missing_var.j2": "{{ nothing }}",
        "syntax.j2": "{% if %}",
        "no_cards.j2": "<section>{{ title }}</section>",
        "cards.j2": "<section>{{ title }}{{ cards }}</section>",
    }
    for name, text in templates.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return Renderer(tmp_path)


@pytest.mark.parametrize("template", ["dunder.j2", "globals.j2", "mutate.j2", "format.j2"])
def test_sandbox_blocks_unsafe_access(custom: Renderer, template: str) -> None:
    with pytest.raises(RenderError, match=template) as caught:
        custom.card(template, card(), "en-US")
    assert isinstance(caught.value.__cause__, SecurityError)


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("undefined.j2", "has no attribute 'no_such_field'"),
        ("missing_var.j2", "'nothing' is undefined"),
    ],
)
def test_undefined_is_a_render_error(custom: Renderer, template: str, reason: str) -> None:
    with pytest.raises(RenderError, match=reason) as caught:
        custom.card(template, card(), "en-US")
    assert isinstance(caught.value.__cause__, UndefinedError)


def test_syntax_errors_and_missing_templates_are_render_errors(custom: Renderer) -> None:
    with pytest.raises(RenderError, match=r"syntax\.j2"):
        custom.card("syntax.j2", card(), "en-US")
    with pytest.raises(RenderError, match=r"nope\.j2"):
        custom.card("nope.j2", card(), "en-US")


def test_wrapper_without_cards_placeholder_is_a_render_error(custom: Renderer) -> None:
    with pytest.raises(RenderError, match=r"does not render \{\{ cards \}\}"):
        custom.wrapper("no_cards.j2", FragmentKey("home-hero", "everyone"), "T")


def test_wrapper_splits_around_the_cards(custom: Renderer) -> None:
    head, tail = custom.wrapper("cards.j2", FragmentKey("home-hero", "everyone"), "<T&>")
    assert (head, tail) == ("<section>&lt;T&amp;&gt;", "</section>")


def test_autoescape_escapes_every_shopper_visible_field() -> None:
    hostile = card(
        title="<script>alert('x')</script>",
        brand='Acme" onmouseover="x',
        promo="<b>50%</b>",
        badges=("promo",),
        url='javascript:alert(1)//"><img src=x>',
    )

    html = Renderer().card("card.html.j2", hostile, "en-US")

    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "Acme&#34; onmouseover=&#34;x" in html
    assert "&lt;b&gt;50%&lt;/b&gt;" in html
    assert '"><img' not in html


def test_shipped_card_shows_price_compare_at_and_badges() -> None:
    html = Renderer().card("card.html.j2", card(), "en-US")

    assert 'data-sku="SKU-00001"' in html
    assert "$1,299.00" in html
    assert '<s class="se-price se-price--was">$1,599.99</s>' in html
    assert "Only a few left" in html
    assert "Sale" in html
    assert "se-card--low_stock" in html


def test_shipped_compact_card_formats_prices_for_de() -> None:
    html = Renderer().card("card_compact.html.j2", card(currency="EUR"), "de-DE")
    assert "1.299,00\u00a0€" in html


def test_shipped_wrappers_render_ids_and_split_around_cards() -> None:
    key = FragmentKey("home-hero", "everyone", "b", "de-DE")
    for template in ("grid_wrapper.html.j2", "row_wrapper.html.j2"):
        head, tail = Renderer().wrapper(template, key, "Für dich")
        assert 'data-slot="home-hero"' in head
        assert 'data-variant="b"' in head
        assert 'lang="de-DE"' in head
        assert "Für dich" in head
        assert CARDS_MARKER not in head + tail
        assert tail.strip().startswith("</div>")


@pytest.mark.parametrize(
    ("cents", "currency", "locale", "text"),
    [
        (129_900, "USD", "en-US", "$1,299.00"),
        (5, "USD", "en-US", "$0.05"),
        (0, "USD", "en-US", "$0.00"),
        (-150, "USD", "en-US", "-$1.50"),
        (123_456_789, "USD", "en-US", "$1,234,567.89"),
        (1_250, "EUR", "en-US", "€12.50"),
        (1_250, "GBP", "en-GB", "£12.50"),
        (1_250, "CHF", "en-US", "CHF 12.50"),
        (129_900, "USD", "de-DE", "1.299,00\u00a0$"),
        (129_900, "EUR", "de-DE", "1.299,00\u00a0€"),
        (5, "EUR", "de-DE", "0,05\u00a0€"),
        (-150, "EUR", "de-DE", "-1,50\u00a0€"),
        (123_456_789, "EUR", "de-AT", "1.234.567,89\u00a0€"),
        (1_250, "CHF", "de-DE", "12,50\u00a0CHF"),
    ],
)
def test_money_formatting(cents: int, currency: str, locale: str, text: str) -> None:
    assert format_money(cents, currency, locale) == text
