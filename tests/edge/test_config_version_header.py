"""The serving experiment config version is shown to QA in preview mode (a valid scoped preview
token) or in debug mode, and to no one else."""

from __future__ import annotations

import hashlib
from dataclasses import replace

from edge.flow import CONFIG_VERSION_HEADER, SlotRequest, drive_sync, handle_slot
from edge.memory import MemoryTransport
from edge.transport import FetchResult, OriginFetch
from fragments.bundle import encode_bundle
from fragments.experiments import EdgeExperimentConfig
from fragments.preview_tokens import PreviewGrant, sign_preview
from tests.edge.bundles import candidate, small_bundle
from tests.edge.test_flow import CONFIG, HERO, NOW, POLICY

SECRET_HASH = hashlib.sha256(b"qa-preview-secret-0123456789abcdef").hexdigest()
PREVIEW_CONFIG = replace(CONFIG, experiments=EdgeExperimentConfig(7, (), SECRET_HASH))
TOKEN = sign_preview(SECRET_HASH, PreviewGrant("hero", None, int(NOW) + 3600))
"""A scoped preview token (`fragments.preview_tokens`) for an experiment, valid for an hour."""


def _headers(query: dict[str, str]) -> dict[str, str]:
    bundle = small_bundle([candidate("A", 1.0)], key=HERO, policy=POLICY)

    def origin(fetch: OriginFetch) -> FetchResult:
        return FetchResult(200, encode_bundle(bundle))

    request = SlotRequest("home-hero", {}, query, NOW, "a" * 32)
    response, _ = drive_sync(handle_slot(request, PREVIEW_CONFIG), MemoryTransport(origin))
    assert response.status == 200
    return dict(response.headers)


def test_preview_mode_shows_the_config_version() -> None:
    assert _headers({"sx_token": TOKEN})[CONFIG_VERSION_HEADER] == "7"


def test_shoppers_and_wrong_tokens_do_not_see_it() -> None:
    assert CONFIG_VERSION_HEADER not in _headers({})
    assert CONFIG_VERSION_HEADER not in _headers({"sx_token": "guess-0123456789abcdef"})


def test_an_expired_preview_token_does_not_show_it() -> None:
    expired = sign_preview(SECRET_HASH, PreviewGrant("hero", None, int(NOW) - 1))
    assert CONFIG_VERSION_HEADER not in _headers({"sx_token": expired})
