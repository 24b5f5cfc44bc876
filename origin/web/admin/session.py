"""Admin UI sessions: a signed, HttpOnly, SameSite=Strict cookie that never holds the token.

Login checks a pasted bearer token with the API's `TokenAuthority`. The token itself stays on
the server (in its configuration); the cookie carries only a keyed MAC of it, a CSRF nonce and
an expiry, signed with HMAC-SHA256. The signing key is derived from every configured admin
token, so it is the same in every origin process without a setting of its own, and changing
any token logs everybody out. Every request re-derives the principal (name and role) from the
current token configuration: the cookie cannot raise a role.

CSRF defence, two layers:

- a synchronizer token: every form carries the session's nonce, compared in constant time;
- an origin check: when the browser sends ``Origin`` (or else ``Referer``), its host must be
  the host the admin is served on.

SameSite=Strict alone is not enough: pages that differ only by port or subdomain are the same
*site* (the storefront on :8700 and the admin on :8600 are), so a page there could still post.

Logout revokes the session on the server: its id is recorded in RedisLike until the cookie would
have expired (`SessionRevocations`), so a copied cookie stops working at once in every origin
process, not only in the browser that logged out. Changing any token still ends every session.
Cookie values and CSRF fields are compared as bytes: a non-ASCII value is simply not a match
(never a 500). This module must never put a token, or anything it can be recovered from
without the server's key, into a cookie, a page, a log or an error.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from origin.core import keys
from origin.core.redis_client import RedisLike
from origin.core.redis_errors import bounded
from origin.errors import StoreUnavailable
from origin.experiments.principal import Principal
from origin.web.auth import TokenAuthority

COOKIE_NAME = "se_admin"
COOKIE_PATH = "/admin"
SESSION_LIFETIME_S = 8 * 3600
MAX_COOKIE_CHARS = 1024
_KEY_LABEL = b"shelfedge admin session v1"
_FORMAT = "v1"


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in marketer: who (from the token configuration), the CSRF nonce, the expiry."""

    principal: Principal
    csrf: str
    """The nonce every form post of this session must carry."""
    expires: float
    """Unix time after which the cookie is refused."""
    sid: str = ""
    """The session's id: logout revokes it on the server."""

    @property
    def can_edit(self) -> bool:
        return self.principal.role == "editor"


class SessionRevocations:
    """Revoked session ids in RedisLike, each kept until its cookie would have expired."""

    def __init__(self, redis: RedisLike, timeout: float = 0.25) -> None:
        self.redis = redis
        self.timeout = timeout

    async def revoke(self, session: Session, now: float) -> None:
        ttl = max(1, int(session.expires - now) + 1)
        key = keys.admin_session_revoked_key(session.sid)
        await bounded(self.redis.set(key, b"1", ex=ttl), self.timeout, "revoke session")

    async def revoked(self, sid: str) -> bool:
        key = keys.admin_session_revoked_key(sid)
        return bool(await bounded(self.redis.exists(key), self.timeout, "check session"))


