"""The exception tree of the `edge` package: the one root every edge error derives from.

Exceptions::

    EdgeError
     ├── BadEdgeInput        a document the edge was handed is not well formed: a vector document,
     │                       a WASI decision request, an edge config (the message names the field)
     ├── BadSeRequest        a ``/se/*`` request the edge refuses; `status` is the HTTP answer
     │                       (400 malformed body, 413 body over its limit)
     ├── EffectReplyError    a transport answered an effect with a value of the wrong type
     ├── ConfigUnavailable   the WASI CGI mode's ``config.json`` is missing or invalid
     └── UsageError          the WASI entry's command line is not one it understands

Adapters translate foreign exceptions (httpx, JavaScript errors from workerd, OSError) at their
boundary with ``raise ... from exc`` or into a typed reply (an unanswered `FetchResult`); the
core raises only these and `fragments.errors`. Pure: no imports beyond the standard library.
"""

from __future__ import annotations


class EdgeError(Exception):
    """Base class of every error raised by `edge`."""


class BadEdgeInput(EdgeError, ValueError):
    """A vector document, decision request or edge config that is not well formed."""


class BadSeRequest(EdgeError, ValueError):
    """A ``/se/*`` request body the edge refuses; `status` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


class EffectReplyError(EdgeError, TypeError):
    """A transport answered an effect with the wrong type (a bug in that transport)."""


class ConfigUnavailable(EdgeError):
    """The WASI data directory's config.json is missing or invalid; the message names the file."""


class UsageError(EdgeError, ValueError):
    """The WASI entry's command line is not one it understands."""


class WorkerMisconfigured(EdgeError):
    """A required secret is missing or is a public development value (names the variable)."""
