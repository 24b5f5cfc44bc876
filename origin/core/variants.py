"""Which bundle variants a published configuration needs, and how each differs from control.

Every variant of a running experiment gets bundles of its own (the variant id is part of the
bundle key): variants that change templates or scoring are rendered with those overrides;
variants that change the custom-label rule of their slots rank their own lists with it;
variants that only change the edge rerank get a bundle key of their own with control's content.
Paused, stopped and draft experiments route everyone to control, so they need none.
Pure: it never performs I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from fragments.experiments import SCORING_FIELDS, EdgeExperimentConfig
from fragments.ids import CONTROL_VARIANT
from fragments.labels import LabelRule
from fragments.slots import ScoringWeights


@dataclass(frozen=True, slots=True)
class BundleVariant:
    """A variant the origin keeps bundles of, on some slots."""

    id: str
    slots: frozenset[str] | None = None
    """The slots it applies to (None: every slot, as for control)."""
    wrapper_template: str | None = None
    card_template: str | None = None
    scoring: Mapping[str, float] | None = None
    """Scoring exponents it overrides; such a variant ranks its own candidate list."""
    labels: LabelRule | None = None
    """A custom-label rule replacing its slots' own (None keeps theirs); such a variant ranks
    its own candidate list too."""

    def applies_to(self, slot: str) -> bool:
        return self.slots is None or slot in self.slots

    @property
    def own_list(self) -> bool:
        """True when it needs a ranked list of its own (it changes the scoring or the label
        rule)."""
        return (bool(self.scoring) or self.labels is not None) and self.id != CONTROL_VARIANT

    def weights(self, base: ScoringWeights) -> ScoringWeights:
        """The slot's scoring weights with this variant's overrides."""
        if not self.scoring:
            return base
        known = {k: float(v) for k, v in self.scoring.items() if k in SCORING_FIELDS}
        return replace(base, **known)


CONTROL_BUNDLES = BundleVariant(CONTROL_VARIANT)


def variants_of(config: EdgeExperimentConfig) -> tuple[BundleVariant, ...]:
    """Control, then every variant of every running experiment in the configuration."""
    out = [CONTROL_BUNDLES]
    for experiment in config.experiments:
        if experiment.status != "running":
            continue
        for v in experiment.variants:
            if v.id == CONTROL_VARIANT:
                continue
            c = v.changes
            out.append(
                BundleVariant(
                    id=v.id,
                    slots=frozenset(experiment.slots),
                    wrapper_template=c.wrapper_template,
                    card_template=c.card_template,
                    scoring=dict(c.scoring) if c.scoring else None,
                    labels=c.labels,
                )
            )
    return tuple(out)
