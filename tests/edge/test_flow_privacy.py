"""What the slot flow stores in the browser and tells it: the consent policy, the signed
sticky cookie, the debug header, and no exposure for a fallback."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from edge.config import EdgeConfig
from edge.flow import (
    EdgeResponse,
    SlotRequest,
    drive_sync,
    handle_slot,
    page_visitor_cookie,
)
from edge.transport import FetchResult
from fragments.experiments import EdgeExperimentConfig, Experiment, Variant
from fragments.ids import FragmentKey
from fragments.sticky_cookie import verify_sticky
from tests.edge.test_flow import CONFIG, FRESH_ID, NOW, SECRET, VISITOR, Harness, bundle_for

EXPERIMENT = Experiment(
    key="hero",
    name="hero",
    status="running",
    slots=("home-hero",),
    variants=(Variant("control", "control", 0.0), Variant("b", "b", 1.0)),
)
WITH_EXPERIMENT = replace(CONFIG, experiments=EdgeExperimentConfig(1, (EXPERIMENT,), ""))
B_KEY = FragmentKey("home-hero", "everyone", "b")


def run(config: EdgeConfig, cookie: str | None, origin: FetchResult | None = None) -> EdgeResponse:
    h = Harness(origin=origin)
    if origin is None:
        h.store(bundle_for(B_KEY), age=0)
    headers: dict[str, Any] = {"cookie": cookie} if cookie is not None else {}
    request = SlotRequest("home-hero", headers, {}, NOW, FRESH_ID)
    response, _ = drive_sync(handle_slot(request, config), h.transport)
    return response


def cookies_set(response: EdgeResponse) -> dict[str, str]:
    out = {}
    for name, value in response.headers:
        if name == "Set-Cookie":
            cookie, _, rest = value.partition("=")
            out[cookie] = rest.split(";")[0]
    return out


def test_implied_consent_sets_the_visitor_id_and_a_signed_sticky_cookie() -> None:
    response = run(WITH_EXPERIMENT, None)
    cookies = cookies_set(response)

    assert set(cookies) == {"se_vid", "se_exp"}
    assert verify_sticky(cookies["se_exp"], FRESH_ID, SECRET) == "hero.1.0"
    assert verify_sticky(cookies["se_exp"], VISITOR, SECRET) is None


def test_required_consent_sets_no_identifier_before_consent() -> None:
    strict = replace(WITH_EXPERIMENT, consent_required=True)
    before = run(strict, None)
    after = run(strict, f"se_vid={VISITOR}; se_consent=1")
    new_and_consenting = run(strict, "se_consent=1")

    assert cookies_set(before) == {}
    assert before.exposure is None
    assert set(cookies_set(after)) == {"se_exp"}
    assert set(cookies_set(new_and_consenting)) == {"se_vid", "se_exp"}


def test_the_experiment_header_only_in_debug_mode() -> None:
    quiet = run(WITH_EXPERIMENT, f"se_vid={VISITOR}")
    loud = run(replace(WITH_EXPERIMENT, debug_headers=True), f"se_vid={VISITOR}")

    assert "X-Shelfedge-Experiment" not in dict(quiet.headers)
    assert dict(loud.headers)["X-Shelfedge-Experiment"] == "hero;assigned"
    assert dict(quiet.headers)["X-Shelfedge-Variant"] == "b"


def test_a_fallback_records_no_exposure_and_no_sticky_cookie() -> None:
    down = FetchResult(0, error="ConnectError")
    response = run(WITH_EXPERIMENT, f"se_vid={VISITOR}; se_consent=1", origin=down)
    shown = run(WITH_EXPERIMENT, f"se_vid={VISITOR}; se_consent=1")

    assert response.cache_status == "FALLBACK"
    assert response.exposure is None
    assert "se_exp" not in cookies_set(response)
    assert shown.exposure is not None


def test_a_passed_through_page_gets_the_visitor_id_its_slots_will_share() -> None:
    strict = replace(CONFIG, consent_required=True)
    fresh = page_visitor_cookie(None, FRESH_ID, CONFIG)

    assert fresh is not None
    assert fresh.startswith(f"se_vid={FRESH_ID};")
    assert "Secure" in fresh
    assert page_visitor_cookie(f"se_vid={VISITOR}", FRESH_ID, CONFIG) is None
    assert page_visitor_cookie(None, FRESH_ID, strict) is None
    assert page_visitor_cookie("se_consent=1", FRESH_ID, strict) is not None
