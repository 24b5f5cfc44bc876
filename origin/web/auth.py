"""Bearer-token authentication with roles for the admin API: viewers read, editors write, and
ingest tokens (a retailer's feed pipeline) import catalog data and nothing else.

Ingest tokens (role ``ingest``, a retailer's feed pipeline) may push retailer data (feeds, lists,
segments) and nothing else: they rank below viewers, so they neither read nor edit experiments;
editors may import too. The admin UI refuses them at login.

Tokens come from `Settings.admin_tokens` (token -> role) and `admin_token_names` (token ->
name for the audit log). Only their SHA-256 digests are kept in memory after start-up, and a
request's token is compared by digest. No anonymous writes: a missing or unknown token is 401,
a viewer writing is 403. This module must never log, echo or store a token: problems and
audit entries name the principal (name and role) only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response

from origin.experiments.principal import Principal, Role
from origin.web import problems

_RANK: dict[str, int] = {"ingest": 0, "viewer": 1, "editor": 2}
"""Ranks of the admin API roles: an ingest token reads and writes nothing there."""
_WHO = {
    "ingest": "an ingest or editor",
    "viewer": "a viewer or editor",
    "editor": "a viewer or editor",
}
IMPORTERS: frozenset[str] = frozenset({"ingest", "editor"})
"""Roles that may import catalog data."""
MAX_AUTHORIZATION_HEADER = 512


class TokenAuthority:
    """Maps bearer tokens (by digest) to principals."""

    def __init__(self, tokens: Mapping[str, str], names: Mapping[str, str]) -> None:
        self._principals: dict[str, Principal] = {}
        for token, role in tokens.items():
            if role not in _RANK:
                raise ValueError(f"admin token role must be viewer, editor or ingest, got {role!r}")
            name = names.get(token) or "unnamed"
            self._principals[_digest(token)] = Principal(
                name, "editor" if role == "editor" else "ingest" if role == "ingest" else "viewer"
            )

    def authenticate(self, authorization: str | None) -> Principal | None:
        """The principal of an ``Authorization: Bearer <token>`` header, else None."""
        if not authorization or len(authorization) > MAX_AUTHORIZATION_HEADER:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self._principals.get(_digest(token.strip()))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def require(request: Request, role: Role) -> Principal | Response:
    """The request's principal if it holds `role` (or more); else the 401/403 problem.

    ``ingest`` is not a rank: it is granted to ingest and editor tokens only.
    """
    authority: TokenAuthority = request.app.state.token_authority
    principal = authority.authenticate(request.headers.get("authorization"))
    if principal is None:
        return problems.problem(
            401,
            "Unauthorized",
            f"send 'Authorization: Bearer <token>' with {_WHO[role]} token "
            "(SHELFEDGE_ADMIN_TOKENS; 'shelfedge dev' prints one)",
            invalid={"Authorization": "missing, malformed or unknown bearer token"},
            headers={"WWW-Authenticate": 'Bearer realm="shelfedge"'},
        )
    allowed = (
        principal.role in IMPORTERS if role == "ingest" else _RANK[principal.role] >= _RANK[role]
    )
    if not allowed:
        return problems.problem(
            403,
            "Forbidden",
            f"{principal.name} is a {principal.role}; this needs an {role} token",
            invalid={"Authorization": f"role {principal.role} may not do this"},
        )
    return principal


def require_ingest(request: Request) -> str | Response:
    """The name of the request's principal if it may import data (an ingest or editor token);
    else the 401/403 problem."""
    who = require(request, "ingest")
    return who if isinstance(who, Response) else who.name
