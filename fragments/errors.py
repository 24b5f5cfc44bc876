"""The exception tree of `fragments`.

::

    FragmentsError
     ├── InvalidIdentifier   a slot, segment, variant, locale or SKU id that is not well formed
     ├── SlotConfigError     the slot config file is invalid (names the file, the slot, the reason)
     ├── BundleFormatError   bytes that are not a bundle of a supported wire version
     ├── RenderError         a template failed (undefined variable, sandbox violation)
     ├── FieldInvalid        a value that is not well formed, naming its field and why:
     │    ├── WireEventInvalid  an experiment event (`fragments.wire_events`)
     │    ├── ClickInvalid      a clickstream event (`fragments.clickstream`)
     │    └── LabelRuleInvalid  a custom-label rule (`fragments.labels`)
     ├── JsonRejected        a client's JSON body: not JSON, NaN/Infinity, or nested too deeply
     └── BatchSignatureInvalid  an event batch's signature is missing, malformed, unknown,
                                expired or wrong (`reason` is one of those words)
"""

from __future__ import annotations


class FragmentsError(Exception):
    """Base class of every error raised by `fragments`."""


class InvalidIdentifier(FragmentsError, ValueError):
    """An id (slot, segment, variant, locale, SKU) is not well formed."""

    def __init__(self, kind: str, value: str, rule: str) -> None:
        self.kind = kind
        self.value = value
        super().__init__(f"invalid {kind} {value[:80]!r}: {rule}")


class FieldInvalid(FragmentsError, ValueError):
    """A value is not well formed; `field` names where (e.g. ``events[3].type``), `reason`
    says why."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class SlotConfigError(FragmentsError):
    """The slot configuration is invalid; the message names file, slot and reason."""

    def __init__(self, source: str, slot: str | None, reason: str) -> None:
        self.source = source
        self.slot = slot
        self.reason = reason
        where = f"{source}: slot {slot!r}" if slot else source
        super().__init__(f"{where}: {reason}")


class BundleFormatError(FragmentsError, ValueError):
    """Bytes that cannot be decoded as a bundle of a supported wire version."""


class RenderError(FragmentsError):
    """A template could not be rendered."""


class BatchSignatureInvalid(FragmentsError):
    """An event batch's signature does not hold; `reason` is a stable word for metrics
    (``missing``, ``malformed``, ``unknown_key``, ``expired``, ``bad_signature``, ``replayed``)."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(detail)


class JsonRejected(FragmentsError, ValueError):
    """A client's JSON body is not acceptable: not JSON, a non-finite number (``NaN``,
    ``Infinity``) or nested too deeply; the message says which."""
