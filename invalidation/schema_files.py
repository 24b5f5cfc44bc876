"""The published JSON Schemas of the source topics, generated from `invalidation.events`.

``python -m invalidation.schema_files`` rewrites ``invalidation/schemas/<topic>.json``;
``--check`` exits 1 when a committed file differs from what the event types generate (the test
suite runs the same comparison). Other teams validate their producers against these files.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from invalidation.events import EVENT_TYPES

SCHEMA_DIR = Path(__file__).with_name("schemas")
SCHEMA_BASE_URL = "https://shelfedge.dev/schemas"
EVOLUTION_RULE = (
    "Evolution: new optional fields may be added; anything else is a new topic version ({next})."
)


def schema_of(topic: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of `topic`'s events, self-contained."""
    kind = EVENT_TYPES[topic]
    generated = msgspec.json.schema(kind)
    body = generated["$defs"][kind.__name__]
    name, version = topic.rsplit(".v", 1)
    rule = EVOLUTION_RULE.format(next=f"{name}.v{int(version) + 1}")
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_BASE_URL}/{topic}.json",
        "title": topic,
        "description": f"{body['description']} {rule}",
        "type": "object",
        "required": body["required"],
        "properties": body["properties"],
        "additionalProperties": True,
    }
    nested = {k: v for k, v in generated["$defs"].items() if k != kind.__name__}
    if nested:  # types the event refers to (e.g. a list's items)
        schema["$defs"] = nested
    return schema


def schema_text(topic: str) -> str:
    return json.dumps(schema_of(topic), indent=2, ensure_ascii=False) + "\n"


def schema_path(topic: str) -> Path:
    return SCHEMA_DIR / f"{topic}.json"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m invalidation.schema_files")
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for topic in EVENT_TYPES:
        path, text = schema_path(topic), schema_text(topic)
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path.name)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print(f"out of date: {', '.join(stale)}; run python -m invalidation.schema_files")
        return 1
    print(("rewrote " if stale else "up to date: ") + ", ".join(stale or list(EVENT_TYPES)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
