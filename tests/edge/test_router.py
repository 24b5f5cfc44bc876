"""The experiment router: GrowthBook compatibility, bucketing quality, stickiness, coverage,
QA overrides, the kill switch, every reason, and identical assignments under Pyodide.

Table-driven over the pure functions of `edge.router`; the Pyodide test calls the same router
through `edge.router_vectors` inside real Pyodide (the `pyodide` fixture of
`tests.support.pyodide_fixture`) and requires byte-identical answers.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any, get_args

import pytest

from edge.router import (
    Reason,
    RouteInput,
    bucket_ranges,
    choose_variation,
    encode_sticky,
    gb_hash,
    parse_sticky,
    route,
)
from edge.router_vectors import assign, bucket_ranges_of, hash_values
from fragments.experiment_codec import config_to_json
from fragments.experiments import (
    Condition,
    EdgeExperimentConfig,
    Experiment,
    Namespace,
    Targeting,
    Variant,
)
from fragments.preview_tokens import PreviewGrant, sign_preview
from origin.experiments.stats import chi_square_sf
from tests.support.pyodide import PyodideRunner

VECTORS = json.loads((Path(__file__).parent / "growthbook_vectors.json").read_text())
NOW = 1_800_000_000.0
SLOT = "home-hero"
PREVIEW_SECRET = "qa-preview-secret-0123456789abcdef"
TOKEN_HASH = hashlib.sha256(PREVIEW_SECRET.encode()).hexdigest()
TOKEN = sign_preview(TOKEN_HASH, PreviewGrant("hero", None, int(NOW) + 3600))
"""A scoped preview token: any variant of ``hero`` for an hour."""
A_TOKEN = sign_preview(TOKEN_HASH, PreviewGrant("a", "b", int(NOW) + 3600))
N_IDS = 100_000
P_MIN = 0.001
"""Bucketing must not look rigged: a chi-square p-value below this fails the test."""


def experiment(
    weights: tuple[float, ...] = (0.5, 0.5),
    *,
    key: str = "hero",
    status: str = "running",
    **changes: Any,
) -> Experiment:
    ids = ["control", "b", "c", "d"][: len(weights)]
    base = Experiment(
        key=key,
        name=key,
        status=status,  # type: ignore[arg-type]
        slots=(SLOT,),
        variants=tuple(Variant(i, i, w) for i, w in zip(ids, weights, strict=True)),
    )
    return replace(base, **changes)


def config(*experiments: Experiment) -> EdgeExperimentConfig:
    return EdgeExperimentConfig(1, experiments, TOKEN_HASH)


def request(visitor: str, **kw: Any) -> RouteInput:
    fields: dict[str, Any] = {"attributes": {"segment": "everyone", "country": "DE"}}
    fields.update(kw)
    return RouteInput(visitor_id=visitor, slot=SLOT, now=NOW, **fields)


def visitors(n: int = N_IDS) -> list[str]:
    return [f"visitor-{i:06d}" for i in range(n)]


# --- GrowthBook's published vectors ----------------------------------------------------------


@pytest.mark.parametrize(("seed", "value", "version", "expected"), VECTORS["hash"])
def test_hash_matches_growthbook(seed: str, value: str, version: int, expected: float) -> None:
    assert gb_hash(seed, value, version) == expected


@pytest.mark.parametrize(("name", "args", "expected"), VECTORS["getBucketRange"])
def test_bucket_ranges_match_growthbook(
    name: str, args: list[Any], expected: list[list[float]]
) -> None:
    n, coverage, weights = args
    got = bucket_ranges(n, coverage, weights)
    assert [[round(s, 4), round(e, 4)] for s, e in got] == expected, name


def test_at_least_fifteen_published_vectors() -> None:
    assert len(VECTORS["hash"]) + len(VECTORS["getBucketRange"]) >= 15


# --- bucketing quality -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "weights",
    [(0.5, 0.5), (0.1, 0.9), (0.2, 0.3, 0.5), (1 / 3, 1 / 3, 1 / 3)],
    ids=["50-50", "10-90", "20-30-50", "3-way-equal"],
)
@pytest.mark.parametrize("hash_version", [1, 2])
def test_bucketing_fits_the_weights(weights: tuple[float, ...], hash_version: int) -> None:
    e = experiment(weights, hash_version=hash_version)
    cfg = config(e)
    counts = Counter(route(cfg, request(v)).variant_index for v in visitors())
    observed = [counts[i] for i in range(len(weights))]
    expected = [N_IDS * w for w in weights]
    statistic = sum((o - x) ** 2 / x for o, x in zip(observed, expected, strict=True))
    p_value = chi_square_sf(statistic, len(weights) - 1)

    assert sum(observed) == N_IDS
    assert p_value > P_MIN, f"observed {observed} vs expected {expected}: p = {p_value:.2g}"
    for o, x in zip(observed, expected, strict=True):
        assert abs(o - x) / N_IDS < 0.01


def test_different_seeds_bucket_independently() -> None:
    a = config(experiment(key="one"))
    b = config(experiment(key="two"))
    ids = visitors(20_000)
    same = sum(
        route(a, request(v)).variant_index == route(b, request(v)).variant_index for v in ids
    )
    assert abs(same / len(ids) - 0.5) < 0.02


# --- stickiness, bucket version, coverage -------------------------------------------------------


def test_sticky_cookie_keeps_the_variant_when_weights_change() -> None:
    before = config(experiment((0.5, 0.5)))
    after = config(experiment((0.05, 0.95)))
    moved = 0
    for v in visitors(2000):
        first = route(before, request(v))
        assert first.reason == "assigned"
        cookie = encode_sticky({first.experiment or "": (first.variant_index, 0)})
        again = route(after, request(v, sticky=parse_sticky(cookie)))
        fresh = route(after, request(v))
        assert (again.variant, again.reason) == (first.variant, "sticky")
        moved += fresh.variant != first.variant
    assert moved > 0, "the weight change should move some visitors without a cookie"


def test_bucket_version_bump_re_randomizes_sticky_visitors() -> None:
    old = experiment((0.5, 0.5), hash_seed="s1")
    new = replace(old, bucket_version=1, hash_seed="s2")
    changed = 0
    for v in visitors(2000):
        first = route(config(old), request(v))
        sticky = {old.key: (first.variant_index, first.bucket_version)}
        after = route(config(new), request(v, sticky=sticky))
        assert after.reason == "assigned"
        assert after.bucket_version == 1
        changed += after.variant != first.variant
    assert 800 < changed < 1200, "about half should land elsewhere after re-randomizing"


@pytest.mark.parametrize("weights", [(0.5, 0.5), (0.2, 0.3, 0.5)])
def test_lowering_coverage_never_moves_a_visitor_to_another_variant(
    weights: tuple[float, ...],
) -> None:
    full = config(experiment(weights, coverage=1.0))
    for coverage in (0.8, 0.5, 0.1):
        lower = config(experiment(weights, coverage=coverage))
        outside = 0
        for v in visitors(10_000):
            was = route(full, request(v))
            now = route(lower, request(v))
            if now.reason == "outside_coverage":
                outside += 1
                assert (now.variant, now.in_experiment) == ("control", False)
            else:
                assert (now.variant, now.reason) == (was.variant, "assigned")
        assert abs(outside / 10_000 - (1 - coverage)) < 0.02


# --- QA overrides and the kill switch -------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "forced"),
    [
        (TOKEN, True),
        ("wrong-token-0123456789abcdef", False),
        (None, False),
        ("", False),
        (PREVIEW_SECRET, False),  # the old unscoped form: the secret itself
        (sign_preview(TOKEN_HASH, PreviewGrant("other", None, int(NOW) + 60)), False),
        (sign_preview(TOKEN_HASH, PreviewGrant("hero", None, int(NOW) - 1)), False),
        (sign_preview("f" * 64, PreviewGrant("hero", None, int(NOW) + 60)), False),
    ],
    ids=["valid", "wrong", "missing", "empty", "secret", "other-experiment", "expired",
         "other-secret"],
)  # fmt: skip
def test_qa_override_needs_a_valid_preview_token(token: str | None, forced: bool) -> None:
    cfg = config(experiment((0.5, 0.5)))
    for v in visitors(200):
        natural = route(cfg, request(v))
        forced_to = "control" if natural.variant == "b" else "b"
        got = route(cfg, request(v, overrides={"hero": forced_to}, preview_token=token))
        if forced:
            assert (got.variant, got.reason, got.in_experiment) == (forced_to, "forced", False)
        else:
            assert (got.variant, got.reason) == (natural.variant, natural.reason)


def test_override_without_a_published_token_hash_is_ignored() -> None:
    cfg = EdgeExperimentConfig(1, (experiment(),), preview_secret_hash="")
    got = route(cfg, request("visitor-1", overrides={"hero": "b"}, preview_token=TOKEN))
    assert got.reason != "forced"


def test_stop_sends_everyone_to_control_at_once_even_sticky_visitors() -> None:
    running = experiment((0.0, 1.0))
    stopped = replace(running, status="stopped")
    for v in visitors(500):
        assert route(config(running), request(v)).variant == "b"
        got = route(config(stopped), request(v, sticky={"hero": (1, 0)}))
        assert (got.variant, got.reason, got.in_experiment) == ("control", "not_running", False)


# --- every reason is reachable ------------------------------------------------------------------


def _first(predicate: Any, cfg: EdgeExperimentConfig, **kw: Any) -> str:
    for v in visitors(5000):
        if predicate(route(cfg, request(v, **kw))):
            return v
    raise AssertionError("no visitor satisfied the predicate")


REASON_CASES: list[tuple[str, EdgeExperimentConfig, dict[str, Any]]] = [
    ("no_experiment", EdgeExperimentConfig(1, ()), {}),
    ("not_running", config(experiment(status="paused")), {}),
    ("not_running", config(experiment(starts_at=NOW + 60)), {}),
    ("not_running", config(experiment(ends_at=NOW - 60)), {}),
    ("not_eligible", config(experiment(targeting=Targeting(segments=("vip",)))), {}),
    ("not_eligible", config(experiment(targeting=Targeting(countries=("FR",)))), {}),
    (
        "not_eligible",
        config(experiment(targeting=Targeting(conditions=(Condition("cart_size", "gt", 0),)))),
        {},
    ),
    ("not_eligible", config(experiment()), {"visitor": ""}),
    ("namespace", config(experiment(namespace=Namespace("ns", 0.0, 0.3))), {}),
    ("holdout", config(experiment(holdout=0.5)), {}),
    ("outside_coverage", config(experiment(coverage=0.3)), {}),
    ("assigned", config(experiment()), {}),
    ("forced", config(experiment()), {"overrides": {"hero": "b"}, "preview_token": TOKEN}),
    ("sticky", config(experiment()), {"sticky": {"hero": (1, 0)}}),
]


@pytest.mark.parametrize(("reason", "cfg", "kw"), REASON_CASES)
def test_every_reason_is_reachable(
    reason: str, cfg: EdgeExperimentConfig, kw: dict[str, Any]
) -> None:
    if "visitor" in kw:
        got = route(cfg, request(kw["visitor"]))
    else:
        got = route(cfg, request(_first(lambda a: a.reason == reason, cfg, **kw), **kw))
    assert got.reason == reason
    assert got.in_experiment == (reason in ("assigned", "sticky"))
    if reason not in ("assigned", "sticky", "forced"):
        assert got.variant == "control"


def test_every_reason_literal_has_a_case() -> None:
    assert {r for r, _, _ in REASON_CASES} == set(get_args(Reason))


def test_the_first_experiment_that_takes_the_visitor_wins() -> None:
    left = experiment(key="left", namespace=Namespace("ns", 0.0, 0.5))
    right = experiment(key="right", namespace=Namespace("ns", 0.5, 1.0))
    cfg = config(left, right)
    seen = Counter(route(cfg, request(v)).experiment for v in visitors(4000))
    assert set(seen) == {"left", "right"}
    assert abs(seen["left"] - seen["right"]) < 400


def test_choose_variation_edges() -> None:
    ranges = bucket_ranges(2, 1.0, [0.5, 0.5])
    assert [choose_variation(n, ranges) for n in (0.0, 0.4999, 0.5, 0.9999, 1.0)] == [
        0, 0, 1, 1, -1,
    ]  # fmt: skip


# --- the same answers under Pyodide --------------------------------------------------------------


def _pyodide_requests() -> str:
    cfg = config(
        experiment((0.5, 0.5), key="a", namespace=Namespace("ns", 0.0, 0.5)),
        experiment((0.2, 0.3, 0.5), key="b", namespace=Namespace("ns", 0.5, 1.0), holdout=0.1),
        experiment((0.1, 0.9), key="c", hash_version=1, coverage=0.7),
    )
    requests = []
    for i, v in enumerate(visitors(3000)):
        r: dict[str, Any] = {"visitor": v, "slot": SLOT, "now": NOW, "attributes": {}}
        if i % 7 == 0:
            r["sticky"] = "a.1.0|b.2.0"
        if i % 11 == 0:
            r["overrides"] = {"a": "b"}
            r["preview_token"] = A_TOKEN if i % 2 else "nope-0123456789abcdef"
        requests.append(r)
    return json.dumps({"config": json.loads(config_to_json(cfg)), "requests": requests})


def test_router_vectors_entry_is_the_router() -> None:
    payload = _pyodide_requests()
    answers = json.loads(assign(payload))
    reasons = Counter(a["reason"] for a in answers)
    assert {"assigned", "sticky", "forced", "outside_coverage"} <= set(reasons)
    hashes = json.loads(hash_values(json.dumps({"cases": [r[:3] for r in VECTORS["hash"]]})))
    assert hashes == [r[3] for r in VECTORS["hash"]]


def test_pyodide_assigns_exactly_like_cpython(pyodide: PyodideRunner) -> None:
    payload = _pyodide_requests()
    assert pyodide.call("edge.router_vectors:assign", payload) == assign(payload)
    hash_payload = json.dumps({"cases": [r[:3] for r in VECTORS["hash"]]})
    assert pyodide.call("edge.router_vectors:hash_values", hash_payload) == hash_values(
        hash_payload
    )
    ranges_payload = json.dumps({"cases": [r[1] for r in VECTORS["getBucketRange"]]})
    assert pyodide.call("edge.router_vectors:bucket_ranges_of", ranges_payload) == (
        bucket_ranges_of(ranges_payload)
    )


def test_a_variant_scoped_token_forces_only_that_variant() -> None:
    cfg = config(experiment((0.5, 0.5)))
    only_b = sign_preview(TOKEN_HASH, PreviewGrant("hero", "b", int(NOW) + 60))
    to_b = route(cfg, request("visitor-1", overrides={"hero": "b"}, preview_token=only_b))
    to_control = route(
        cfg, request("visitor-1", overrides={"hero": "control"}, preview_token=only_b)
    )
    assert (to_b.variant, to_b.reason) == ("b", "forced")
    assert to_control.reason != "forced"


def test_a_sticky_cookie_cannot_widen_targeting() -> None:
    targeted = experiment(targeting=Targeting(segments=("tech-enthusiasts",)))
    outsider = request("visitor-1", sticky={"hero": (1, 0)}, attributes={"segment": "everyone"})
    got = route(config(targeted), outsider)
    assert (got.reason, got.in_experiment) == ("not_eligible", False)
