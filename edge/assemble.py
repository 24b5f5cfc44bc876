"""Join the chosen cards into the slot wrapper: no template rendering on the hot path.

Each card is wrapped in an element carrying click-tracking data attributes (slot, position,
SKU, variant); values are ids validated upstream, escaped again here for defence in depth.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from fragments.bundle import Bundle, Candidate


def assemble(bundle: Bundle, chosen: Sequence[Candidate], variant: str) -> str:
    """The slot's HTML for these candidates."""
    if not chosen:
        return bundle.fallback_html
    slot = escape(bundle.key.slot)
    var = escape(variant)
    items = "".join(
        f'<div class="se-item" data-se-slot="{slot}" data-se-pos="{i}" '
        f'data-se-sku="{escape(c.sku)}" data-se-variant="{var}">{c.card_html}</div>'
        for i, c in enumerate(chosen)
    )
    return bundle.head_html + items + bundle.tail_html
