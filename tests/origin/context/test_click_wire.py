"""The processor's msgspec decoder and the event's one definition (`fragments.clickstream`)
agree: the same fields, and on any record (valid or not) the same event or the same error."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fragments.clickstream import FIELDS, ClickEvent, ClickInvalid, decode_click
from origin.context.click_wire import ClickWire, decode_click_fast

NOW = 1_765_000_000.0


def test_the_struct_mirrors_the_definition() -> None:
    assert ClickWire.__struct_fields__ == FIELDS
    assert set(ClickEvent.__dataclass_fields__) == set(FIELDS)


texts = st.sampled_from(
    ["abcdefgh", "A", "a", "sku-1.x", "outdoor", "Bad Id", "", "x" * 65, "abc\n", "é", "OUTDOOR"]
)
values: dict[str, st.SearchStrategy[Any]] = {
    "id": st.one_of(texts, st.just("event-0001"), st.integers()),
    "type": st.sampled_from(["view", "add_to_cart", "remove_from_cart", "purchase", "search", "x"]),
    "visitor": st.one_of(texts, st.just("v1")),
    "session": st.one_of(texts, st.just("s1")),
    "at": st.one_of(
        st.floats(NOW - 8 * 86400, NOW + 600, allow_nan=False),
        st.integers(int(NOW) - 8 * 86400, int(NOW) + 600),
        st.booleans(),
        st.just("1765000000"),
    ),
    "consent": st.one_of(st.booleans(), st.integers(0, 1), st.none()),
    "sku": st.one_of(texts, st.none(), st.integers()),
    "category": st.one_of(texts, st.none()),
    "price_cents": st.one_of(st.integers(-2, 10**9 + 1), st.none(), st.booleans(), st.just(1.5)),
    "campaign": st.one_of(texts, st.none()),
    "extra": st.just(1),
}
records = st.fixed_dictionaries(
    {name: values[name] for name in ("id", "type", "visitor", "session", "at", "consent")},
    optional={name: values[name] for name in ("sku", "category", "price_cents", "campaign")}
    | {"extra": values["extra"]},
)


@st.composite
def near_valid(draw: st.DrawFn) -> dict[str, Any]:
    """A valid record of any type, then (half the time) one field set to a random value."""
    record: dict[str, Any] = {
        "id": draw(st.sampled_from(["event-0001", "A_b-c123456"])),
        "type": draw(st.sampled_from(["view", "add_to_cart", "remove_from_cart", "purchase",
                                      "search"])),
        "visitor": "v1",
        "session": draw(st.sampled_from(["s1", "S_2-x"])),
        "at": draw(st.one_of(st.floats(NOW - 7 * 86400, NOW + 300), st.just(int(NOW)))),
        "consent": draw(st.booleans()),
    }  # fmt: skip
    for name, value in (("sku", "SKU-1.a"), ("category", "books"), ("price_cents", 990),
                        ("campaign", "spring")):  # fmt: skip
        if draw(st.booleans()):
            record[name] = value
    if draw(st.booleans()):
        name = draw(st.sampled_from(sorted(values)))
        record[name] = draw(values[name])
    return record


def outcome(decoder: Any, value: bytes) -> ClickEvent | tuple[str, str]:
    try:
        event: ClickEvent = decoder(value, NOW)
    except ClickInvalid as exc:
        return (exc.field, exc.reason)
    return event


@settings(max_examples=1500, deadline=None)
@given(st.one_of(records, near_valid()))
def test_fast_decoder_agrees_with_the_definition(record: dict[str, Any]) -> None:
    value = json.dumps(record).encode()
    assert outcome(decode_click_fast, value) == outcome(decode_click, value)


def test_a_valid_view_decodes_the_same_and_garbage_is_refused_the_same() -> None:
    view = ClickEvent("event-0001", "view", "v1", "s1", NOW, True, "SKU-1", "books", 990)
    assert decode_click_fast(view.to_json(), NOW) == view
    for junk in (b"", b"{", b"[]", b"null", b'{"id": "event-0001"}'):
        assert outcome(decode_click_fast, junk) == outcome(decode_click, junk)
        assert isinstance(outcome(decode_click, junk), tuple)
