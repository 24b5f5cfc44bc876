"""The exception tree of `origin.experiments` (drawn in the package docstring).

Messages name the experiment, version or transition and the fix; they must never carry a token.
"""

from __future__ import annotations

from origin.errors import OriginError


class ExperimentsError(OriginError):
    """Base class of the experiment service's errors."""


class ExperimentNotFound(ExperimentsError):
    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"no experiment {key!r}")


class ExperimentExists(ExperimentsError):
    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"experiment {key!r} already exists; update it with PUT and If-Match")


class VersionMismatch(ExperimentsError):
    """If-Match named another version than the stored one."""

    def __init__(self, key: str, expected: int, current: int) -> None:
        self.key = key
        self.expected = expected
        self.current = current
        super().__init__(
            f"experiment {key!r} is at version {current}, not {expected}: reload it, reapply "
            "your change and send If-Match with the current version"
        )


class TransitionNotAllowed(ExperimentsError):
    def __init__(self, key: str, status: str, action: str) -> None:
        self.key = key
        self.status = status
        self.action = action
        super().__init__(f"cannot {action} experiment {key!r} while it is {status}")


class ConfigVersionNotFound(ExperimentsError):
    def __init__(self, version: int) -> None:
        self.version = version
        super().__init__(f"edge config version {version} was never published")


class ConcurrentModification(ExperimentsError):
    """The optimistic transaction lost to other writers too many times in a row."""

    retriable = True


class EdgePushFailed(ExperimentsError):
    """Writing the published config to an edge target (Workers KV) failed.

    `retriable` drives the writer's retry loop: True for 429, 5xx and transport errors, False
    for any other answer (a wrong token or namespace does not heal by retrying). The message
    names the status and the API's own error, never the token.
    """

    def __init__(self, message: str, retriable: bool) -> None:
        self.retriable = retriable
        super().__init__(message)
