"""What a deployed edge (the Worker, the WASI entry) refuses and lets through, as pure
functions the adapters call and CPython tests check.

- `refusals`: outside ``SHELFEDGE_ENV=dev`` (an edge with no environment name counts as
  production) a missing or public development segment secret or event key is refused: the
  edge answers 500 naming the variable instead of trusting cookies anyone can sign.
- `pass_through_allowed`: the shop's hostname forwards to the origin only an allow-list of
  paths (default: the storefront page ``/`` and ``/static/``); the admin UI, the APIs,
  ``/metrics`` and ``/openapi.json`` are never reachable there. Items ending in ``/`` are
  prefixes, others exact paths.
"""

from __future__ import annotations

from fragments.batch_signing import DEV_EVENT_KEYS, SigningKeys
from fragments.segment_cookie import DEV_SEGMENT_SECRET

DEFAULT_PASS_THROUGH = ("/", "/static/")
NEVER_PASSED = ("/admin", "/v1/", "/metrics", "/openapi.json", "/se/")
"""Never forwarded whatever the allow-list says."""


def is_dev(environment: str | None) -> bool:
    return (environment or "prod").strip() == "dev"


def segment_refusals(environment: str | None, segment_secret: str) -> list[str]:
    """Why this edge must not verify segment cookies with `segment_secret` (empty: it may)."""
    if is_dev(environment) or (segment_secret and segment_secret != DEV_SEGMENT_SECRET):
        return []
    return ["SEGMENT_SECRET: set a secret of your own outside dev"]


def refusals(environment: str | None, segment_secret: str, event_keys: str) -> list[str]:
    """Why this edge must not serve (empty: it may). Never echoes a secret."""
    problems = segment_refusals(environment, segment_secret)
    if is_dev(environment):
        return problems
    if not event_keys:
        problems.append("EVENT_KEYS: set kid=secret pairs outside dev")
    else:
        dev = SigningKeys.parse(DEV_EVENT_KEYS).newest.secret
        try:
            keys = SigningKeys.parse(event_keys)
        except ValueError as exc:
            problems.append(f"EVENT_KEYS: {exc}")
        else:
            if any(k.secret == dev for k in keys.keys):
                problems.append("EVENT_KEYS: not the development key outside dev")
    return problems


def event_keys_for(environment: str | None, raw: str) -> SigningKeys:
    """The keys to sign with: the configured ones, or the dev key in dev."""
    return SigningKeys.parse(raw or (DEV_EVENT_KEYS if is_dev(environment) else ""))


def parse_allow_list(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return DEFAULT_PASS_THROUGH
    return tuple(p.strip() for p in raw.split(",") if p.strip().startswith("/"))


def pass_through_allowed(path: str, allow: tuple[str, ...]) -> bool:
    if any(path == n.rstrip("/") or path.startswith(n) for n in NEVER_PASSED):
        return False
    return any(path.startswith(a) if a.endswith("/") and a != "/" else path == a for a in allow)
