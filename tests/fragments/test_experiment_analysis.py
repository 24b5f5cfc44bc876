"""The analysis settings of an experiment: read, validated with field-naming messages, kept out of
the published edge configuration."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fragments.experiment_codec import config_to_json, experiment_from_dict, experiment_to_dict
from fragments.experiment_validation import validate
from fragments.experiments import Analysis, EdgeExperimentConfig, ExperimentInvalid, Guardrail


def _doc(**analysis: Any) -> dict[str, Any]:
    return {
        "key": "hero",
        "name": "Hero",
        "status": "running",
        "slots": ["home-hero"],
        "variants": [{"id": "control", "weight": 0.5}, {"id": "compact", "weight": 0.5}],
        "analysis": analysis,
    }


def test_defaults_and_round_trip() -> None:
    plain = experiment_from_dict(_doc())
    assert plain.analysis == Analysis()
    configured = experiment_from_dict(
        _doc(
            primary_metric="revenue",
            guardrails=[{"metric": "add_to_cart", "max_drop": 0.05}],
            correction="bh",
            minimum_visitors=2000,
            cuped=False,
            mde=0.1,
        )
    )
    assert configured.analysis == Analysis(
        "revenue", (Guardrail("add_to_cart", 0.05),), "bh", 2000, False, 0.1
    )
    assert experiment_from_dict(experiment_to_dict(configured)) == configured


def test_the_published_edge_config_carries_no_analysis() -> None:
    e = experiment_from_dict(_doc(primary_metric="revenue"))
    published = json.loads(config_to_json(EdgeExperimentConfig(1, (e,))))
    assert "analysis" not in published["experiments"][0]


BAD = [
    ({"primary_metric": "bounces"}, "analysis.primary_metric"),
    ({"guardrails": [{"metric": "purchase", "max_drop": 0.05}]}, "analysis.guardrails[0].metric"),
    ({"guardrails": [{"metric": "click", "max_drop": 1.5}]}, "analysis.guardrails[0].max_drop"),
    ({"guardrails": [{"metric": "nope", "max_drop": 0.1}]}, "analysis.guardrails[0].metric"),
    (
        {
            "guardrails": [
                {"metric": "click", "max_drop": 0.1},
                {"metric": "click", "max_drop": 0.2},
            ]
        },
        "analysis.guardrails[1].metric",
    ),
    ({"correction": "bonferroni"}, "analysis.correction"),
    ({"minimum_visitors": 0}, "analysis.minimum_visitors"),
    ({"mde": 0}, "analysis.mde"),
]


@pytest.mark.parametrize(("analysis", "field"), BAD)
def test_invalid_settings_name_their_field(analysis: dict[str, Any], field: str) -> None:
    with pytest.raises(ExperimentInvalid) as caught:
        validate(
            experiment_from_dict(_doc(**analysis)), known_slots=["home-hero"], known_segments=[]
        )
    assert field in caught.value.problems, caught.value.problems


@pytest.mark.parametrize(
    ("analysis", "field"),
    [
        ({"cuped": "yes"}, "analysis.cuped"),
        ({"guardrails": [{"max_drop": 0.1}]}, "analysis.guardrails[0].metric"),
    ],
)
def test_malformed_settings_name_their_field(analysis: dict[str, Any], field: str) -> None:
    with pytest.raises(ExperimentInvalid) as caught:
        experiment_from_dict(_doc(**analysis))
    assert field in caught.value.problems
