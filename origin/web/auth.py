"""Bearer-token authentication with roles for the admin API: viewers read, editors write.

Ingest tokens (role ``ingest``) are a separate capability: they may push retailer data (lists,
feeds) through `require_ingest` and nothing else; `authenticate` never returns them, so they
neither read nor edit experiments and cannot log into the admin UI.

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

_RANK: dict[str, int] = {"viewer": 1, "editor": 2}
INGEST_ROLE = "ingest"
MAX_AUTHORIZATION_HEADER = 512


class TokenAuthority:
    """Maps bearer tokens (by digest) to principals."""

    def __init__(self, tokens: Mapping[str, str], names: Mapping[str, str]) -> None:
        self._principals: dict[str, Principal] = {}
        self._ingest: dict[str, str] = {}
        for token, role in tokens.items():
            name = names.get(token) or "unnamed"
            if role == INGEST_ROLE:
                self._ingest[_digest(token)] = name
                continue
            if role not in _RANK:
                raise ValueError(f"admin token role must be viewer, editor or ingest, got {role!r}")
            self._principals[_digest(token)] = Principal(
                name, "editor" if role == "editor" else "viewer"
            )

    def authenticate(self, authorization: str | None) -> Principal | None:
        """The principal of an ``Authorization: Bearer <token>`` header, else None."""
        if not authorization or len(authorization) > MAX_AUTHORIZATION_HEADER:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self._principals.get(_digest(token.strip()))

    def authenticate_ingest(self, authorization: str | None) -> str | None:
        """The name of an ingest token's ``Authorization: Bearer`` header, else None."""
        if not authorization or len(authorization) > MAX_AUTHORIZATION_HEADER:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self._ingest.get(_digest(token.strip()))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def require(request: Request, role: Role) -> Principal | Response:
    """The request's principal if it holds `role` (or more); else the 401/403 problem."""
    authority: TokenAuthority = request.app.state.token_authority
    principal = authority.authenticate(request.headers.get("authorization"))
    if principal is None:
        return problems.problem(
            401,
            "Unauthorized",
            "send 'Authorization: Bearer <token>' with a viewer or editor token "
            "(SHELFEDGE_ADMIN_TOKENS; 'shelfedge dev' prints one)",
            invalid={"Authorization": "missing, malformed or unknown bearer token"},
            headers={"WWW-Authenticate": 'Bearer realm="shelfedge"'},
        )
    if _RANK[principal.role] < _RANK[role]:
        return problems.problem(
            403,
            "Forbidden",
            f"{principal.name} is a {principal.role}; this needs an {role} token",
            invalid={"Authorization": f"role {principal.role} may not do this"},
        )
    return principal


def require_ingest(request: Request) -> str | Response:
    """The name of the request's ingest token; else the 401/403 problem."""
    authority: TokenAuthority = request.app.state.token_authority
    header = request.headers.get("authorization")
    name = authority.authenticate_ingest(header)
    if name is not None:
        return name
    if authority.authenticate(header) is not None:
        return problems.problem(
            403,
            "Forbidden",
            "this needs an ingest token (SHELFEDGE_ADMIN_TOKENS ...:ingest)",
            invalid={"Authorization": "viewer and editor tokens may not ingest data"},
        )
    return problems.problem(
        401,
        "Unauthorized",
        "send 'Authorization: Bearer <token>' with an ingest token (SHELFEDGE_ADMIN_TOKENS)",
        invalid={"Authorization": "missing, malformed or unknown bearer token"},
        headers={"WWW-Authenticate": 'Bearer realm="shelfedge"'},
    )