class AdminSessions:
    """Issues and verifies session cookies for the tokens of one configuration."""

    def __init__(
        self,
        tokens: Mapping[str, str],
        authority: TokenAuthority,
        *,
        always_secure: bool = False,
        lifetime_s: float = SESSION_LIFETIME_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if lifetime_s <= 0:
            raise ValueError(f"admin session lifetime must be > 0 s, got {lifetime_s}")
        self._authority = authority
        self._key = hmac.new(_KEY_LABEL, "\n".join(sorted(tokens)).encode(), "sha256").digest()
        self._principals: dict[str, Principal] = {}
        for token in tokens:
            principal = authority.authenticate(f"Bearer {token}")
            if principal is not None and principal.role != "ingest":  # no admin UI for feeds
                self._principals[self._token_mac(token)] = principal
        self.always_secure = always_secure
        self.lifetime_s = lifetime_s
        self.clock = clock
        self.revocations: SessionRevocations | None = None
        """Set when RedisLike is connected (the app's lifespan); without it logout only clears
        the browser's cookie."""

    @property
    def configured(self) -> bool:
        """False when no admin token is configured (nobody can log in)."""
        return bool(self._principals)

    def login(self, token: str) -> tuple[Session, str] | None:
        """The session and its cookie value for a valid token; None for an unknown one."""
        token = token.strip()
        principal = self._authority.authenticate(f"Bearer {token}") if token else None
        if principal is None or principal.role == "ingest":
            return None
        session = Session(
            principal,
            secrets.token_urlsafe(24),
            self.clock() + self.lifetime_s,
            secrets.token_urlsafe(16),
        )
        payload = {
            "t": self._token_mac(token),
            "c": session.csrf,
            "e": int(session.expires),
            "s": session.sid,
        }
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return session, f"{_FORMAT}.{body}.{self._sign(body)}"

    def read(self, cookie: str | None) -> Session | None:
        """The session of a cookie value, or None when it is absent, forged, stale or revoked."""
        if not cookie or len(cookie) > MAX_COOKIE_CHARS or not cookie.isascii():
            return None
        version, _, rest = cookie.partition(".")
        body, _, signature = rest.partition(".")
        if version != _FORMAT or not _same(self._sign(body), signature):
            return None
        try:
            payload = json.loads(_unb64(body))
            token_mac, csrf, expires = str(payload["t"]), str(payload["c"]), float(payload["e"])
            sid = str(payload["s"])
        except (ValueError, KeyError, TypeError):
            return None
        principal = self._principals.get(token_mac)
        if principal is None or expires <= self.clock():
            return None
        return Session(principal, csrf, expires, sid)

    def set_cookie(self, response: Response, request: Request, value: str) -> None:
        response.set_cookie(
            COOKIE_NAME,
            value,
            max_age=int(self.lifetime_s),
            path=COOKIE_PATH,
            secure=self.always_secure or request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )

    def clear_cookie(self, response: Response, request: Request) -> None:
        response.delete_cookie(
            COOKIE_NAME,
            path=COOKIE_PATH,
            secure=self.always_secure or request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )

    async def of(self, request: Request) -> Session | None:
        """The request's session, if it has a valid cookie that was not revoked (when RedisLike
        cannot say, nobody is logged in: fail closed)."""
        session = self.read(request.cookies.get(COOKIE_NAME))
        if session is None or self.revocations is None:
            return session
        try:
            return None if await self.revocations.revoked(session.sid) else session
        except StoreUnavailable:
            return None

    async def revoke(self, session: Session) -> None:
        """End `session` everywhere (its cookie, wherever copied, is refused from now on)."""
        if self.revocations is not None:
            await self.revocations.revoke(session, self.clock())

    def _token_mac(self, token: str) -> str:
        return hmac.new(self._key, b"token\n" + token.encode(), hashlib.sha256).hexdigest()

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, b"cookie\n" + body.encode(), hashlib.sha256).digest())


def csrf_valid(session: Session, submitted: str | None) -> bool:
    """True when a form (or the ``X-CSRF-Token`` header) carries the session's nonce."""
    return bool(submitted) and _same(session.csrf, submitted or "")


def _same(expected: str, given: str) -> bool:
    """Constant-time equality of two strings as UTF-8 bytes (any character is fine)."""
    return hmac.compare_digest(
        expected.encode("utf-8", "surrogatepass"), given.encode("utf-8", "surrogatepass")
    )


def same_origin(request: Request) -> bool:
    """False when the browser says the post comes from another host than the admin's.

    Without Origin and Referer (non-browser clients, privacy settings) the nonce decides.
    """
    claimed = request.headers.get("origin") or request.headers.get("referer")
    if not claimed:
        return True
    if claimed == "null":
        return False
    return urlsplit(claimed).netloc == request.headers.get("host", "")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
