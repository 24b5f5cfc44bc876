"""Constants, builders and the `seeded` fixture shared by the experiment and event tests."""

from __future__ import annotations

from typing import Any

import pytest

from fragments.slots import load_slots
from origin.core.redis_client import RedisLike
from origin.core.seed import seed_demo
from origin.core.store import Store
from origin.settings import Settings
from tests.support.redis_topology import ORIGIN_TEST_TIMEOUT_MS

EDITOR_TOKEN = "editor-token-0123456789abcdef"
VIEWER_TOKEN = "viewer-token-0123456789abcdef"
SECRET = "experiments-test-secret-0123456789"
CATALOG_SKUS = 200


def origin_settings(redis_url: str, **overrides: Any) -> Settings:
    fields: dict[str, Any] = {
        "redis_url": redis_url,
        "redis_timeout_ms": ORIGIN_TEST_TIMEOUT_MS,
        "segment_secret": SECRET,
        "admin_tokens": {EDITOR_TOKEN: "editor", VIEWER_TOKEN: "viewer"},
        "admin_token_names": {EDITOR_TOKEN: "alice", VIEWER_TOKEN: "victor"},
        "public_edge_url": "http://edge.test",
    }
    fields.update(overrides)
    return Settings(**fields)


EDITOR = {"Authorization": f"Bearer {EDITOR_TOKEN}"}
VIEWER = {"Authorization": f"Bearer {VIEWER_TOKEN}"}


def hero_experiment(key: str = "hero", **overrides: Any) -> dict[str, Any]:
    """A valid draft on home-hero: control vs a compact-card, popularity-heavy challenger."""
    doc: dict[str, Any] = {
        "key": key,
        "name": "Hero layout",
        "slots": ["home-hero"],
        "variants": [
            {"id": "control", "name": "Control", "weight": 0.5},
            {
                "id": "compact",
                "name": "Compact cards",
                "weight": 0.5,
                "changes": {
                    "card_template": "card_compact.html.j2",
                    "scoring": {"popularity": 3.0},
                },
            },
        ],
    }
    doc.update(overrides)
    return doc


def if_match(version: int) -> dict[str, str]:
    return {**EDITOR, "If-Match": f'"{version}"'}


@pytest.fixture
async def seeded(redis_client: RedisLike) -> RedisLike:
    """The flushed session Redis with a small demo catalog, every control bundle built."""
    await seed_demo(Store(redis_client, 5.0), load_slots(), 42, CATALOG_SKUS)
    return redis_client
