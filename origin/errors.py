"""The exception tree of `origin`: one root, `OriginError`, whose `retriable` says whether the
same call may succeed later.

::

    OriginError
     ├── SettingsError        an environment variable has a bad value (names it and what's expected)
     ├── StoreUnavailable     Redis cannot be reached in time (retriable; HTTP 503 + Retry-After)
     ├── UnknownEntity        a slot, segment, variant, locale or product that doesn't exist (404)
     ├── RecomputeConflict    a bundle kept changing under a recompute (retriable)
     ├── CannotRedrive        a re-drive named a purge that is not parked, or not a bundle tag
     ├── RedisUrlError        a Redis URL that names no usable node (also a ValueError)
     ├── ListInvalid          an imported list document is invalid (names the field)
     ├── RulesInvalid         a segment rule set is invalid (names the rule and field)
     ├── AudienceInvalid      a CDP audience message or visitor file is invalid (names the field
     │                        or line)
     ├── IngestError          (origin.ingest.errors) the importers' tree
 ├── SegmentInvalid       a segment definition is invalid (names the source, segment and field)
     ├── RequestRejected      (origin.web.errors) a request body cannot be read: its problem
     ├── ExperimentsError     (origin.experiments.errors) the experiment service's tree
     └── EventsError          (origin.events.errors) the event collector's and aggregator's tree

The web service maps each to an RFC 9457 problem in one place (`origin.web.problems`).
"""

from __future__ import annotations


class OriginError(Exception):
    """Base class of every error raised by `origin`."""

    retriable: bool = False
    """True when the same call may succeed later (a dependency is down)."""


class SettingsError(OriginError):
    """A configuration value is invalid; the message names the variable and what is expected."""

    def __init__(self, variable: str, expected: str, got: str | None) -> None:
        self.variable = variable
        shown = "unset" if got is None else repr(got if len(got) < 60 else got[:57] + "...")
        super().__init__(f"{variable}: expected {expected}, got {shown}")


class StoreUnavailable(OriginError):
    """Redis did not answer within the configured timeout."""

    retriable = True


class UnknownEntity(OriginError):
    """A requested slot, segment, variant, locale or product does not exist."""

    def __init__(self, kind: str, value: str) -> None:
        self.kind = kind
        self.value = value
        super().__init__(f"unknown {kind} {value!r}")


class CannotRedrive(OriginError):
    """An operator asked to re-drive parked purges that cannot be: the message names them."""


class RecomputeConflict(OriginError):
    """A bundle kept changing under a recompute; the caller should retry later (retriable)."""

    retriable = True


class SegmentInvalid(OriginError, ValueError):
    """A segment definition is invalid: the message names the source, the segment and the field."""

    def __init__(self, source: str, segment: str | None, field: str | None, reason: str) -> None:
        self.source = source
        self.segment = segment
        self.field = field
        self.reason = reason
        where = source
        if segment is not None:
            where += f": segment {segment!r}"
        if field is not None:
            where += f": {field}"
        super().__init__(f"{where}: {reason}")


class RedisUrlError(OriginError, ValueError):
    """A Redis URL that names no usable node (the message says which part is wrong)."""


class ListInvalid(OriginError, ValueError):
    """A list document is invalid; `field` names the offending field."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class RulesInvalid(OriginError, ValueError):
    """A rule set is invalid: `where` names the rule and field (e.g. ``rules[2].when[0].op``)."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}")


class AudienceInvalid(OriginError, ValueError):
    """A CDP audience message or visitor-id file is invalid: `where` names the field or line
    (e.g. ``batch[3].properties.audience_key`` or ``line 12``)."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}")
