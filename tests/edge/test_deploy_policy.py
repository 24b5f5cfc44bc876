"""A deployed edge refuses development secrets outside dev and forwards only allow-listed
paths to the origin."""

from __future__ import annotations

import pytest

from edge.deploy_policy import (
    DEFAULT_PASS_THROUGH,
    event_keys_for,
    parse_allow_list,
    pass_through_allowed,
    refusals,
)
from fragments.batch_signing import DEV_EVENT_KEYS
from fragments.segment_cookie import DEV_SEGMENT_SECRET

OWN_KEYS = "edge-1=" + "k" * 40


@pytest.mark.parametrize(
    ("environment", "secret", "keys", "refused"),
    [
        ("dev", DEV_SEGMENT_SECRET, "", []),
        ("prod", "own-secret-0123456789", OWN_KEYS, []),
        (None, "", OWN_KEYS, ["SEGMENT_SECRET"]),  # no environment name: production
        ("prod", DEV_SEGMENT_SECRET, OWN_KEYS, ["SEGMENT_SECRET"]),
        ("staging", "own-secret-0123456789", "", ["EVENT_KEYS"]),
        ("prod", "own-secret-0123456789", DEV_EVENT_KEYS, ["EVENT_KEYS"]),
        ("prod", "own-secret-0123456789", "k=short", ["EVENT_KEYS"]),
    ],
)
def test_refusals(environment: str | None, secret: str, keys: str, refused: list[str]) -> None:
    problems = refusals(environment, secret, keys)
    assert [p.split(":")[0] for p in problems] == refused
    assert all("k" * 40 not in p and "short" not in p.split(":")[0] for p in problems)


def test_dev_signs_with_the_dev_key_and_prod_needs_its_own() -> None:
    assert event_keys_for("dev", "").newest.kid == "dev"
    assert event_keys_for("prod", OWN_KEYS).newest.kid == "edge-1"
    with pytest.raises(ValueError, match="signing keys"):
        event_keys_for("prod", "")


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/", True),
        ("/static/store.js", True),
        ("/static/img/books.svg", True),
        ("/admin", False),
        ("/admin/login", False),
        ("/v1/events", False),
        ("/v1/edge-config", False),
        ("/v1/products/SKU-1", False),
        ("/metrics", False),
        ("/openapi.json", False),
        ("/healthz", False),
        ("/anything", False),
    ],
)
def test_only_allow_listed_paths_pass(path: str, allowed: bool) -> None:
    assert pass_through_allowed(path, DEFAULT_PASS_THROUGH) is allowed


def test_the_allow_list_is_configurable_but_never_opens_the_apis() -> None:
    allow = parse_allow_list("/healthz, /products/, /v1/, /admin")
    assert pass_through_allowed("/healthz", allow)
    assert pass_through_allowed("/products/SKU-1", allow)
    assert not pass_through_allowed("/v1/events", allow)
    assert not pass_through_allowed("/admin", allow)
    assert parse_allow_list(None) == DEFAULT_PASS_THROUGH
