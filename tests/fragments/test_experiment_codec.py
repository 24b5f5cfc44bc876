"""The experiment codec accepts what the OpenAPI schema says: integers are whole, flags boolean."""

from __future__ import annotations

from typing import Any

import pytest

from fragments.experiment_codec import experiment_from_dict
from fragments.experiments import ExperimentInvalid


def _doc(**changes: Any) -> dict[str, Any]:
    return {
        "key": "hero",
        "name": "Hero",
        "slots": ["home-hero"],
        "variants": [
            {"id": "control", "weight": 0.5},
            {"id": "compact", "weight": 0.5, "changes": changes},
        ],
    }


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"shown": 3.5}, "variants[1].changes.shown"),
        ({"shown": "3"}, "variants[1].changes.shown"),
        ({"origin_rendered": "yes"}, "variants[1].changes.origin_rendered"),
    ],
)
def test_fractional_counts_and_non_boolean_flags_are_problems(
    changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(ExperimentInvalid) as caught:
        experiment_from_dict(_doc(**changes))
    assert field in caught.value.problems


def test_whole_numbers_written_as_floats_are_integers() -> None:
    experiment = experiment_from_dict({**_doc(shown=4.0), "hash_version": 1.0})
    assert experiment.variants[1].changes.shown == 4
    assert experiment.hash_version == 1


def test_hash_version_must_be_whole() -> None:
    with pytest.raises(ExperimentInvalid) as caught:
        experiment_from_dict({**_doc(), "hash_version": 1.5})
    assert "hash_version" in caught.value.problems
