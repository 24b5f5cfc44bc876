"""The placeholder rewriter (`edge.compose.PageRewriter`): table-driven cases and property tests.

Invariants proved with hypothesis over random pages and random chunkings:
- everything outside the placeholders comes back byte-identical (text pieces and the
  placeholders' raw bytes concatenate to the input);
- the pieces do not depend on how the page was cut into chunks;
- every well-formed placeholder written into a page is found, in order, with its name, anchor
  and fallback.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.compose import (
    ESI_FORM,
    MAX_PLACEHOLDER_BYTES,
    SLOT_FORM,
    PageRewriter,
    Piece,
    Placeholder,
    is_composable,
)


def run(
    page: bytes, cuts: Sequence[int] = (), max_bytes: int = MAX_PLACEHOLDER_BYTES
) -> list[Piece]:
    """Feed ``page`` cut at ``cuts``; return the pieces with adjacent text merged."""
    rewriter = PageRewriter(max_bytes)
    pieces: list[Piece] = []
    last = 0
    for cut in sorted({c for c in cuts if 0 < c < len(page)}):
        pieces += rewriter.feed(page[last:cut])
        last = cut
    pieces += rewriter.feed(page[last:])
    pieces += rewriter.close()
    merged: list[Piece] = []
    for piece in pieces:
        if isinstance(piece, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] += piece
        elif not (isinstance(piece, bytes) and not piece):
            merged.append(piece)
    return merged


def joined(pieces: Sequence[Piece]) -> bytes:
    return b"".join(p.raw if isinstance(p, Placeholder) else p for p in pieces)


def found(pieces: Sequence[Piece]) -> list[Placeholder]:
    return [p for p in pieces if isinstance(p, Placeholder)]


CASES = [
    ("plain", b"<p>hello</p>", []),
    ("one slot", b'a<se-slot name="home-hero">fb</se-slot>b', [("home-hero", "", b"fb")]),
    (
        "anchor",
        b"<se-slot name=pdp-cross-sell anchor='SKU-1'></se-slot>",
        [("pdp-cross-sell", "SKU-1", b"")],
    ),
    ("upper case", b'<SE-SLOT NAME="x">f</SE-SLOT >', [("x", "", b"f")]),
    ("self closing", b'<se-slot name="x"/>', [("x", "", b"")]),
    ("esi", b'<esi:include src="/se/slot/home-hero"/>', [("home-hero", "", b"")]),
    ("esi anchor", b'<esi:include src="/se/slot/p?anchor=S1&amp;x=1" />', [("p", "S1", b"")]),
    ("esi closed", b'<esi:include src="/se/slot/p">fb</esi:include>', [("p", "", b"fb")]),
    ("esi other", b'<esi:include src="/other/thing"/>', []),
    ("esi absolute", b'<esi:include src="https://evil.example/se/slot/p"/>', []),
    ("no name", b"<se-slot>fb</se-slot>", [("", "", b"fb")]),
    ("first attribute wins", b'<se-slot name="a" name="b"></se-slot>', [("a", "", b"")]),
    ("entities", b'<se-slot name="a&amp;b"></se-slot>', [("a&b", "", b"")]),
    ("gt in quotes", b'<se-slot name="x" data-x="a>b">f</se-slot>', [("x", "", b"f")]),
    ("unclosed", b'<se-slot name="x">never closed', []),
    ("comment", b'<!-- <se-slot name="x"></se-slot> -->', []),
    ("script", b'<script>"<se-slot name=x></se-slot>"</script>', []),
    ("style", b"<style>/*<se-slot name=x></se-slot>*/</style>", []),
    ("after script", b"<script>1</script><se-slot name=y></se-slot>", [("y", "", b"")]),
    ("not the tag", b"<se-slots name=x></se-slot>", []),
    ("nested", b"<se-slot name=a>x<se-slot name=b>y</se-slot>z</se-slot>", [("b", "", b"y")]),
    (
        "repeated",
        b"<se-slot name=a></se-slot><se-slot name=a></se-slot>",
        [("a", "", b""), ("a", "", b"")],
    ),
    ("stray close", b"</se-slot><se-slot name=a></se-slot>", [("a", "", b"")]),
]


@pytest.mark.parametrize(("page", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_cases(page: bytes, expected: list[tuple[str, str, bytes]]) -> None:
    for cuts in ([], list(range(1, len(page))), [len(page) // 2]):
        pieces = run(page, cuts)
        assert joined(pieces) == page
        assert [(p.slot, p.anchor, p.fallback) for p in found(pieces)] == expected
        assert [p.index for p in found(pieces)] == list(range(len(expected)))


def test_forms() -> None:
    pieces = found(run(b'<se-slot name=a></se-slot><esi:include src="/se/slot/b"/>'))
    assert [p.form for p in pieces] == [SLOT_FORM, ESI_FORM]


def test_text_before_a_placeholder_is_released_at_once() -> None:
    rewriter = PageRewriter()
    assert rewriter.feed(b"<html><head></head><body><se-sl") == [b"<html><head></head><body>"]
    assert rewriter.feed(b'ot name="a">fallb') == []
    pieces = rewriter.feed(b"ack</se-slot>tail")
    assert [type(p) for p in pieces] == [Placeholder, bytes]
    assert rewriter.close() == []


def test_a_placeholder_over_the_bound_passes_through() -> None:
    big = b"<se-slot name=a>" + b"x" * 200 + b"</se-slot>"
    assert found(run(big, max_bytes=100)) == []
    assert joined(run(big, max_bytes=100)) == big
    assert len(found(run(big, max_bytes=len(big)))) == 1


def test_state_stays_bounded_on_an_unclosed_placeholder() -> None:
    rewriter = PageRewriter(1024)
    rewriter.feed(b"<se-slot name=a>")
    released = 0
    for _ in range(100):
        released += sum(len(p) for p in rewriter.feed(b"y" * 500) if isinstance(p, bytes))
    assert released >= 100 * 500 - 1024


def test_huge_page_with_many_placeholders() -> None:
    page = b"".join(b"<div>%d</div><se-slot name=s%d>f</se-slot>" % (i, i) for i in range(5000))
    pieces = run(page, range(0, len(page), 4096))
    assert len(found(pieces)) == 5000
    assert joined(pieces) == page


@pytest.mark.parametrize(
    ("content_type", "encoding", "expected"),
    [
        ("text/html; charset=utf-8", None, True),
        ("TEXT/HTML", "identity", True),
        ("application/json", None, False),
        ("text/html", "gzip", False),
        (None, None, False),
        ("text/plain", None, False),
    ],
)
def test_is_composable(content_type: str | None, encoding: str | None, expected: bool) -> None:
    assert is_composable(content_type, encoding) is expected


def test_bound_is_sane() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        PageRewriter(10)


# Property tests ---------------------------------------------------------------------------

_TOKENS = [
    b"<", b">", b"/", b"<se-slot", b"</se-slot>", b"<se-slot name=a>", b"<esi:include",
    b'<esi:include src="/se/slot/b"/>', b"</esi:include>", b"<!--", b"-->", b"<script>",
    b"</script>", b"<style>", b"</style>", b'"', b"'", b" ", b"name=", b"/>", b"SE-SLOT", b"\xff",
]  # fmt: skip
adversarial = st.lists(st.one_of(st.sampled_from(_TOKENS), st.binary(max_size=8)), max_size=60).map(
    b"".join
)
safe_text = st.text(
    alphabet=st.characters(blacklist_characters="<&", categories=("L", "N", "P", "Zs")), max_size=40
).map(lambda s: s.encode())
names = st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True)
anchors = st.one_of(st.just(""), st.from_regex(r"[A-Z0-9][A-Z0-9-]{0,8}", fullmatch=True))


@st.composite
def placeholder_markup(draw: st.DrawFn) -> tuple[bytes, tuple[str, str, bytes]]:
    name, anchor, fallback = draw(names), draw(anchors), draw(safe_text)
    if draw(st.booleans()):
        extra = f' anchor="{anchor}"' if anchor else ""
        return f'<se-slot name="{name}"{extra}>'.encode() + fallback + b"</se-slot>", (
            name, anchor, fallback,
        )  # fmt: skip
    query = f"?anchor={anchor}" if anchor else ""
    return f'<esi:include src="/se/slot/{name}{query}"/>'.encode(), (name, anchor, b"")


@st.composite
def pages(draw: st.DrawFn) -> tuple[bytes, list[bytes], list[tuple[str, str, bytes]]]:
    """A page of safe text and placeholders: (page, the text between them, the placeholders)."""
    parts = draw(st.lists(st.tuples(safe_text, placeholder_markup()), max_size=6))
    tail = draw(safe_text)
    page = b"".join(text + markup for text, (markup, _) in parts) + tail
    return page, [text for text, _ in parts] + [tail], [expected for _, (_, expected) in parts]


chunkings = st.lists(st.integers(min_value=1, max_value=4000), max_size=30)


@settings(max_examples=300, deadline=None)
@given(pages(), chunkings)
def test_text_outside_placeholders_is_identical(
    generated: tuple[bytes, list[bytes], list[tuple[str, str, bytes]]], cuts: list[int]
) -> None:
    page, texts, expected = generated
    pieces = run(page, cuts)
    assert joined(pieces) == page
    assert [(p.slot, p.anchor, p.fallback) for p in found(pieces)] == expected
    between: list[bytes] = [b""]
    for piece in pieces:
        if isinstance(piece, Placeholder):
            between.append(b"")
        else:
            between[-1] += piece
    assert between == texts


@settings(max_examples=500, deadline=None)
@given(adversarial, chunkings, st.integers(min_value=64, max_value=200))
def test_any_bytes_round_trip_whatever_the_chunking(
    page: bytes, cuts: list[int], bound: int
) -> None:
    whole = run(page, (), bound)
    assert joined(whole) == page
    assert run(page, cuts, bound) == whole
    assert all(len(p.raw) <= bound for p in found(whole))
