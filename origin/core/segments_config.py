"""Segments as configuration: read and write the segments file (TOML or JSON), validate a segment.

The file (``SHELFEDGE_SEGMENTS_FILE``; the demo's is ``demo_segments.toml`` beside this module,
written by `segments_toml` from `origin.core.demo_catalog.demo_segments`) holds one table per
segment::

    [segments.tech-enthusiasts]
    name = "Tech enthusiasts"
    price_band = [2000, 200000]      # preferred prices in cents, inclusive
    default_affinity = 0.5           # categories not listed below (optional, default 0.5)
    [segments.tech-enthusiasts.category_affinity]
    electronics = 2.0

JSON files have the same shape (``{"segments": {"<id>": {...}}}``); the admin API takes one
segment's table as its body. Every error names the source, the segment and the field
(`origin.errors.SegmentInvalid`). Never performs I/O beyond reading the file it is given.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fragments.ids import is_id
from origin.core.catalog import Segment
from origin.errors import SegmentInvalid

DEMO_SEGMENTS_FILE = Path(__file__).with_name("demo_segments.toml")
MAX_PRICE_CENTS = 100_000_000_000
MAX_AFFINITY = 100.0
MAX_NAME = 80
MAX_SEGMENTS = 1000
_FIELDS = ("name", "category_affinity", "price_band", "default_affinity")


def load_segments_file(path: Path) -> list[Segment]:
    """Read and validate a segments file (``.json`` is JSON, anything else TOML)."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SegmentInvalid(source, None, None, f"cannot read: {exc.strerror}") from exc
    return parse_segments(text, source, json_format=path.suffix.lower() == ".json")


def parse_segments(text: str, source: str, *, json_format: bool = False) -> list[Segment]:
    """Parse segments file text; `source` names it in errors."""
    try:
        doc: Any = json.loads(text) if json_format else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        kind = "JSON" if json_format else "TOML"
        raise SegmentInvalid(source, None, None, f"not valid {kind}: {exc}") from exc
    if not isinstance(doc, dict) or set(doc) - {"segments"}:
        raise SegmentInvalid(source, None, None, "expected only a 'segments' table")
    table = doc.get("segments")
    if not isinstance(table, dict) or not table:
        raise SegmentInvalid(source, None, "segments", "no [segments.<id>] tables found")
    if len(table) > MAX_SEGMENTS:
        raise SegmentInvalid(source, None, "segments", f"{len(table)} > {MAX_SEGMENTS} segments")
    return [segment_from_fields(sid, body, source) for sid, body in table.items()]


def segment_from_fields(segment_id: str, body: object, source: str) -> Segment:
    """One segment from its table; SegmentInvalid names `source`, the segment and the field."""
    if not isinstance(segment_id, str) or not is_id(segment_id):
        raise SegmentInvalid(source, str(segment_id)[:80], "id", "expected 1-64 of a-z 0-9 - _")

    def bad(field: str, reason: str) -> SegmentInvalid:
        return SegmentInvalid(source, segment_id, field, reason)

    if not isinstance(body, dict):
        raise bad("segment", "must be a table (object)")
    unknown = sorted(set(body) - set(_FIELDS) - {"id"})
    if unknown:
        raise bad(unknown[0], f"unknown field; expected some of {', '.join(_FIELDS)}")
    if "id" in body and body["id"] != segment_id:
        raise bad("id", f"{body['id']!r} differs from the segment's id {segment_id!r}")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise bad("name", f"must be a non-empty string of at most {MAX_NAME} characters")
    affinity = body.get("category_affinity", {})
    if not isinstance(affinity, dict):
        raise bad("category_affinity", "must be a table of category = weight")
    weights: dict[str, float] = {}
    for category, weight in affinity.items():
        if not is_id(category):
            raise bad(f"category_affinity.{category}", "a category id is 1-64 of a-z 0-9 - _")
        weights[category] = _weight(weight, lambda r, c=category: bad(f"category_affinity.{c}", r))
    band = body.get("price_band")
    if (
        not isinstance(band, list)
        or len(band) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in band)
    ):
        raise bad("price_band", f"must be [low, high] in integer cents, got {band!r}")
    low, high = band
    if not 0 <= low <= high <= MAX_PRICE_CENTS:
        raise bad("price_band", f"needs 0 <= low <= high <= {MAX_PRICE_CENTS}, got {band!r}")
    default = _weight(body.get("default_affinity", 0.5), lambda r: bad("default_affinity", r))
    return Segment(segment_id, name, weights, (low, high), default_affinity=default)


def _weight(value: object, bad: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad(f"{value!r} is not a number")
    number = float(value)
    if not math.isfinite(number) or not 0.0 <= number <= MAX_AFFINITY:
        raise bad(f"{value!r} must be a number in 0..{MAX_AFFINITY:g}")
    return number


def segment_fields(segment: Segment) -> dict[str, Any]:
    """A segment's table (what the admin API returns and takes)."""
    return {
        "id": segment.id,
        "name": segment.name,
        "category_affinity": dict(segment.category_affinity),
        "price_band": list(segment.price_band),
        "default_affinity": segment.default_affinity,
    }


def segments_toml(segments: Sequence[Segment], header: str = "") -> str:
    """The segments file text (TOML) that `parse_segments` reads back as `segments`."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    for s in segments:
        lines += [
            "",
            f"[segments.{s.id}]",
            f"name = {json.dumps(s.name)}",
            f"price_band = [{s.price_band[0]}, {s.price_band[1]}]",
            f"default_affinity = {s.default_affinity!r}",
            f"[segments.{s.id}.category_affinity]",
            *(f"{category} = {float(w)!r}" for category, w in s.category_affinity.items()),
        ]
    return "\n".join(lines).lstrip("\n") + "\n"
