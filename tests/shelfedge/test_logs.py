"""`shelfedge.logs`: one JSON object per line, structured fields and trace ids kept, secrets
redacted (settings objects, URLs, tokens)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace

from invalidation.settings import CloudflareSettings, InvalidationSettings
from origin.settings import Settings
from shelfedge.logs import JsonFormatter, redact
from tests.support.tracing import capturing_spans

PASSWORD = "hunter2-redis-pw"
TOKEN = "cf-api-token-0123456789"
SECRET = "segment-secret-abcdefghijkl"
ADMIN = "admin-bearer-zyxwvut"


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("shelfedge.test-logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_is_json_with_the_structured_fields(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.warning(
        "dead-lettered %s[%d]@%d",
        "price.v1", 3, 42,
        extra={"event_id": "e-1", "topic": "price.v1", "partition": 3, "offset": 42,
               "bundle_key": "home-hero/everyone/control/en-US"},
    )  # fmt: skip
    [doc] = lines(stream)
    assert doc["level"] == "warning"
    assert doc["logger"] == "shelfedge.test-logs"
    assert doc["message"] == "dead-lettered price.v1[3]@42"
    assert (doc["event_id"], doc["topic"], doc["partition"], doc["offset"]) == (
        "e-1", "price.v1", 3, 42,
    )  # fmt: skip
    assert doc["bundle_key"] == "home-hero/everyone/control/en-US"
    assert doc["ts"].endswith("+00:00")
    assert "trace_id" not in doc, "no span, no trace id"


def test_a_line_inside_a_sampled_span_carries_its_trace_id(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    with capturing_spans(), trace.get_tracer("test").start_as_current_span("work") as span:
        logger.info("inside")
        context = span.get_span_context()
    [doc] = lines(stream)
    assert doc["trace_id"] == format(context.trace_id, "032x")
    assert doc["span_id"] == format(context.span_id, "016x")


def test_settings_urls_and_tokens_are_redacted(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    consumer = InvalidationSettings(
        redis_url=f"redis://default:{PASSWORD}@cache.internal:6379/0",
        purgers=("cloudflare",),
        cloudflare=CloudflareSettings(zone_id="zone-1", api_token=TOKEN),
    )
    origin = Settings(
        redis_url=f"rediss://:{PASSWORD}@cache.internal:6380",
        segment_secret=SECRET,
        admin_tokens={ADMIN: "editor"},
        admin_token_names={ADMIN: "alice"},
    )
    logger.info("consumer settings: %s", consumer)
    logger.info("origin settings: %r", origin)
    logger.info("raw: %s", {"api_token": TOKEN, "admin_tokens": {ADMIN: "editor"}})
    logger.info(
        "calling %s with Authorization: Bearer %s",
        f"https://svc:{PASSWORD}@api.example/x", TOKEN,
        extra={"password": PASSWORD, "url": f"redis://u:{PASSWORD}@h", "segment_secret": SECRET},
    )  # fmt: skip
    try:
        raise RuntimeError(f"connect failed: redis://:{PASSWORD}@h token={TOKEN}")
    except RuntimeError:
        logger.exception("boom")
    text = stream.getvalue()
    for secret in (PASSWORD, TOKEN, SECRET, ADMIN):
        assert secret not in text, f"{secret!r} leaked into the logs:\n{text}"
    docs = lines(stream)
    assert "cache.internal:6379" in docs[0]["message"], "what is not secret stays readable"
    assert "***" in docs[3]["message"]
    assert docs[3]["password"] == "***"
    assert docs[3]["url"] == "redis://u:***@h"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("redis://:pw@h:1/0", "redis://:***@h:1/0"),
        ("https://user:pa55@x.example/p", "https://user:***@x.example/p"),
        ("api_key=abc123&x=1", "api_key=***&x=1"),
        ("{'password': 'pw'}", "{'password': '***'}"),
        ("Authorization: Bearer abc.def", "Authorization: ***"),
        ("admin_tokens={'t': 'editor'}", "admin_tokens={***}"),
        ("no secrets here: 42", "no secrets here: 42"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected
