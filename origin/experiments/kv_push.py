"""Push the published edge config to Cloudflare Workers KV, where the Worker reads it.

`WorkersKvWriter.put` is the documented REST call, "Write key-value pair":
``PUT {api_base}/accounts/{account_id}/storage/kv/namespaces/{namespace_id}/values/{key_name}``
with ``Authorization: Bearer <API token>`` (permission "Workers KV Storage Write"), the key name
percent-encoded, and the value itself as the raw body (not multipart: no metadata). Cloudflare
answers ``{"success": true, "errors": [], ...}``. 429 and 5xx answers and transport errors are
retried with exponential backoff, honouring ``Retry-After`` (within a total time budget); any
other 4xx is final (a bad token or namespace does not heal by retrying) and so is a 2xx whose body
says ``success: false``.

`ConfigPusher.push_current` writes the *current* version (never an older one that lost a race)
under the Worker's key (`CONFIG_KEY`, as `edge.adapters.cloudflare` reads it) and records what the
target holds in `origin.core.edge_targets` (the admin UI shows it). The experiment service calls it
after every publication and rollback; a failed push never undoes the publication (the origin
serves it at ``/v1/edge-config`` all the same) but is recorded, logged and retried by the next
publication. It never logs or records the API token.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx

from origin.core.config_store import ConfigReader
from origin.core.edge_targets import EdgeTargets, TargetState
from origin.experiments.errors import EdgePushFailed

log = logging.getLogger(__name__)

CONFIG_KEY = "edge-config"
"""The KV key the Worker reads (`edge.adapters.cloudflare.CONFIG_KEY`; a test keeps them equal)."""
TARGET_NAME = "workers-kv"
DEFAULT_API_BASE = "https://api.cloudflare.com/client/v4"


@dataclass(frozen=True, slots=True)
class KvTarget:
    """Where the config goes: one Workers KV namespace."""

    account_id: str
    namespace_id: str
    api_token: str = field(repr=False)
    api_base: str = DEFAULT_API_BASE
    key: str = CONFIG_KEY

    def url(self) -> str:
        return (
            f"{self.api_base.rstrip('/')}/accounts/{quote(self.account_id, safe='')}"
            f"/storage/kv/namespaces/{quote(self.namespace_id, safe='')}"
            f"/values/{quote(self.key, safe='')}"
        )


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff of `WorkersKvWriter`: `first_delay` doubling up to `max_delay`, at most
    `attempts` tries and `budget` seconds in all (a longer Retry-After ends the tries)."""

    attempts: int = 5
    first_delay: float = 0.5
    max_delay: float = 8.0
    budget: float = 20.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after failed try number `attempt` (1-based)."""
        backoff = min(self.first_delay * 2 ** (attempt - 1), self.max_delay)
        return backoff if retry_after is None else max(retry_after, 0.0)


Sleep = Callable[[float], Awaitable[None]]


class WorkersKvWriter:
    """Writes one value to one KV key through Cloudflare's API."""

    def __init__(
        self,
        target: KvTarget,
        client: httpx.AsyncClient,
        policy: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.target = target
        self.client = client
        self.policy = policy or RetryPolicy()
        self.sleep = sleep

    async def put(self, value: str) -> int:
        """Write `value`; return the number of tries. EdgePushFailed when it did not land."""
        started = time.monotonic()
        url = self.target.url()
        headers = {
            "Authorization": f"Bearer {self.target.api_token}",
            "Content-Type": "application/octet-stream",
        }
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self.client.put(url, content=value.encode(), headers=headers)
            except httpx.HTTPError as exc:
                failure = EdgePushFailed(f"Workers KV unreachable: {type(exc).__name__}", True)
                retry_after = None
            else:
                if response.is_success:
                    _check_envelope(response)
                    return attempt
                failure = EdgePushFailed(_describe(response), _retriable(response.status_code))
                retry_after = _retry_after(response.headers.get("retry-after"))
            if not failure.retriable or attempt >= self.policy.attempts:
                raise failure
            wait = self.policy.delay(attempt, retry_after)
            if time.monotonic() - started + wait > self.policy.budget:
                raise EdgePushFailed(
                    f"{failure} (gave up: waiting {wait:g} s more would exceed the "
                    f"{self.policy.budget:g} s budget)",
                    True,
                )
            await self.sleep(wait)


def _retriable(status: int) -> bool:
    return status == 429 or status >= 500


def _retry_after(raw: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None when absent."""
    if not raw:
        return None
    raw = raw.strip()
    if raw.isascii() and raw.isdigit():
        return float(raw)
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _describe(response: httpx.Response) -> str:
    """The status and Cloudflare's first error message (never the request's token)."""
    detail = ""
    try:
        errors = response.json().get("errors") or []
        if errors and isinstance(errors[0], dict):
            detail = f": {errors[0].get('code', '')} {errors[0].get('message', '')}".rstrip()
    except (ValueError, AttributeError):
        detail = ""
    return f"Workers KV answered {response.status_code}{detail[:200]}"


def _check_envelope(response: httpx.Response) -> None:
    try:
        success = response.json().get("success", True)
    except (ValueError, AttributeError):
        return  # a 2xx without the JSON envelope: the write was accepted
    if success is False:
        raise EdgePushFailed(_describe(response), False)


class ConfigPusher:
    """Writes the current published config to its edge target and records what it holds."""

    def __init__(
        self,
        writer: WorkersKvWriter,
        configs: ConfigReader,
        targets: EdgeTargets,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.writer = writer
        self.configs = configs
        self.targets = targets
        self.clock = clock
        self._lock = asyncio.Lock()

    async def push_current(self) -> TargetState:
        """Write the current version unless the target holds it; record the outcome.

        One push at a time per process, so a slow older push cannot land after a newer one.
        """
        async with self._lock:
            version = await self.configs.current_version()
            held = await self.targets.get(TARGET_NAME)
            if version == 0 or (held.version == version and held.failed_version is None):
                return held
            text = await self.configs.version_json(version)
            if text is None:
                return await self.targets.failed(
                    TARGET_NAME, version, self.clock(), f"version {version} is missing"
                )
            try:
                await self.writer.put(text)
            except EdgePushFailed as exc:
                log.warning("edge config v%d not written to %s: %s", version, TARGET_NAME, exc)
                return await self.targets.failed(TARGET_NAME, version, self.clock(), str(exc))
            return await self.targets.written(TARGET_NAME, version, self.clock())


def config_json_version(text: str) -> int:
    """The version inside a published config's JSON (what a target holds)."""
    return int(json.loads(text)["version"])
