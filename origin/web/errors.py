"""The web service's own errors: a request it cannot read. Each carries the problem response to
send (`origin.web.problems` builds them), so handlers raise instead of returning early.

::

    OriginError
     └── RequestRejected     a body, form or parameter cannot be read (its `response`)
          ├── BadRequest     in the JSON APIs
          └── FormRejected   in the admin UI's forms
"""

from __future__ import annotations

from starlette.responses import Response

from origin.errors import OriginError


class RequestRejected(OriginError):
    """The request cannot be read; `response` is the problem to send."""

    def __init__(self, response: Response) -> None:
        self.response = response
        super().__init__(response.status_code)


class BadRequest(RequestRejected):
    """A JSON API request cannot be read."""


class FormRejected(RequestRejected):
    """An admin form's body cannot be read as a form; `response` says why."""
