"""Imported recommendation lists: their value objects and the parsing of what retailers send.

A list is for a *segment* (its bundles can take their candidates from it, see ``source`` in
slots.toml) or for an *anchor* SKU (item-to-item lists, for product-page cross-sell). It has a
name, a version and ranked SKUs with scores, best first.

Two line formats are read, one list per line (JSON Lines):

- shelfedge's own: ``{"segment": "<id>" | "anchor": "<sku>", "name": "<id>", "version": N?,
  "items": ["SKU", ...] | [{"sku": "SKU", "score": 0.9}, ...]}``;
- the batch-output layout of managed recommenders (e.g. Amazon Personalize batch inference):
  ``{"input": {"itemId": "SKU"}, "output": {"recommendedItems": [...], "scores": [...]}}``.
  ``itemId`` makes an anchor list, ``segment`` a segment list. A ``userId`` list is refused
  unless the import maps that user to a segment: no visitor id may enter a shared cache key.

Every rejection names the line, the field and the reason. Pure: never performs I/O.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from fragments.ids import is_id, is_sku
from origin.errors import ListInvalid

ListKind = Literal["segment", "anchor"]
LIST_KINDS: tuple[ListKind, ...] = ("segment", "anchor")
MAX_LIST_ITEMS = 500
"""A list carries at most this many SKUs (a slot carries at most 500 candidates)."""
MAX_LINE_BYTES = 256 * 1024
MAX_VERSION = 2**53 - 1
DEFAULT_BATCH_LIST_NAME = "recommended"


@dataclass(frozen=True, slots=True)
class RankedItem:
    """One SKU of a list and its score (non-increasing down the list)."""

    sku: str
    score: float


@dataclass(frozen=True, slots=True)
class ImportedList:
    """A whole recommendation list: what it is for, its name, version and ranked SKUs."""

    kind: ListKind
    target: str
    """The segment id (kind ``segment``) or the anchor SKU (kind ``anchor``)."""
    name: str
    version: int
    items: tuple[RankedItem, ...]

    @property
    def id(self) -> str:
        return list_key_id(self.kind, self.target, self.name)

    @property
    def skus(self) -> tuple[str, ...]:
        return tuple(item.sku for item in self.items)

    def items_json(self) -> str:
        """The items as stored: ``[["SKU", score], ...]``."""
        return json.dumps([[i.sku, i.score] for i in self.items], separators=(",", ":"))


def list_key_id(kind: str, target: str, name: str) -> str:
    """A list's id, ``<kind>/<target>/<name>``: its Redis hash tag and its Kafka key."""
    return f"{kind}/{target}/{name}"


def items_from_json(text: str | bytes) -> tuple[RankedItem, ...]:
    """Decode what `ImportedList.items_json` stored."""
    return tuple(RankedItem(str(sku), float(score)) for sku, score in json.loads(text))


@dataclass(frozen=True, slots=True)
class ListRejection:
    """A line (or document) that cannot be imported, and why."""

    line: int
    """1-based line number (0 for a single document, e.g. an API body)."""
    field: str
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.field}: {self.reason}"


def check_target(kind: str, target: str) -> ListKind:
    """The kind if `kind`/`target` name a list owner, else ListInvalid."""
    if kind == "segment":
        if not is_id(target):
            raise ListInvalid("segment", f"{target[:80]!r} is not a segment id (a-z, 0-9, -, _)")
        return "segment"
    if kind == "anchor":
        if not is_sku(target):
            raise ListInvalid("anchor", f"{target[:80]!r} is not a SKU")
        return "anchor"
    raise ListInvalid("kind", f"{kind[:40]!r}: expected one of {', '.join(LIST_KINDS)}")


def check_name(name: object) -> str:
    if not isinstance(name, str) or not is_id(name):
        raise ListInvalid("name", f"{name!r} must be 1-64 chars of a-z, 0-9, '-', '_'")
    return name


def check_version(version: object) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_VERSION:
        raise ListInvalid("version", f"{version!r} must be an integer in 1..2^53-1")
    return version


def ranked_items(
    skus: object, scores: object | None, field: str = "items"
) -> tuple[RankedItem, ...]:
    """Validate ranked SKUs (strings, or ``{"sku", "score"}`` objects) and optional scores.

    Without scores, the rank gives them: (n - i) / n, so the edge keeps the list's order.
    Scores must be finite, non-negative and non-increasing (the edge sorts by score).
    """
    if not isinstance(skus, list):
        raise ListInvalid(field, "must be a list of SKUs")
    if len(skus) > MAX_LIST_ITEMS:
        raise ListInvalid(field, f"{len(skus)} items; at most {MAX_LIST_ITEMS}")
    names: list[str] = []
    given: list[object] = []
    for i, item in enumerate(skus):
        if isinstance(item, dict):
            sku, score = item.get("sku"), item.get("score")
            unknown = sorted(set(item) - {"sku", "score"})
            if unknown:
                raise ListInvalid(f"{field}[{i}]", f"unknown key(s) {', '.join(unknown)}")
        else:
            sku, score = item, None
        if not isinstance(sku, str) or not is_sku(sku):
            raise ListInvalid(f"{field}[{i}]", f"{sku!r} is not a SKU")
        names.append(sku)
        given.append(score)
    if scores is not None:
        if any(g is not None for g in given):
            raise ListInvalid("scores", "give scores either per item or as a list, not both")
        if not isinstance(scores, list) or len(scores) != len(names):
            raise ListInvalid("scores", f"must be a list of {len(names)} numbers (one per item)")
        given = list(scores)
        field = "scores"
    present = [g is not None for g in given]
    if any(present) and not all(present):
        raise ListInvalid(field, "scores are given for some items only: give all or none")
    seen: set[str] = set()
    for i, sku in enumerate(names):
        if sku in seen:
            raise ListInvalid(f"{field}[{i}]", f"duplicate SKU {sku!r}")
        seen.add(sku)
    if not all(present) or not names:
        n = len(names)
        return tuple(RankedItem(sku, round((n - i) / n, 9)) for i, sku in enumerate(names))
    values: list[float] = []
    for i, value in enumerate(given):
        where = f"scores[{i}]" if field == "scores" else f"{field}[{i}].score"
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ListInvalid(where, f"{value!r} is not a number")
        number = float(value)
        if not math.isfinite(number) or number < 0:
            raise ListInvalid(where, f"{value!r} must be a finite number >= 0")
        if values and number > values[-1]:
            raise ListInvalid(where, f"{number} is above the score before it: rank best first")
        values.append(number)
    return tuple(RankedItem(sku, v) for sku, v in zip(names, values, strict=True))


