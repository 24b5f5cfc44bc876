"""Sandboxed Jinja2 rendering of cards and slot wrappers.

Autoescape is on, undefined variables are errors and templates run in Jinja2's sandbox, so a
marketer-edited template can neither reach Python internals nor inject unescaped data. The
origin renders once per change; the edge never renders a template on the hot path.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from fragments.cards import CardView
from fragments.errors import RenderError
from fragments.ids import FragmentKey

DEFAULT_TEMPLATE_DIR = Path(__file__).with_name("templates")
CARDS_MARKER = "<!--se:cards-->"
"""Placeholder the wrapper template renders where the edge joins the cards."""

_CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}


def format_money(cents: int, currency: str, locale: str) -> str:
    """Locale-aware price text (en: $1,299.00; de: 1.299,00 €)."""
    units, rest = divmod(abs(cents), 100)
    symbol = _CURRENCY_SYMBOLS.get(currency, currency + " ")
    sign = "-" if cents < 0 else ""
    if locale.startswith("de"):
        grouped = f"{units:,}".replace(",", ".")
        return f"{sign}{grouped},{rest:02d}\u00a0{symbol.strip()}"
    return f"{sign}{symbol}{units:,}.{rest:02d}"


_CARD_FIELDS = tuple(f.name for f in fields(CardView))
"""What a card template sees as ``product``: every field of the card view (a shallow dict)."""


class Renderer:
    """Renders cards and wrappers from a template directory."""

    def __init__(self, template_dir: Path = DEFAULT_TEMPLATE_DIR) -> None:
        self._env = ImmutableSandboxedEnvironment(
            loader=FileSystemLoader(str(template_dir)),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )
        self._env.filters["money"] = format_money

    def card(self, template: str, card: CardView, locale: str) -> str:
        """One product card's HTML."""
        product = {name: getattr(card, name) for name in _CARD_FIELDS}
        return self._render(template, product=product, locale=locale)

    def wrapper(self, template: str, key: FragmentKey, title: str) -> tuple[str, str]:
        """The HTML before and after the cards of a slot."""
        html = self._render(
            template,
            slot=key.slot,
            segment=key.segment,
            variant=key.variant,
            locale=key.locale,
            title=title,
            cards=Markup(CARDS_MARKER),
        )
        head, marker, tail = html.partition(CARDS_MARKER)
        if not marker:
            raise RenderError(f"wrapper template {template!r} does not render {{{{ cards }}}}")
        return head, tail

    def _render(self, template: str, **context: object) -> str:
        try:
            return self._env.get_template(template).render(**context)
        except TemplateError as exc:
            raise RenderError(f"template {template!r}: {exc}") from exc
