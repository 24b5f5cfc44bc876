"""The edge's event buffering policy: bounded, batched, every drop counted by reason."""

from __future__ import annotations

import json

import pytest

from edge.event_buffer import Delivery, EventBuffer, delivery_of, encode_batch
from fragments.wire_events import ExperimentEvent, validate_event

NOW = 1_800_000_000.0


def event(i: int) -> ExperimentEvent:
    return ExperimentEvent(f"evt-{i:08d}", "exposure", "hero", "compact", "v" * 32, NOW)


@pytest.mark.parametrize(
    ("status", "delivery"),
    [
        (202, Delivery.SENT),
        (0, Delivery.RETRY),
        (429, Delivery.RETRY),
        (500, Delivery.RETRY),
        (503, Delivery.RETRY),
        (400, Delivery.REJECTED),
        (413, Delivery.REJECTED),
        (200, Delivery.REJECTED),
    ],
)
def test_what_an_answer_means(status: int, delivery: Delivery) -> None:
    assert delivery_of(status) is delivery


def test_batches_requeue_and_drops_are_counted() -> None:
    outcomes: list[tuple[str, int]] = []
    buffer: EventBuffer[ExperimentEvent] = EventBuffer(
        max_buffer=3, max_batch=2, on_outcome=lambda o, n: outcomes.append((o, n))
    )

    accepted = [buffer.add(event(i)) for i in range(5)]
    first = buffer.take()
    assert buffer.settle(first, 503) is Delivery.RETRY
    assert [e.id for e in buffer.events] == [event(i).id for i in range(3)]
    assert buffer.add(event(9)) is False
    assert buffer.settle(buffer.take(), 202) is Delivery.SENT
    assert buffer.settle(buffer.take(), 400) is Delivery.REJECTED

    assert accepted == [True, True, True, False, False]
    assert (buffer.sent, len(buffer)) == (2, 0)
    assert buffer.dropped == {"buffer_full": 3, "rejected": 1, "undeliverable": 0}
    assert ("sent", 2) in outcomes
    assert ("dropped_rejected", 1) in outcomes


def test_a_batch_given_back_to_a_full_buffer_loses_the_overflow() -> None:
    buffer: EventBuffer[ExperimentEvent] = EventBuffer(max_buffer=2, max_batch=2)
    buffer.add(event(0))
    buffer.add(event(1))
    batch = buffer.take()
    buffer.add(event(2))
    buffer.settle(batch, 0)
    assert [e.id for e in buffer.events] == [event(0).id, event(2).id]  # oldest first
    assert buffer.dropped["undeliverable"] == 1
    buffer.drop_all()
    assert buffer.dropped["undeliverable"] == 3


def test_a_batch_encodes_to_valid_wire_events() -> None:
    body = json.loads(encode_batch([event(0), event(1)]))
    assert [validate_event(raw, NOW) for raw in body["events"]] == [event(0), event(1)]


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        EventBuffer(max_buffer=1, max_batch=2)