def list_from_document(
    doc: object,
    *,
    version: int,
    default_name: str = DEFAULT_BATCH_LIST_NAME,
    user_segments: Mapping[str, str] | None = None,
) -> ImportedList:
    """One list from a decoded JSON document in either line format; ListInvalid otherwise.

    `version` applies when the document carries none; `default_name` names batch-output lists;
    `user_segments` maps a batch ``userId`` to the segment whose list it becomes.
    """
    if not isinstance(doc, dict):
        raise ListInvalid("line", "must be a JSON object")
    if "input" in doc or "output" in doc:
        return _batch_list(doc, version, default_name, user_segments or {})
    return _native_list(doc, version)


def _native_list(doc: dict[str, Any], version: int) -> ImportedList:
    known = {"segment", "anchor", "name", "version", "items", "scores"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise ListInvalid(unknown[0], f"unknown key; expected some of {sorted(known)}")
    owners = [k for k in ("segment", "anchor") if k in doc]
    if len(owners) != 1:
        raise ListInvalid("segment", "give exactly one of 'segment' (id) or 'anchor' (SKU)")
    kind = owners[0]
    target = doc[kind]
    if not isinstance(target, str):
        raise ListInvalid(kind, f"{target!r} must be a string")
    checked = check_target(kind, target)
    name = check_name(doc.get("name"))
    stated = check_version(doc["version"]) if "version" in doc else version
    if "items" not in doc:
        raise ListInvalid("items", "missing: the ranked SKUs, best first")
    items = ranked_items(doc["items"], doc.get("scores"))
    return ImportedList(checked, target, name, stated, items)


def _batch_list(
    doc: dict[str, Any], version: int, name: str, user_segments: Mapping[str, str]
) -> ImportedList:
    if doc.get("error"):
        raise ListInvalid("error", f"the recommender reported an error: {str(doc['error'])[:200]}")
    source = doc.get("input")
    output = doc.get("output")
    if not isinstance(source, dict):
        raise ListInvalid("input", "must be an object with itemId, segment or userId")
    if not isinstance(output, dict):
        raise ListInvalid("output", "must be an object with recommendedItems")
    kind: str
    if "itemId" in source:
        kind, target = "anchor", source["itemId"]
    elif "segment" in source:
        kind, target = "segment", source["segment"]
    elif "userId" in source:
        user = str(source["userId"])
        if user not in user_segments:
            raise ListInvalid(
                "input.userId",
                "a per-user list cannot be served from shared caches (no visitor id may enter "
                "a cache key): map the user to a segment (--user-segment USER=SEGMENT) or "
                "export item-to-item lists (input.itemId)",
            )
        kind, target = "segment", user_segments[user]
    else:
        raise ListInvalid("input", "needs itemId (anchor list), segment, or a mapped userId")
    if not isinstance(target, str):
        raise ListInvalid(f"input.{'itemId' if kind == 'anchor' else 'segment'}", "not a string")
    checked = check_target(kind, target)
    if "recommendedItems" not in output:
        raise ListInvalid("output.recommendedItems", "missing: the ranked SKUs, best first")
    try:
        items = ranked_items(
            output["recommendedItems"], output.get("scores"), "output.recommendedItems"
        )
    except ListInvalid as exc:
        field = exc.field if exc.field.startswith("output.") else "output." + exc.field
        raise ListInvalid(field, exc.reason) from exc
    return ImportedList(checked, target, check_name(name), version, items)


ParsedLine = tuple[int, ImportedList | ListRejection]
"""A line number (1-based) and what the line holds."""


def parse_list_lines(
    lines: Iterable[str | bytes],
    *,
    version: int,
    default_name: str = DEFAULT_BATCH_LIST_NAME,
    user_segments: Mapping[str, str] | None = None,
) -> Iterator[ParsedLine]:
    """Stream JSON Lines into (line number, list or rejection), in order; blank lines skipped."""
    for number, raw in enumerate(lines, start=1):
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        if not text.strip():
            continue
        if len(text) > MAX_LINE_BYTES:
            yield number, ListRejection(number, "line", f"over {MAX_LINE_BYTES} bytes")
            continue
        try:
            doc = json.loads(text)
        except ValueError as exc:
            yield number, ListRejection(number, "line", f"not JSON: {exc}")
            continue
        try:
            parsed = list_from_document(
                doc, version=version, default_name=default_name, user_segments=user_segments
            )
        except ListInvalid as exc:
            yield number, ListRejection(number, exc.field, exc.reason)
            continue
        yield number, parsed
