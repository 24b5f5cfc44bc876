"""The exception tree of `origin` (drawn in the package docstring)."""

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
