"""Parsing imported recommendation lists: both line formats; rejections name line and field."""

from __future__ import annotations

import json

import pytest

from fragments.errors import SlotConfigError
from fragments.slots import CandidateSource, parse_slots
from origin.core.lists import ImportedList, ListRejection, RankedItem, parse_list_lines


def parse(*docs: object, **options: object) -> list[ImportedList | ListRejection]:
    lines = [d if isinstance(d, str) else json.dumps(d) for d in docs]
    return [item for _, item in parse_list_lines(lines, version=7, **options)]  # type: ignore[arg-type]


def test_native_lines_with_and_without_scores() -> None:
    got = parse(
        {"segment": "tech", "name": "top", "items": ["A-1", "A-2"]},
        {"anchor": "A-1", "name": "similar", "version": 3,
         "items": [{"sku": "B-1", "score": 0.9}, {"sku": "B-2", "score": 0.5}]},
    )  # fmt: skip
    assert got[0] == ImportedList(
        "segment", "tech", "top", 7, (RankedItem("A-1", 1.0), RankedItem("A-2", 0.5))
    )
    assert got[1] == ImportedList(
        "anchor", "A-1", "similar", 3, (RankedItem("B-1", 0.9), RankedItem("B-2", 0.5))
    )
    assert got[1].id == "anchor/A-1/similar"


def test_batch_output_layout_item_lists_and_mapped_users() -> None:
    batch = {"input": {"itemId": "A-1"},
             "output": {"recommendedItems": ["B-1", "B-2"], "scores": [0.4, 0.1]}}  # fmt: skip
    user = {"input": {"userId": "u-17"}, "output": {"recommendedItems": ["B-3"]}}
    got = parse(batch, user, user, default_name="also-bought")
    assert got[0] == ImportedList(
        "anchor", "A-1", "also-bought", 7, (RankedItem("B-1", 0.4), RankedItem("B-2", 0.1))
    )
    assert isinstance(got[1], ListRejection)
    assert (got[1].line, got[1].field) == (2, "input.userId")
    assert "no visitor id may enter a cache key" in got[1].reason
    mapped = parse(user, default_name="top", user_segments={"u-17": "tech"})
    assert mapped == [ImportedList("segment", "tech", "top", 7, (RankedItem("B-3", 1.0),))]


@pytest.mark.parametrize(
    ("line", "field", "reason"),
    [
        ("{not json", "line", "not JSON"),
        ({"segment": "Tech!", "name": "top", "items": []}, "segment", "not a segment id"),
        ({"segment": "tech", "anchor": "A-1", "name": "t", "items": []}, "segment", "exactly one"),
        ({"segment": "tech", "items": []}, "name", "must be 1-64"),
        ({"segment": "tech", "name": "top"}, "items", "missing"),
        ({"segment": "tech", "name": "top", "items": ["A 1"]}, "items[0]", "not a SKU"),
        ({"segment": "tech", "name": "top", "items": ["A-1", "A-1"]}, "items[1]", "duplicate"),
        ({"segment": "tech", "name": "top", "items": ["A-1", "A-2"], "scores": [0.1, 0.5]},
         "scores[1]", "above the score before it"),
        ({"segment": "tech", "name": "top", "items": ["A-1"], "scores": [1, 2]},
         "scores", "one per item"),
        ({"segment": "tech", "name": "top", "items": ["A-1"], "version": 0}, "version", "1..2^53"),
        ({"segment": "tech", "name": "top", "items": ["A-1"], "colour": 1}, "colour", "unknown"),
        ({"input": {"itemId": "A-1"}, "output": {"recommendedItems": ["B-1"], "scores": ["x"]}},
         "output.scores[0]", "not a number"),
        ({"input": {}, "output": {"recommendedItems": []}}, "input", "needs itemId"),
        ({"input": {"itemId": "A-1"}, "output": {}}, "output.recommendedItems", "missing"),
        ({"input": {"itemId": "A-1"}, "output": {}, "error": "timeout"}, "error", "timeout"),
    ],
)  # fmt: skip
def test_each_bad_line_names_its_line_and_field(line: object, field: str, reason: str) -> None:
    good = {"segment": "tech", "name": "top", "items": ["A-1"]}
    got = parse(good, "", line, good)
    assert isinstance(got[0], ImportedList)
    assert isinstance(got[2], ImportedList)
    rejection = got[1]
    assert isinstance(rejection, ListRejection)
    assert rejection.line == 3  # the blank line 2 is skipped, numbering is not
    assert rejection.field == field
    assert reason in rejection.reason
    assert str(rejection).startswith(f"line 3: {field}: ")


def test_slot_sources_parse_and_bad_ones_name_slot_and_field() -> None:
    assert CandidateSource.parse("scoring") == CandidateSource()
    assert CandidateSource.parse("list:top") == CandidateSource("top", scoring=False)
    assert CandidateSource.parse("list:top|scoring") == CandidateSource("top", scoring=True)
    assert str(CandidateSource.parse("list:top|scoring")) == "list:top|scoring"
    base = """
[slots.a]
title = "A"
wrapper = "w"
card = "c"
candidates = 5
shown = 2
source = "SOURCE"
[slots.a.policy]
max_age = 1
stale_while_revalidate = 1
stale_if_error = 1
"""
    assert parse_slots(base.replace("SOURCE", "list:top")).slots["a"].source.list_name == "top"
    for bad, why in [
        ("list:", "list name ''"),
        ("list:Top", "list name 'Top'"),
        ("list:top|other", "only '|scoring'"),
        ("popular", "expected 'scoring'"),
    ]:
        with pytest.raises(SlotConfigError) as caught:
            parse_slots(base.replace("SOURCE", bad), "slots.toml")
        assert caught.value.slot == "a"
        assert "'source'" in caught.value.reason
        assert why in caught.value.reason
