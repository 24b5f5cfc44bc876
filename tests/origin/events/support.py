"""Builders shared by the event tests."""

from __future__ import annotations

import time
import uuid
from typing import Any

from origin.settings import Settings
from tests.origin.experiments.support import origin_settings


def event(kind: str = "exposure", **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "type": kind,
        "experiment": "hero",
        "variant": "control",
        "visitor": "v" + uuid.uuid4().hex[:16],
        "at": time.time(),
        "slot": "home-hero",
    }
    doc.update(fields)
    return doc


def events_settings(redis_url: str, kafka: str | None, **overrides: Any) -> Settings:
    return origin_settings(redis_url, kafka_bootstrap=kafka, **overrides)
