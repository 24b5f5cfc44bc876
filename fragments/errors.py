"""The exception tree of `fragments`.

::

    FragmentsError
     ├── InvalidIdentifier   a slot, segment, variant, locale or SKU id that is not well formed
     ├── SlotConfigError     the slot config file is invalid (names the file, the slot, the reason)
     ├── BundleFormatError   bytes that are not a bundle of a supported wire version
     ├── RenderError         a template failed (undefined variable, sandbox violation)
     └── WireEventInvalid    an experiment event that is not well formed (names the field)
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
