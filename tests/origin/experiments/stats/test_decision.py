"""The decision table: each verdict, and the order the checks are made in."""

from __future__ import annotations

import pytest

from origin.experiments.stats.analysis import MetricAnalysis, adjust_family, analyse_metric
from origin.experiments.stats.decision import Decision, Gate, GuardrailAnalysis, decide
from origin.experiments.stats.moments import Moments

IDS = ["control", "b"]


def _binary(metric: str, control: tuple[int, int], challenger: tuple[int, int]) -> MetricAnalysis:
    moments = [Moments.binary(*control), Moments.binary(*challenger)]
    return analyse_metric(metric, IDS, moments, cuped=False)


def _decide(
    primary: MetricAnalysis,
    guard: MetricAnalysis | None = None,
    *,
    srm: bool = False,
    multi: float = 0.0,
    correction: str = "holm",
) -> Decision:
    family = adjust_family([primary] + ([guard] if guard else []), correction)  # type: ignore[arg-type]
    guards = [GuardrailAnalysis(family[1], 0.05)] if guard else []
    return decide(
        family[0], guards, alpha=0.05, binary_primary=True, gate=Gate(500, 20),
        srm_mismatch=srm, multiple_exposure_share=multi,
    )  # fmt: skip


WIN = _binary("purchase", (1000, 20_000), (1300, 20_000))
LOSS = _binary("purchase", (1300, 20_000), (1000, 20_000))
FLAT = _binary("purchase", (1000, 20_000), (1010, 20_000))
CART_CRASH = _binary("add_to_cart", (4000, 20_000), (3000, 20_000))
CART_FINE = _binary("add_to_cart", (4000, 20_000), (4000, 20_000))


@pytest.mark.parametrize(
    ("decision", "verdict", "words"),
    [
        (_decide(WIN), "ship", "b beats control on purchase"),
        (_decide(WIN, CART_FINE), "ship", "passes every guardrail"),
        (_decide(WIN, CART_CRASH), "do_not_ship", "lowers add to cart by more than the 5.0 %"),
        (_decide(LOSS), "do_not_ship", "worse than control"),
        (_decide(FLAT), "inconclusive", "no challenger differs"),
        (_decide(WIN, srm=True), "blocked", "sample-ratio"),
        (_decide(WIN, multi=0.03), "blocked", "more than one variant"),
        (_decide(_binary("purchase", (10, 400), (30, 400))), "need_more_data", "500 exposed"),
        (_decide(_binary("purchase", (5, 900), (9, 900))), "need_more_data", "converting"),
    ],
)
def test_verdicts(decision: Decision, verdict: str, words: str) -> None:
    assert decision.verdict == verdict
    assert words in decision.reason


def test_the_correction_can_take_a_marginal_win_away() -> None:
    # significant alone (always-valid p < 0.05), not once three other comparisons join the family
    marginal = _binary("purchase", (1000, 20_000), (1155, 20_000))
    assert marginal.comparisons[0].sequential.p_value < 0.05
    family = adjust_family([marginal, FLAT, FLAT, FLAT], "holm")
    assert family[0].comparisons[0].adjusted_p_value > 0.05
