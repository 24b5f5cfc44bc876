"""Holm and Benjamini-Hochberg adjusted p-values.

References: Benjamini-Hochberg against scipy's reference implementation
(``scipy.stats.false_discovery_control(p, method="bh")``); Holm against R's ``p.adjust(p,
"holm")`` on the vector of its documentation style, computed by the published step-down rule
(Holm 1979): sorted p (0.005, 0.01, 0.03, 0.04) times (4, 3, 2, 1) is (0.02, 0.03, 0.06, 0.04),
made monotone: (0.02, 0.03, 0.06, 0.06).
"""

from __future__ import annotations

import pytest
from scipy.stats import false_discovery_control

from origin.experiments.stats.corrections import adjust, benjamini_hochberg, holm

P = [0.01, 0.04, 0.03, 0.005]


def test_holm() -> None:
    assert holm(P) == pytest.approx([0.03, 0.06, 0.06, 0.02])


@pytest.mark.parametrize(
    "p",
    [P, [0.2, 0.01, 0.9, 0.04, 0.04, 0.5], [0.001], [0.05, 0.05, 0.05], [0.8, 0.9, 0.95]],
)
def test_benjamini_hochberg_matches_scipy(p: list[float]) -> None:
    assert benjamini_hochberg(p) == pytest.approx(list(false_discovery_control(p, method="bh")))


def test_holm_is_never_less_conservative_than_bh() -> None:
    p = [0.2, 0.01, 0.9, 0.04, 0.04, 0.5]
    assert all(h >= b for h, b in zip(holm(p), benjamini_hochberg(p), strict=True))


def test_unknown_correction_is_named() -> None:
    with pytest.raises(ValueError, match="bonferroni"):
        adjust(P, "bonferroni")  # type: ignore[arg-type]
