"""Which templates an experiment variant may choose, and whether they render in their role.

A variant may swap the slot's wrapper or card template for another file of the template
directory. Names are checked against the directory, then each chosen template is rendered once
with sample data in its role (a wrapper must render ``{{ cards }}``), so a broken choice is a
422 naming the field, never a publish that fails half-way. Never writes anything.
"""

from __future__ import annotations

from pathlib import Path

from fragments.cards import CardView
from fragments.errors import RenderError
from fragments.experiments import Experiment
from fragments.ids import DEFAULT_LOCALE, FragmentKey
from fragments.render import DEFAULT_TEMPLATE_DIR, Renderer

SAMPLE_CARD = CardView(
    sku="SAMPLE-1",
    title="Sample product",
    brand="Sample",
    category="sample",
    price_cents=1999,
    compare_at_cents=2499,
    currency="USD",
    promo="Sample promo",
    stock_state="low_stock",
    badges=("low-stock", "sale", "promo"),
    url="/products/SAMPLE-1",
    image_url="/static/img/sample.svg",
)


class TemplateCheck:
    """Checks variant template choices against one template directory."""

    def __init__(self, template_dir: Path = DEFAULT_TEMPLATE_DIR) -> None:
        self.names: tuple[str, ...] = tuple(sorted(p.name for p in template_dir.glob("*.j2")))
        self._renderer = Renderer(template_dir)

    def problems(self, experiment: Experiment) -> dict[str, str]:
        """Field -> fix, for chosen templates that exist but fail in their role."""
        out: dict[str, str] = {}
        slot = experiment.slots[0] if experiment.slots else "preview"
        for i, v in enumerate(experiment.variants):
            where = f"variants[{i}].changes"
            wrapper, card = v.changes.wrapper_template, v.changes.card_template
            try:
                if wrapper in self.names:
                    key = FragmentKey(slot, "preview", v.id, DEFAULT_LOCALE)
                    self._renderer.wrapper(wrapper, key, "Preview")
            except (RenderError, ValueError) as exc:
                out[f"{where}.wrapper_template"] = f"{exc}; choose a wrapper template"
            try:
                if card in self.names:
                    self._renderer.card(card, SAMPLE_CARD, DEFAULT_LOCALE)
            except RenderError as exc:
                out[f"{where}.card_template"] = f"{exc}; choose a card template"
        return out
