"""Experiments from hostile JSON: NaN / Infinity and deep nesting are 400s naming the body or
field (never a 500, never stored and then published as invalid JSON)."""

from __future__ import annotations

import json
import math

import httpx
import pytest

from fragments.experiment_codec import experiment_from_dict
from fragments.experiments import ExperimentInvalid
from tests.origin.experiments.support import EDITOR, hero_experiment


@pytest.mark.parametrize(
    "body",
    [
        json.dumps(hero_experiment()).replace('"weight": 0.5', '"weight": NaN', 1),
        json.dumps(hero_experiment()).replace('"weight": 0.5', '"weight": Infinity', 1),
        json.dumps(hero_experiment(coverage=1.0)).replace(
            '"coverage": 1.0', '"coverage": -Infinity'
        ),
        '{"key": "deep", "targeting": ' + "[" * 20_000 + "]" * 20_000 + "}",
    ],
    ids=["nan-weight", "infinite-weight", "infinite-coverage", "deep"],
)
async def test_non_finite_or_deep_bodies_are_400(api: httpx.AsyncClient, body: str) -> None:
    response = await api.post(
        "/v1/experiments",
        content=body,
        headers={**EDITOR, "content-type": "application/json"},
    )
    listed = await api.get("/v1/experiments", headers=EDITOR)

    assert response.status_code == 400, response.text
    assert response.json()["invalid_params"][0]["name"] == "body"
    assert listed.json()["experiments"] == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"coverage": math.inf}, "coverage"),
        ({"holdout": math.nan}, "holdout"),
        (
            {"variants": [{"id": "a", "weight": 1.0, "changes": {"shown": math.inf}}]},
            "variants[0].changes.shown",
        ),
        (
            {"targeting": {"conditions": [{"attribute": "x", "op": "gt", "value": math.nan}]}},
            "targeting.conditions[0].value",
        ),
    ],
)
def test_the_codec_refuses_non_finite_numbers(change: dict[str, object], field: str) -> None:
    with pytest.raises(ExperimentInvalid) as caught:
        experiment_from_dict({**hero_experiment(), **change})
    assert field in caught.value.problems
