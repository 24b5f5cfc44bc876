"""The exception tree of `origin.events` (drawn in the package docstring).

Messages name the event and field; they must never carry a visitor id or event contents.
"""

from __future__ import annotations

from origin.errors import OriginError


class EventsError(OriginError):
    """Base class of the event collector's and aggregator's errors."""


class EventRejected(EventsError):
    """An event is malformed; `field` names where (e.g. ``events[3].type``)."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class EventsUnavailable(EventsError):
    """Events cannot be written to Kafka now."""

    retriable = True
