"""The exceptions of `shelfedge.localstack` (the tree is drawn in the package docstring).

They hang under `origin.errors.OriginError`, the root of the `origin` package's tree.
This module only defines error types; it must never import anything that starts processes,
so callers can catch these errors without pulling in the service machinery.
"""

from __future__ import annotations

from origin.errors import OriginError


class LocalStackError(OriginError):
    """Base class of every error raised by `shelfedge.localstack`."""


class ServiceBinaryNotFound(LocalStackError):
    """A server binary is missing; the message is one line saying how to install it."""


class ServiceStartError(LocalStackError):
    """A server exited during start-up or did not answer in time; carries its log tail."""


class PortInUseError(ServiceStartError):
    """The port the server must listen on is taken by another process."""


class ServiceStateError(LocalStackError):
    """A lifecycle call that does not fit the current state (start while running, ...)."""


class TopicSetupError(LocalStackError):
    """Topics could not be created, or did not show up in the broker's metadata in time."""
